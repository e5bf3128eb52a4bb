"""``scanseal --passphrase-file PATH`` and ``--passphrase-fd N``: where an invocation's
passphrase comes from, before ``$SCANSEAL_PASSPHRASE`` and the prompt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import FAST, PASSPHRASE, one_error_line
from corpus import make_png
from scanseal import _passphrase
from scanseal.crypto.identity import Keystore


@pytest.fixture
def alice(home):
    return Keystore(home / "keys", scrypt_n=FAST).create("alice", PASSPHRASE)


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path


def test_from_a_file(alice, run, monkeypatch, tmp_path):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    source = secret_file(tmp_path / "pass", PASSPHRASE + "\r\nthe second line is ignored\n")
    result = run("--passphrase-file", str(source), "keys", "check", "alice")
    assert result.code == 0, result.err
    assert result.err == ""  # 0600: no warning
    assert alice.address in result.out
    assert _passphrase.chosen() is None  # forgotten when the invocation ended


def test_a_file_others_may_read_warns_and_is_used(alice, run, monkeypatch, tmp_path):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    source = secret_file(tmp_path / "pass", PASSPHRASE, mode=0o644)
    result = run("--passphrase-file", str(source), "keys", "check", "alice")
    assert result.code == 0, result.err
    assert result.err.splitlines() == [
        f"warning: --passphrase-file {source}: group or others may read it (mode 0644); "
        "chmod 600 it"
    ]


def test_from_a_descriptor_read_once_then_closed(alice, run, monkeypatch):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    reader, writer = os.pipe()
    os.write(writer, PASSPHRASE.encode() + b"\n")
    os.close(writer)
    result = run("--passphrase-fd", str(reader), "keys", "check", "alice")
    assert result.code == 0, result.err
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(reader)  # closed by scanseal


def test_the_option_wins_over_the_environment(alice, run, monkeypatch, tmp_path):
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", "not it")
    right = secret_file(tmp_path / "right", PASSPHRASE)
    assert run("--passphrase-file", str(right), "keys", "check", "alice").code == 0
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", PASSPHRASE)
    wrong = secret_file(tmp_path / "wrong", "not it\n")
    result = run("--passphrase-file", str(wrong), "keys", "check", "alice")
    assert result.code == 4
    assert one_error_line(result) == "error: wrong passphrase for identity 'alice'"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--passphrase-file", "{tmp}/missing"], "--passphrase-file {tmp}/missing: No such file"),
        (["--passphrase-file", "{tmp}/empty"], "the first line is empty"),
        (["--passphrase-fd", "987"], "--passphrase-fd 987: not an open file descriptor"),
        (["--passphrase-file", "{tmp}/empty", "--passphrase-fd", "0"], "not both"),
    ],
)
def test_a_bad_source_is_one_line_exit_2(alice, run, tmp_path, args, reason):
    secret_file(tmp_path / "empty", "\nsecond\n")
    result = run(*[a.format(tmp=tmp_path) for a in args], "keys", "check", "alice")
    assert result.code == 2
    assert reason.format(tmp=tmp_path) in one_error_line(result)


def test_new_takes_it_without_a_confirmation(home, run, monkeypatch, tmp_path):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    source = secret_file(tmp_path / "pass", "from a file\n")
    assert run("--passphrase-file", str(source), "keys", "new", "carol").code == 0
    assert Keystore(home / "keys").load("carol", "from a file").name == "carol"


def test_seal_and_open_unlock_with_it(alice, home, run, monkeypatch, tmp_path):
    monkeypatch.delenv("SCANSEAL_PASSPHRASE")
    card = tmp_path / "alice.card.json"
    card.write_text(alice.card.to_json())
    source = secret_file(tmp_path / "pass", PASSPHRASE)
    image, sealed = make_png(tmp_path / "scan.png"), tmp_path / "scan.sseal"
    use = ["--passphrase-file", str(source)]
    done = run(*use, "seal", str(image), "--to", str(card), "-o", str(sealed), "--as", "alice")
    assert done.code == 0, done.err
    out = tmp_path / "out.png"
    opened = run(*use, "open", str(sealed), "-o", str(out), "--as", "alice")
    assert opened.code == 0, opened.err
    assert out.read_bytes() == image.read_bytes()


def test_process_reads_an_inherited_descriptor(alice, home):
    """The real entry point, with the pipe handed to the child as a password manager would."""
    reader, writer = os.pipe()
    os.write(writer, PASSPHRASE.encode() + b"\n")
    os.close(writer)
    argv = [sys.executable, "-m", "scanseal", "--passphrase-fd", str(reader)]
    env = {k: v for k, v in os.environ.items() if k != "SCANSEAL_PASSPHRASE"}
    env["SCANSEAL_HOME"] = str(home)
    try:
        done = subprocess.run(
            [*argv, "keys", "check", "alice"],
            env=env,
            pass_fds=(reader,),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(reader)
    assert done.returncode == 0, done.stderr
    assert alice.address in done.stdout


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["seal", "x", "--passphrase-file", "pw"], ["--passphrase-file", "pw", "seal", "x"]),
        (["open", "--passphrase-fd=3", "y"], ["--passphrase-fd=3", "open", "y"]),
        (["--passphrase-file", "pw", "seal"], ["--passphrase-file", "pw", "seal"]),
        (["seal", "--", "--passphrase-file"], ["seal", "--", "--passphrase-file"]),  # a file name
        (["keys", "list"], ["keys", "list"]),
    ],
)
def test_the_options_may_follow_the_command(args, hoisted):
    from scanseal.cli import hoist_root_options

    assert hoist_root_options(args) == hoisted


def test_process_takes_the_file_after_the_command(alice, home, tmp_path):
    """`scanseal seal … --passphrase-file F`, as people write options, through the real entry
    point (the option belongs to the root command; the entry point moves it in front)."""
    card = tmp_path / "alice.card.json"
    card.write_text(alice.card.to_json())
    source = secret_file(tmp_path / "pass", PASSPHRASE + "\n")
    image, sealed = make_png(tmp_path / "scan.png"), tmp_path / "scan.sseal"
    env = {k: v for k, v in os.environ.items() if k != "SCANSEAL_PASSPHRASE"}
    env["SCANSEAL_HOME"] = str(home)
    seal = ["seal", str(image), "--to", str(card), "-o", str(sealed), "--as", "alice"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanseal",
            *seal,
            "--screen",
            "off",
            "--passphrase-file",
            str(source),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sealed.is_file()
