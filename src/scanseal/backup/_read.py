"""Restoring a backup: verify every file against the manifest, then put the home in place.

Nothing is extracted by ``tarfile`` itself: each member is checked (a regular file or a
directory, a plain relative path under ``home/``, named once) and written by this module into a
staging directory inside the home, hashed on the way. Only when every file of the manifest
arrived with its size and SHA-256, and nothing else did, does the staged home replace the
current one: what was there (with ``force``) is moved into ``.before-restore-STAMP`` inside the
home, never deleted. A refused archive leaves the home as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from scanseal._disk import fsync
from scanseal.backup import _manifest
from scanseal.backup._manifest import FileEntry, Manifest
from scanseal.errors import IntegrityError, InvalidInput

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RestoreSummary:
    """What :func:`restore_archive` restored, and where the previous content went."""

    home: Path
    files: int
    bytes: int
    created: int
    moved_aside: Path | None


def current_entries(home: Path) -> list[str]:
    """The home's top-level entries that count as content (not its lock files)."""
    return sorted(p.name for p in home.iterdir() if p.name not in _manifest.LOCK_FILES)


def restore_archive(archive: Path, home: Path, *, force: bool) -> RestoreSummary:
    """Restore ``archive`` into ``home`` (held quiet by the caller's locks); a non-empty home
    only with ``force``."""
    for stale in home.glob(_manifest.STAGING_PREFIX + "*"):  # a restore killed half-way
        shutil.rmtree(stale)
    present = current_entries(home)
    if present and not force:
        shown = ", ".join(present[:5]) + (", …" if len(present) > 5 else "")
        raise InvalidInput(
            f"{home} is not empty ({shown}); restore into an empty home, or pass --force "
            f"to move what is there into {home}/{_manifest.ASIDE_PREFIX}STAMP first"
        )
    staging = home / f"{_manifest.STAGING_PREFIX}{os.getpid()}"
    staging.mkdir(mode=0o700)
    try:
        manifest, written = _extract(archive, staging)
        _verify(archive, manifest, written)
        aside = _move_aside(home, present) if present else None
        for name in sorted(p.name for p in staging.iterdir()):
            (staging / name).rename(home / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync(home)
    total = sum(entry.size for entry in manifest.files)
    return RestoreSummary(home, len(manifest.files), total, manifest.created, aside)


def _extract(archive: Path, staging: Path) -> tuple[Manifest, dict[str, tuple[int, str]]]:
    """Every member written under ``staging``; the manifest and (size, SHA-256) per file."""
    manifest: Manifest | None = None
    written: dict[str, tuple[int, str]] = {}
    seen: set[str] = set()
    try:
        tar = tarfile.open(archive, mode="r:")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, EOFError):
        raise InvalidInput(f"{archive} is not a ScanSeal backup (not a tar archive)") from None
    with tar:
        try:
            for member in tar:
                if member.name in seen:
                    raise IntegrityError(f"{archive}: {member.name} appears twice")
                seen.add(member.name)
                if member.name == _manifest.NAME:
                    manifest = _read_manifest(tar, member, archive)
                    continue
                written.update(_member(tar, member, staging, archive))
        except (tarfile.TarError, EOFError) as error:
            raise IntegrityError(f"{archive} is truncated or corrupted ({error})") from None
    if manifest is None:
        raise IntegrityError(f"{archive} has no {_manifest.NAME}: not a ScanSeal backup")
    return manifest, written


def _read_manifest(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> Manifest:
    handle = tar.extractfile(member)
    if not member.isfile() or handle is None or member.size > _manifest.MAX_MANIFEST_BYTES:
        raise IntegrityError(f"{archive}: {_manifest.NAME} is not a manifest")
    return Manifest.from_bytes(handle.read(), str(archive))


def _member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, archive: Path
) -> dict[str, tuple[int, str]]:
    """Write one directory or regular file; {path: (size, SHA-256)} for a file."""
    if not member.name.startswith(_manifest.PREFIX):
        raise IntegrityError(f"{archive}: unexpected member {member.name!r}")
    relative = _manifest.check_path(member.name.removeprefix(_manifest.PREFIX))
    target = staging / relative
    if not target.parent.is_dir():
        raise IntegrityError(f"{archive}: {relative} comes before its directory")
    if member.isdir():
        target.mkdir(mode=0o700)
        return {}
    handle = tar.extractfile(member) if member.isfile() else None
    if handle is None:
        raise IntegrityError(f"{archive}: {relative} is not a regular file or directory")
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode & 0o700)
    with os.fdopen(fd, "wb") as out:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {relative: (size, digest.hexdigest())}


def _verify(archive: Path, manifest: Manifest, written: dict[str, tuple[int, str]]) -> None:
    """Every file of the manifest arrived whole, and nothing it does not name."""
    listed: dict[str, FileEntry] = {entry.path: entry for entry in manifest.files}
    extra = sorted(set(written) - set(listed))
    if extra:
        raise IntegrityError(f"{archive}: {extra[0]} is not in its manifest")
    for path, entry in sorted(listed.items()):
        if path not in written:
            raise IntegrityError(f"{archive}: {path} is missing (named in its manifest)")
        if written[path] != (entry.size, entry.sha256):
            raise IntegrityError(f"{archive}: {path} does not match its SHA-256 in the manifest")


def _move_aside(home: Path, present: list[str]) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = home / f"{_manifest.ASIDE_PREFIX}{stamp}-{os.getpid()}"
    aside.mkdir(mode=0o700)
    for name in present:
        if not name.startswith(_manifest.ASIDE_PREFIX):  # earlier restores' leftovers stay
            (home / name).rename(aside / name)
    return aside
