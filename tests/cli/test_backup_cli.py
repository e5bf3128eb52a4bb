"""`scanseal backup` and `scanseal restore` on small homes, in-process: what goes in the archive,
what a restore refuses (a changed, truncated or crafted archive; a home with content; a running
gateway), and that a refused restore writes nothing. The restore of a real gateway's home is
tests/service/test_backup_restore.py."""

from __future__ import annotations

import io
import json
import os
import resource
import sqlite3
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from cli_support import FAST, PASSPHRASE, one_error_line
from gateway_harness import SRC
from scanseal._lock import exclusive
from scanseal.crypto.identity import Keystore


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with a keystore, a config, nested state and a SQLite database in WAL mode."""
    home = tmp_path / "source"
    monkeypatch.setenv("SCANSEAL_HOME", str(home))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", PASSPHRASE)
    Keystore(home / "keys", scrypt_n=FAST).create("gateway", PASSPHRASE)
    (home / "scanseal.toml").write_text('[gateway]\nidentity = "gateway"\n', "utf-8")
    (home / "gateway" / "inbox").mkdir(parents=True)
    (home / "gateway" / "inbox" / "cursor").write_bytes(b"\x00\x01 state")
    (home / "empty").mkdir()
    return home


def _point_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("SCANSEAL_HOME", str(home))


def _backup(run, tmp_path: Path) -> Path:
    out = tmp_path / "home.tar"
    result = run("backup", str(out))
    assert result.code == 0, result.err
    assert result.out.startswith("backed up ")
    return out


def _members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar}


def test_the_archive_is_private_and_holds_the_home_with_a_manifest(source, run, tmp_path):
    archive = _backup(run, tmp_path)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    members = _members(archive)
    assert set(members) >= {
        "MANIFEST.json",
        "home/keys/gateway.json",
        "home/scanseal.toml",
        "home/gateway/inbox/cursor",
        "home/empty",
    }
    assert not any(name.endswith(".lock") for name in members)
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())  # type: ignore[union-attr]
        key_file = tar.extractfile("home/keys/gateway.json").read()  # type: ignore[union-attr]
    assert manifest["format"] == "scanseal-backup"
    assert key_file == (source / "keys" / "gateway.json").read_bytes()  # still encrypted
    by_path = {entry["path"]: entry for entry in manifest["files"]}
    assert by_path["keys/gateway.json"]["mode"] == 0o600
    assert len(by_path["gateway/inbox/cursor"]["sha256"]) == 64


def test_the_keys_are_never_decrypted(source, run, tmp_path, monkeypatch):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")  # no passphrase anywhere: nothing can unlock
    identity = Keystore(source / "keys").load("gateway", PASSPHRASE)
    archive = _backup(run, tmp_path).read_bytes()
    secret = bytes(identity.account.key)
    assert secret not in archive
    assert secret.hex().encode() not in archive


def test_a_database_with_a_write_ahead_log_arrives_whole(source, run, tmp_path, monkeypatch):
    db_path = source / "gateway" / "state.sqlite3"
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the -wal file, as after a crash
    db.execute("CREATE TABLE nonces (value TEXT)")
    db.executemany("INSERT INTO nonces VALUES (?)", [(f"n{i}",) for i in range(50)])
    assert (source / "gateway" / "state.sqlite3-wal").stat().st_size > 0
    try:
        archive = _backup(run, tmp_path)
    finally:
        db.close()
    assert "home/gateway/state.sqlite3-wal" not in _members(archive)
    target = tmp_path / "fresh"
    _point_home(monkeypatch, target)
    assert run("restore", str(archive)).code == 0
    restored = sqlite3.connect(target / "gateway" / "state.sqlite3")
    assert restored.execute("SELECT count(*) FROM nonces").fetchone() == (50,)
    restored.close()


def test_restore_into_a_fresh_home_is_identical(source, run, tmp_path, monkeypatch):
    archive = _backup(run, tmp_path)
    target = tmp_path / "fresh"
    _point_home(monkeypatch, target)
    result = run("restore", str(archive))
    assert result.code == 0, result.err
    assert "every SHA-256 matched its manifest" in result.out
    for path in source.rglob("*"):
        twin = target / path.relative_to(source)
        if path.is_file() and not path.name.endswith(".lock"):
            assert twin.read_bytes() == path.read_bytes(), path
            assert stat.S_IMODE(twin.stat().st_mode) == stat.S_IMODE(path.stat().st_mode) & 0o700
        elif path.is_dir():
            assert twin.is_dir()


def test_a_home_with_content_needs_force_and_keeps_the_old_content(
    source, run, tmp_path, monkeypatch
):
    archive = _backup(run, tmp_path)
    target = tmp_path / "busy"
    (target / "keys").mkdir(parents=True)
    (target / "keys" / "other.json").write_text("mine", "utf-8")
    _point_home(monkeypatch, target)
    refused = run("restore", str(archive))
    assert refused.code == 2
    assert "is not empty (keys)" in one_error_line(refused)
    assert (target / "keys" / "other.json").read_text("utf-8") == "mine"
    forced = run("restore", str(archive), "--force")
    assert forced.code == 0, forced.err
    (aside,) = target.glob(".before-restore-*")
    assert (aside / "keys" / "other.json").read_text("utf-8") == "mine"
    assert not (target / "keys" / "other.json").exists()
    assert (target / "keys" / "gateway.json").exists()


def _rewrite(archive: Path, out: Path, change) -> Path:
    """A copy of ``archive`` whose members pass through ``change(info, data) -> (info, data)``."""
    with tarfile.open(archive) as tar, tarfile.open(out, "w") as new:
        for member in tar:
            handle = tar.extractfile(member)
            data = handle.read() if handle else b""
            changed = change(member, data)
            if changed is not None:
                info, data = changed
                info.size = len(data)
                new.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out


def _refused(run, monkeypatch, tmp_path: Path, archive: Path, code: int, words: str) -> None:
    target = tmp_path / "target"
    _point_home(monkeypatch, target)
    result = run("restore", str(archive))
    assert result.code == code, result.err
    assert words in one_error_line(result)
    assert sorted(p.name for p in target.iterdir()) == ["agent.lock", "serve.lock"]
    assert not (tmp_path / "escaped").exists()


def test_a_changed_file_is_refused_and_nothing_written(source, run, tmp_path, monkeypatch):
    archive = _backup(run, tmp_path)

    def flip(info: tarfile.TarInfo, data: bytes):
        if info.name == "home/keys/gateway.json":
            data = data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]
        return info, data

    changed = _rewrite(archive, tmp_path / "changed.tar", flip)
    _refused(run, monkeypatch, tmp_path, changed, 3, "keys/gateway.json does not match its SHA")


def test_missing_extra_and_truncated_are_refused(source, run, tmp_path, monkeypatch):
    archive = _backup(run, tmp_path)
    dropped = _rewrite(
        archive, tmp_path / "dropped.tar",
        lambda i, d: None if i.name == "home/scanseal.toml" else (i, d),
    )  # fmt: skip
    _refused(run, monkeypatch, tmp_path, dropped, 3, "scanseal.toml is missing")
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    _refused(run, monkeypatch, tmp_path, truncated, 3, "")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar archive" * 100)
    _refused(run, monkeypatch, tmp_path, garbage, 2, "is not a ScanSeal backup")


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("home/../escaped", tarfile.REGTYPE, "unsafe path"),
        ("/tmp/escaped", tarfile.REGTYPE, "unexpected member"),
        ("home/keys/link", tarfile.SYMTYPE, "not a regular file"),
        ("home/keys/fifo", tarfile.FIFOTYPE, "not a regular file"),
    ],
)
def test_crafted_members_are_refused(source, run, tmp_path, monkeypatch, name, kind, words):
    archive = _backup(run, tmp_path)
    out = tmp_path / "crafted.tar"
    with tarfile.open(archive) as tar, tarfile.open(out, "w") as new:
        for member in tar:
            handle = tar.extractfile(member)
            data = handle.read() if handle else b""
            if member.name == "MANIFEST.json":  # the crafted member goes just before it
                crafted = tarfile.TarInfo(name)
                crafted.type, crafted.linkname = kind, str(tmp_path / "escaped")
                payload = b"x" if kind == tarfile.REGTYPE else b""
                crafted.size = len(payload)
                new.addfile(crafted, io.BytesIO(payload) if payload else None)
            new.addfile(member, io.BytesIO(data) if member.isfile() else None)
    code = 2 if words == "unsafe path" else 3
    _refused(run, monkeypatch, tmp_path, out, code, words)


def test_neither_runs_while_a_gateway_holds_the_home(source, run, tmp_path, monkeypatch):
    with exclusive(source / "serve.lock", "scanseal serve"):
        result = run("backup", str(tmp_path / "x.tar"))
    assert result.code == 5
    assert f"cannot back up {source}: scanseal serve is already running" in one_error_line(result)
    assert not (tmp_path / "x.tar").exists()
    archive = _backup(run, tmp_path)
    with exclusive(source / "agent.lock", "scanseal agent"):
        result = run("restore", str(archive), "--force")
    assert result.code == 5
    assert "cannot restore into" in one_error_line(result)


def test_state_outside_the_home_is_refused(source, run, tmp_path):
    (source / "scanseal.toml").write_text(
        f'[gateway]\nidentity = "gateway"\nstate_dir = "{tmp_path / "elsewhere"}"\n', "utf-8"
    )
    result = run("backup", str(tmp_path / "x.tar"))
    assert result.code == 2
    assert "keeps state outside" in one_error_line(result)
    assert str(tmp_path / "elsewhere") in result.err


def test_the_archive_is_never_overwritten_nor_inside_the_home(source, run, tmp_path):
    taken = tmp_path / "taken.tar"
    taken.write_text("keep", "utf-8")
    assert run("backup", str(taken)).code == 2
    assert taken.read_text("utf-8") == "keep"
    inside = run("backup", str(source / "b.tar"))
    assert inside.code == 2
    assert "inside" in one_error_line(inside)
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def _limited(home: Path, *args: str, limit: int) -> subprocess.CompletedProcess[str]:
    """``scanseal ARGS`` in a child that may write no file larger than ``limit`` bytes (a full
    disk as the process sees it: writes fail with EFBIG; Python ignores SIGXFSZ)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "SCANSEAL_HOME": str(home), "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "scanseal", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=cap)  # fmt: skip


def test_a_full_disk_leaves_no_archive_and_no_half_restored_home(source, run, tmp_path):
    (source / "blocks").mkdir()
    (source / "blocks" / "pack").write_bytes(os.urandom(256 * 1024))
    out = tmp_path / "out"
    out.mkdir()
    failed = _limited(source, "backup", str(out / "home.tar"), limit=64 * 1024)
    assert failed.returncode == 5, failed.stderr
    assert failed.stderr.startswith("error: ")
    assert len(failed.stderr.splitlines()) == 1
    assert list(out.iterdir()) == []  # neither the archive nor its partial file
    archive = _backup(run, tmp_path)
    target = tmp_path / "target"
    refused = _limited(target, "restore", str(archive), limit=64 * 1024)
    assert refused.returncode == 5, refused.stderr
    assert sorted(p.name for p in target.iterdir()) == ["agent.lock", "serve.lock"]
