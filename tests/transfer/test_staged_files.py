"""Whole-or-nothing file writing (scanseal._disk.staged_files), shared by sealing and keystores."""

from __future__ import annotations

import errno
import os

import pytest

from scanseal._disk import disk_error, staged_files
from scanseal.errors import InvalidInput, StorageUnavailable


def _write(*finals, body=b"data", fail=False, **options):
    """Stage ``finals``, write ``body`` into each, and raise in the body if ``fail``."""
    with staged_files(*finals, **options) as temporaries:
        for temp in temporaries:
            temp.write_bytes(body)
        if fail:
            raise RuntimeError("interrupted")


def test_files_appear_only_after_the_body_and_no_temporary_is_left(tmp_path):
    a, b = tmp_path / "out" / "a.bin", tmp_path / "out" / "b.json"
    with staged_files(a, b) as (ta, tb):
        assert ta.parent == b.parent == a.parent
        assert ta.name.startswith(".a.bin.")
        assert ta.name.endswith(".part")
        assert ta.stat().st_mode & 0o777 == 0o600
        ta.write_bytes(b"A")
        tb.write_text("B")
        assert not a.exists()
        assert not b.exists()
    assert (a.read_bytes(), b.read_text()) == (b"A", "B")
    assert sorted(os.listdir(a.parent)) == ["a.bin", "b.json"]


def test_a_failing_body_leaves_nothing(tmp_path):
    final = tmp_path / "a.bin"
    with pytest.raises(RuntimeError, match="interrupted"):
        _write(final, fail=True)
    assert os.listdir(tmp_path) == []


def test_a_failed_second_rename_takes_the_first_back(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    real_replace = os.replace

    def replace(src, dst):
        if str(dst) == str(b):
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    naming = lambda error, final: disk_error(error, final, instead=True)  # noqa: E731
    with pytest.raises(StorageUnavailable, match=f"^{b}: No space left"):
        _write(a, b, on_error=naming)
    assert os.listdir(tmp_path) == []


def test_without_overwrite_an_existing_file_is_refused_and_kept(tmp_path):
    final = tmp_path / "keys" / "k.json"
    _write(final, body=b"first", overwrite=False, durable=True, parent_mode=0o700)
    assert final.parent.stat().st_mode & 0o777 == 0o700
    with pytest.raises(InvalidInput, match="already exists; refusing to overwrite it"):
        _write(final, body=b"second", overwrite=False, suffix=".tmp")
    assert final.read_text() == "first"
    assert os.listdir(final.parent) == ["k.json"]


def test_overwrite_replaces_an_existing_file(tmp_path):
    final = tmp_path / "a"
    final.write_text("old")
    with staged_files(final) as (temp,):
        temp.write_text("new")
    assert final.read_text() == "new"
