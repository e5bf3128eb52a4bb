"""What a backup archive holds besides the files: ``MANIFEST.json``, and the rules every path
in the archive follows, shared by the writer and the reader.

The manifest names every directory and every file with its size, SHA-256 and permission bits.
It detects an archive that was truncated, corrupted or edited by accident (a restore refuses it
and writes nothing); it is not a signature: whoever can rewrite the archive can rewrite its
manifest too, so keep backups where only operators can write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from scanseal.errors import IntegrityError, InvalidInput

NAME: Final = "MANIFEST.json"
"""The manifest's member; every file and directory of the home is a member under PREFIX."""
PREFIX: Final = "home/"
FORMAT: Final = "scanseal-backup"
VERSION: Final = 1
MAX_MANIFEST_BYTES: Final = 64 * 1024 * 1024
LOCK_FILES: Final = frozenset({"serve.lock", "agent.lock"})
"""Top-level files of a home that are never backed up nor count as content (scanseal._lock)."""
STAGING_PREFIX: Final = ".restore-"
ASIDE_PREFIX: Final = ".before-restore-"
SQLITE_MAGIC: Final = b"SQLite format 3\x00"
SQLITE_SIDECARS: Final = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class FileEntry:
    """One regular file of the home: its path in the archive, size, SHA-256 and mode bits."""

    path: str
    size: int
    sha256: str
    mode: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "mode": self.mode}


@dataclass(frozen=True)
class Manifest:
    """The archive's table of contents."""

    created: int
    version_of_scanseal: str
    home: str
    directories: tuple[str, ...]
    files: tuple[FileEntry, ...]

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "scanseal": self.version_of_scanseal,
            "home": self.home,
            "directories": list(self.directories),
            "files": [entry.to_dict() for entry in self.files],
        }
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Manifest:
        """Parse and check a manifest; IntegrityError for anything that is not one."""
        try:
            body = json.loads(data)
            if body.get("format") != FORMAT or body.get("version") != VERSION:
                raise IntegrityError(f"{where} is not a version-{VERSION} ScanSeal backup")
            files = tuple(
                FileEntry(check_path(f["path"]), int(f["size"]), str(f["sha256"]), int(f["mode"]))
                for f in body["files"]
            )
            directories = tuple(check_path(d) for d in body["directories"])
            return cls(int(body["created"]), str(body["scanseal"]), str(body["home"]),
                       directories, files)  # fmt: skip
        except IntegrityError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as error:
            raise IntegrityError(f"{where}: its manifest is malformed ({error})") from None


def check_path(name: object) -> str:
    """``name`` if it is a plain relative POSIX path inside the home, else InvalidInput: no
    absolute path, no ``..``, no empty or ``.`` parts, nothing ScanSeal's restore uses itself."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise InvalidInput(f"unsafe path in the archive: {name!r}")
    path = PurePosixPath(name)
    parts = name.split("/")
    if path.is_absolute() or any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(f"unsafe path in the archive: {name!r}")
    if parts[0].startswith((STAGING_PREFIX, ASIDE_PREFIX)):
        raise InvalidInput(f"reserved path in the archive: {name!r}")
    return name
