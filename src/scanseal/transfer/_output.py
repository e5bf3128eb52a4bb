"""Where sealed and opened files are written: whole or not at all, plaintext never under a name
before every check held.

``staged`` writes temporaries beside the final names and renames them into place only when the
body succeeded (a seal's envelope and manifest: both or neither). ``plaintext_output`` decrypts
into a file with no name yet (Linux ``O_TMPFILE`` in the output's directory, mode 0600) and
links it into place at the end; where ``O_TMPFILE`` is missing it falls back to ``staged``.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from scanseal._disk import disk_error, staged_files
from scanseal.errors import ScanSealError


def staged(*finals: Path) -> AbstractContextManager[list[Path]]:
    """A temporary file beside each of ``finals``: renamed into place on success, else removed.

    The renames come only after the body succeeded, in order; if one fails, those already made
    are undone, so a seal leaves either both envelope and manifest or neither, and no
    ``.part`` file in any case (see :func:`scanseal._disk.staged_files`).
    """
    return staged_files(*finals, on_error=_naming_final)


def _naming_final(error: OSError, final: Path) -> ScanSealError:
    """Name the file asked for, not the temporary beside it."""
    return disk_error(error, final, instead=True)


_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
_PROC_FD = Path("/proc/self/fd")


def _unnamed_file(directory: Path) -> int | None:
    """A descriptor for a new file in ``directory`` with no name (O_TMPFILE), if supported.

    None means the platform, kernel or file system cannot do it (or /proc, needed to name the
    file later, is missing); the caller then falls back to a named temporary file.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not _PROC_FD.is_dir():
        return None
    try:
        return os.open(directory, flag | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if error.errno in _NO_TMPFILE:
            return None
        raise


def _name_unnamed(fd: int, final: Path) -> None:
    """Give the unnamed file its name: linkat directly, or via a fresh name and a rename.

    ``src_dir_fd`` makes CPython call linkat with AT_SYMLINK_FOLLOW (with plain paths it calls
    link(), which would try to link the /proc symlink itself and fail with EXDEV).
    """
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.link(str(fd), final, src_dir_fd=proc, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(8)}.part")
        os.link(str(fd), temporary, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)
    try:
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def plaintext_output(final: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """A private file for plaintext, named ``final`` only if the body raises nothing.

    Yields the writable (and readable) file and a path that reads it back (for the pixel
    check). With O_TMPFILE nothing in the directory names the file until the end, so neither
    an error nor a crash leaves plaintext under a name; otherwise see ``staged``. The caller
    must not close the file.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd = _unnamed_file(final.parent)
    if fd is None:
        with staged(final) as (tmp,):
            os.chmod(tmp, 0o600)
            with tmp.open("w+b") as private:
                yield private, tmp
        return
    with os.fdopen(fd, "w+b") as unnamed:
        yield unnamed, _PROC_FD / str(fd)
        unnamed.flush()
        _name_unnamed(fd, final)
