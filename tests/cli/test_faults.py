"""Faults through the CLI: each is one line, the README's exit code, and nothing left behind.

A crafted RLE file that makes the decoder panic, an output that is a directory, a full disk (a
real tmpfs, so root only), a read-only home (a read-only bind mount, root only), a corrupted
state database, a heat-map path that is a file, and ``serve`` with its ports taken or its TLS
certificate missing. Each test first shows the fault is real where that is not obvious.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import iter_pixels

from cli.crafted import crafted_rle
from cli_support import FAST, PASSPHRASE, Result, one_error_line
from gateway_harness import PASSPHRASE as GATEWAY_PASSPHRASE
from gateway_harness import SRC, free_port, make_world
from scanseal.crypto.identity import Keystore
from scanseal.errors import InvalidInput
from scanseal.ingest import preprocess, validate
from scanseal.integrity.pixels import pixel_digest
from scanseal.storage import EmbeddedStore

CT = Path(str(get_testdata_file("CT_small.dcm")))
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def card(home: Path) -> Path:
    """An identity "alice" in the home's keystore and her card beside it."""
    path = home / "alice.card.json"
    path.write_text(
        Keystore(home / "keys", scrypt_n=FAST).create("alice", PASSPHRASE).card.to_json()
    )
    return path


def seal(run, source: Path, card: Path, output: Path, *extra: str) -> Result:
    return run("seal", str(source), "--to", str(card), "-o", str(output), "--as", "alice", *extra)


def leftovers(directory: Path) -> list[str]:
    """Temporary or half-written files a failed command left in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".part", ".partial")))


def pins(home: Path) -> list[str]:
    store = EmbeddedStore(home / "blocks")
    try:
        return store.pins()
    finally:
        store.close()


# --- a decoder panic -----------------------------------------------------------------------


def test_crafted_rle_makes_the_library_decoder_panic(tmp_path):
    path = crafted_rle(tmp_path / "crafted.dcm")
    with pytest.raises(BaseException) as info:  # noqa: PT011  # what escaped before
        next(iter_pixels(path, decoding_plugin="pylibjpeg"))
    assert not isinstance(info.value, Exception)
    assert type(info.value).__name__ == "PanicException"


def test_crafted_rle_is_invalid_input_at_every_entry_point(tmp_path):
    path = crafted_rle(tmp_path / "crafted.dcm")
    for entry_point in (validate, pixel_digest, preprocess):
        with pytest.raises(InvalidInput, match=r"crafted\.dcm: undecodable Pixel Data.*segment 1"):
            entry_point(path)
    real = Path(str(get_testdata_file("MR_small_RLE.dcm")))
    assert validate(real).rows == 64  # the genuine file still decodes


def test_seal_and_screen_of_a_crafted_rle_exit_2_without_a_panic(tmp_path, home, card):
    """A child process, so that Rust's own panic message on file descriptor 2 would be seen."""
    work = tmp_path / "work"
    work.mkdir()
    path = crafted_rle(work / "crafted.dcm")
    env = {**os.environ, "PYTHONPATH": str(SRC), "RUST_BACKTRACE": "1"}
    sealed = subprocess.run(
        [sys.executable, "-m", "scanseal", "seal", str(path), "--to", str(card),
         "-o", str(work / "c.sseal"), "--as", "alice"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sealed.returncode == 2, sealed.stderr
    assert "panicked" not in sealed.stderr
    assert "crafted.dcm: undecodable Pixel Data" in one_error_line(Result(2, "", sealed.stderr))
    assert sorted(p.name for p in work.iterdir()) == ["crafted.dcm"]


def test_screen_of_a_crafted_rle_reports_it_and_exits_2(tmp_path, run):
    result = run("screen", str(crafted_rle(tmp_path / "crafted.dcm")), "--json")
    assert result.code == 2
    assert "undecodable Pixel Data" in result.out
    one_error_line(result)


# --- outputs ----------------------------------------------------------------------------------


def test_seal_onto_a_directory_is_refused_before_any_work(tmp_path, home, card, run):
    (tmp_path / "out").mkdir()
    result = seal(run, CT, card, tmp_path / "out")
    assert result.code == 2
    assert "out is a directory" in one_error_line(result)
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "out.manifest.json").exists()
    assert not (home / "blocks").exists()  # the store was not even opened


def test_a_failed_seal_leaves_no_file_and_no_pinned_envelope(
    tmp_path, home, card, run, monkeypatch
):
    """The second rename (the manifest's) fails: the envelope already placed is taken back."""
    import scanseal.transfer.local as local

    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(local.MANIFEST_SUFFIX):
            raise OSError(errno.EROFS, "Read-only file system")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)  # the seal renames through os.replace
    result = seal(run, CT, card, tmp_path / "ct.sseal", "--screen", "off")
    assert result.code == 2
    assert "ct.sseal.manifest.json: Read-only file system" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir() if "ct.sseal" in p.name) == []
    assert pins(home) == []


def test_screen_heatmap_onto_a_file_is_refused_and_old_maps_are_replaced(tmp_path, run):
    target = tmp_path / "heat"
    target.write_text("not a directory")
    refused = run("screen", str(CT), "--heatmap", str(target))
    assert refused.code == 2
    assert "exists and is not a directory" in one_error_line(refused)
    assert refused.out == ""  # refused before screening
    assert target.read_text() == "not a directory"
    target.unlink()
    target.mkdir()
    old = target / f"{CT.name}.heatmap.png"
    old.write_bytes(b"an earlier run's map")
    again = run("screen", str(CT), "--heatmap", str(target))
    assert again.code == 0, again.err
    assert Image.open(old).format == "PNG"
    assert sorted(p.name for p in target.iterdir()) == [old.name]


# --- the disk and the state files -----------------------------------------------------------


@contextmanager
def mounted(*options: str, source: str = "tmpfs", target: Path) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", *options, source, str(target)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(options)} failed: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def _noise_png(path: Path) -> Path:
    pixels = np.random.default_rng(1).integers(0, 65535, (1400, 1400)).astype("uint16")
    Image.fromarray(pixels).save(path)
    return path


@ROOT_ONLY
def test_full_disk_exits_5_naming_the_file_and_leaves_nothing(tmp_path, home, card, run,
                                                               monkeypatch):  # fmt: skip
    big = _noise_png(tmp_path / "big.png")  # about 4 MB, on a 3 MiB file system
    blob = tmp_path / "big.bin"
    blob.write_bytes(os.urandom(6_000_000))
    with mounted("-t", "tmpfs", "-o", "size=3m", target=tmp_path / "small") as small:
        (small / "keys").mkdir()
        (small / "keys" / "alice.json").write_bytes((home / "keys" / "alice.json").read_bytes())
        monkeypatch.setenv("SCANSEAL_HOME", str(small))
        sealed = seal(run, big, card, small / "big.sseal", "--screen", "off")
        assert sealed.code == 5, sealed.err
        assert f"{small / 'big.sseal'}: No space left on device" in one_error_line(sealed)
        assert leftovers(small) == []
        assert not (small / "big.sseal").exists()
        added = run("storage", "add", str(blob))
        assert added.code == 5, added.err
        assert "No space left on device" in one_error_line(added)
        assert list((small / "blocks" / "packs").iterdir()) == []  # aborted packs removed
        assert pins(small) == []


@ROOT_ONLY
def test_read_only_home_exits_5_and_a_read_only_output_2_naming_the_file(
    tmp_path, home, card, run, monkeypatch
):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    (frozen / "keys").mkdir()
    (frozen / "keys" / "alice.json").write_bytes((home / "keys" / "alice.json").read_bytes())
    with mounted("--bind", source=str(frozen), target=frozen):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(frozen)], check=True)
        monkeypatch.setenv("SCANSEAL_HOME", str(frozen))
        sealed = seal(run, CT, card, tmp_path / "ct.sseal", "--screen", "off")
        assert sealed.code == 5, sealed.err  # the home's block store cannot take the envelope
        assert str(frozen / "blocks") in one_error_line(sealed)
        local = seal(run, CT, card, frozen / "ct.sseal", "--screen", "off", "--no-store")
        assert local.code == 2, local.err
        assert f"{frozen / 'ct.sseal'}: Read-only file system" in one_error_line(local)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("ct", "."))) == []


def test_corrupted_block_index_exits_5_naming_it(tmp_path, home, card, run):
    index = home / "blocks" / "index.sqlite"
    assert seal(run, CT, card, tmp_path / "first.sseal", "--screen", "off").code == 0
    index.write_bytes(b"\x00garbage" * 2048)
    for suffix in ("-wal", "-shm"):
        index.with_name(index.name + suffix).unlink(missing_ok=True)
    for result in (seal(run, CT, card, tmp_path / "ct.sseal", "--screen", "off"),
                   run("storage", "status")):  # fmt: skip
        assert result.code == 5, result.err
        assert f"{index}: corrupted (file is not a database)" in one_error_line(result)
    assert not (tmp_path / "ct.sseal").exists()


def test_a_page_corrupted_behind_a_valid_header_still_names_the_file(tmp_path, home, run):
    """Found only by a query, long after opening: the last-resort handler names the file."""
    index = home / "blocks" / "index.sqlite"
    EmbeddedStore(home / "blocks").close()
    db = sqlite3.connect(index)
    db.execute("PRAGMA journal_mode=DELETE")
    with db:
        db.executemany("INSERT INTO pins VALUES (?)", [(f"{i:0>60}",) for i in range(3000)])
    db.close()
    data = bytearray(index.read_bytes())
    for page in range(2 * 4096, len(data), 4096):
        data[page : page + 100] = b"\xff" * 100
    index.write_bytes(bytes(data))
    result = run("storage", "status")
    assert result.code == 5, result.err
    assert f"{index}: corrupted (database disk image is malformed)" in one_error_line(result)


# --- the last resort -------------------------------------------------------------------------


def test_an_unexpected_exception_is_one_line_and_exit_1(home, run, monkeypatch):
    import scanseal._cli.storage as storage_cli

    def broken(_config):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(storage_cli, "load_config", broken)
    result = run("storage", "status")
    assert result.code == 1
    line = one_error_line(result)
    assert "internal error (RuntimeError: a bug over two lines)" in line
    assert "SCANSEAL_DEBUG=1" in line
    monkeypatch.setenv("SCANSEAL_DEBUG", "1")
    debug = run("storage", "status")
    assert debug.code == 1
    assert "Traceback" in debug.err
    assert debug.err.rstrip().splitlines()[-1].startswith("error: internal error")


def test_an_unmapped_disk_error_gets_the_disk_mapping(home, run, monkeypatch):
    import scanseal._cli.storage as storage_cli

    def full(_config):
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/file")

    monkeypatch.setattr(storage_cli, "load_config", full)
    result = run("storage", "status")
    assert result.code == 5
    assert one_error_line(result) == "error: /somewhere/file: No space left on device"


# --- serve ------------------------------------------------------------------------------------


def _serve(world, **env: str) -> subprocess.CompletedProcess[str]:
    """``scanseal serve`` as a child process, as an operator starts it."""
    return subprocess.run(
        [sys.executable, "-m", "scanseal", "serve", "--config", str(world.config)],
        env={**world.env(), **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _serve_here(run, monkeypatch, world) -> Result:
    """``scanseal serve`` in this process (cheaper than a child; each fault here ends it)."""
    monkeypatch.setenv("SCANSEAL_HOME", str(world.home))
    monkeypatch.setenv("SCANSEAL_PASSPHRASE", GATEWAY_PASSPHRASE)
    monkeypatch.setenv("SCANSEAL_GATEWAY_PORT", str(free_port()))
    return run("serve", "--config", str(world.config))


def _started_nothing(world) -> bool:
    return not (world.home / "chain").exists() and not (world.home / "gateway").exists()


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        yield int(taken.getsockname()[1])


def test_serve_with_the_http_port_in_use_exits_5(tmp_path, listening):
    world = make_world(tmp_path, [])
    done = _serve(world, SCANSEAL_GATEWAY_PORT=str(listening))
    assert done.returncode == 5, done.stderr
    line = one_error_line(Result(5, done.stdout, done.stderr))
    assert f"cannot listen on 127.0.0.1:{listening} (HTTP): the port is in use" in line
    assert done.stdout == ""
    assert _started_nothing(world)


def test_serve_with_the_dicom_port_in_use_exits_5(tmp_path, listening, run, monkeypatch):
    lee = tmp_path / "home" / "members" / "lee.card.json"
    dicom = f'\n[dicom]\nenabled = true\nport = {listening}\nrecipients = ["{lee}"]\n'
    world = make_world(tmp_path, ["lee"], extra=dicom)
    done = _serve_here(run, monkeypatch, world)
    assert done.code == 5, done.err
    line = one_error_line(done)
    assert f"cannot listen on 127.0.0.1:{listening} (DICOM): the port is in use" in line
    assert _started_nothing(world)


def test_serve_with_a_missing_tls_certificate_exits_2_naming_it(tmp_path, run, monkeypatch):
    cert, key = tmp_path / "missing.pem", tmp_path / "missing.key"
    world = make_world(tmp_path, [], extra=f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    done = _serve_here(run, monkeypatch, world)
    assert done.code == 2, done.err
    assert f"tls_cert {cert} is not a file" in one_error_line(done)
    assert _started_nothing(world)


def test_serve_with_a_certificate_that_is_no_certificate_exits_2(tmp_path, run, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not PEM")
    key.write_text("not PEM either")
    world = make_world(tmp_path, [], extra=f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    done = _serve_here(run, monkeypatch, world)
    assert done.code == 2, done.err
    assert "are not a usable pair" in one_error_line(done)
    assert _started_nothing(world)
