"""Writing a backup: every file of a quiet home into one tar archive, mode 0600.

The home must be quiet: the caller holds its ``serve`` and ``agent`` locks, so no gateway or
agent writes while the files are read. SQLite databases are still copied through SQLite's own
backup API rather than as bytes, so a database left with a write-ahead log (a gateway that
crashed) arrives whole in one file, its ``-wal`` and ``-shm`` companions left out. Every other
file is copied byte for byte: the keystore's files stay encrypted under their passphrases,
nothing here decrypts anything. The archive is written beside OUT under a temporary name and
renamed into place only once complete, so OUT is a whole archive or absent.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scanseal import __version__
from scanseal._disk import fsync
from scanseal.backup import _manifest
from scanseal.backup._manifest import FileEntry, Manifest
from scanseal.errors import InvalidInput


@dataclass(frozen=True)
class BackupSummary:
    """What :func:`write_archive` put in the archive."""

    archive: Path
    files: int
    bytes: int
    databases: int


def write_archive(home: Path, out: Path) -> BackupSummary:
    """Archive every directory and file of ``home`` (lock files and SQLite companions aside)
    into ``out``, which must not exist, with a manifest of SHA-256 per file."""
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            summary = _fill(home, raw, Path(scratch))
            raw.flush()
            os.fsync(raw.fileno())
        os.link(partial, out)  # never replaces a file that appeared meanwhile
    finally:
        partial.unlink(missing_ok=True)
    fsync(out.parent)
    return BackupSummary(out, *summary)


def _fill(home: Path, raw: BinaryIO, scratch: Path) -> tuple[int, int, int]:
    """Write the members and the manifest; (files, bytes, databases)."""
    directories: list[str] = []
    files: list[FileEntry] = []
    databases = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative, path in _walk(home):
            if path.is_dir():
                directories.append(relative)
                tar.addfile(_info(relative, path, tarfile.DIRTYPE, 0))
                continue
            source = path
            if _is_sqlite(path):
                source = _copy_database(path, scratch / f"{len(files)}.sqlite3")
                databases += 1
            files.append(_add_file(tar, relative, source, path))
            if source != path:
                source.unlink()
        manifest = Manifest(int(time.time()), __version__, str(home),
                            tuple(directories), tuple(files))  # fmt: skip
        data = manifest.to_bytes()
        info = tarfile.TarInfo(_manifest.NAME)
        info.size, info.mode, info.mtime = len(data), 0o600, manifest.created
        tar.addfile(info, _Reader(data))
    return len(files), sum(f.size for f in files), databases


def _walk(home: Path) -> Iterator[tuple[str, Path]]:
    """(archive-relative path, path) of every entry to keep, parents before children."""
    for directory, subdirs, names in os.walk(home, followlinks=False):
        here = Path(directory)
        subdirs[:] = sorted(name for name in subdirs if not _skipped(home, here, name))
        kept = sorted(name for name in names if not _skipped(home, here, name))
        for name in [*subdirs, *kept]:
            path = here / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise InvalidInput(f"{path} is not a regular file or directory: not backed up")
            yield _manifest.check_path(path.relative_to(home).as_posix()), path


def _skipped(home: Path, here: Path, name: str) -> bool:
    """Lock files, the leftovers of a restore, and SQLite's companions of a database."""
    reserved = (_manifest.STAGING_PREFIX, _manifest.ASIDE_PREFIX)
    if here == home and (name in _manifest.LOCK_FILES or name.startswith(reserved)):
        return True
    return any(
        name.endswith(suffix) and _is_sqlite(here / name.removesuffix(suffix))
        for suffix in _manifest.SQLITE_SIDECARS
    )


def _is_sqlite(path: Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(len(_manifest.SQLITE_MAGIC)) == _manifest.SQLITE_MAGIC


def _copy_database(path: Path, copy: Path) -> Path:
    """A consistent single-file copy of the database at ``path`` (its WAL included)."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    except sqlite3.DatabaseError as error:
        raise InvalidInput(f"{path}: cannot copy this SQLite database ({error})") from None
    finally:
        target.close()
        source.close()
    return copy


def _add_file(tar: tarfile.TarFile, relative: str, source: Path, original: Path) -> FileEntry:
    """Add ``source`` under ``relative`` (mode of ``original``), hashing what goes in."""
    size = source.stat().st_size
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        tar.addfile(_info(relative, original, tarfile.REGTYPE, size), _Hashing(handle, digest))
    mode = original.stat().st_mode & 0o777
    return FileEntry(relative, size, digest.hexdigest(), mode)


def _info(relative: str, path: Path, kind: bytes, size: int) -> tarfile.TarInfo:
    """A member header that names no user or group of this machine."""
    stat = path.stat()
    info = tarfile.TarInfo(_manifest.PREFIX + relative)
    info.type, info.size, info.mode, info.mtime = kind, size, stat.st_mode & 0o777, stat.st_mtime
    return info


class _Hashing:
    """A file object that feeds every byte read through ``digest``."""

    def __init__(self, handle: BinaryIO, digest: hashlib._Hash) -> None:
        self._handle, self._digest = handle, digest

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._digest.update(data)
        return data


class _Reader:
    """``bytes`` as the minimal file object ``tarfile.addfile`` reads."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk, self._at = self._data[self._at : end], min(end, len(self._data))
        return chunk
