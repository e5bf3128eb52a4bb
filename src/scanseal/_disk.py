"""What a file system failure means for the user: one line naming the file, a stable exit code.

A full disk, a read-only ``$SCANSEAL_HOME`` or a directory where a file was meant surface from
Python as bare ``OSError``\\ s, often without a file name (a failed ``write`` on a descriptor).
Where ScanSeal writes, it maps them here:

- no space or quota left, an I/O error, a file too large: :class:`StorageUnavailable` (exit 5,
  HTTP 503): nothing is wrong with the request, try again once there is room;
- a read-only file system, a missing permission, a path that is not what it should be (a
  directory, a missing parent): :class:`InvalidInput` (exit 2, HTTP 400): the path given, or
  the home it lives in, cannot be written as asked.

A store ScanSeal keeps for itself (the block store under ``$SCANSEAL_HOME``, which a gateway
writes on every upload) is different: whatever stops it from writing, the request was fine and
the service is not, so every failure there is :class:`StorageUnavailable` (``store=True``).

Files that must appear whole or not at all (an envelope and its manifest, a keystore) are
written through :func:`staged_files`: a private temporary file beside each, put in place only
once everything was written.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from scanseal.errors import InvalidInput, ScanSealError, StorageUnavailable

_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def disk_error(
    error: OSError, path: Path | str | None = None, *, instead: bool = False, store: bool = False
) -> ScanSealError:
    """The ScanSealError for ``error``, naming its file (else ``path``, else none).

    With ``instead``, ``path`` is named even when the error names a file of its own: that one
    is a temporary file beside the one the user asked for. With ``store``, the file belongs to
    a store ScanSeal keeps, and any failure is StorageUnavailable.
    """
    where = error.filename if error.filename is not None and not instead else path
    detail = error.strerror or type(error).__name__
    reason = f"{where}: {detail}" if where is not None else detail
    if store or error.errno in _NO_ROOM or isinstance(error, ConnectionError | TimeoutError):
        return StorageUnavailable(reason)
    return InvalidInput(reason)


@contextmanager
def disk_errors(
    path: Path | str | None = None, *, instead: bool = False, store: bool = False
) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into :func:`disk_error`'s ScanSealError."""
    try:
        yield
    except OSError as error:
        raise disk_error(error, path, instead=instead, store=store) from error


_PROBE_SIZE = 4096
"""Bytes of a probe file: a full file system refuses them (an empty file may still fit)."""


def probe_write(directory: Path) -> str | None:
    """Write and remove a small file in ``directory`` (what a health check asks of a store):
    None if that worked, else why not, in one line (a full disk, a read-only or missing
    directory)."""
    probe = directory / f".probe-{os.getpid()}-{threading.get_ident()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, bytes(_PROBE_SIZE))
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as error:
        return disk_error(error, directory, instead=True).reason
    return None


OnError = Callable[[OSError, Path], BaseException]
"""Turns a failure of staging or placing a file into the error to raise, given the final path."""

_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK})


@contextmanager
def staged_files(
    *finals: Path,
    overwrite: bool = True,
    durable: bool = False,
    suffix: str = ".part",
    parent_mode: int = 0o777,
    on_error: OnError | None = None,
) -> Iterator[list[Path]]:
    """A new empty temporary file beside each of ``finals``, put in place if the body succeeds.

    Each temporary is ``.NAME.<random><suffix>`` in the final's directory (created with
    ``parent_mode`` if missing), mode 0600. After the body they are put in place in order;
    if one cannot be, those already placed are removed again, so the caller gets all of
    ``finals`` or none, and no temporary is left in any case (a crash may leave one).

    ``overwrite``: rename over an existing final; otherwise hard-link, so that an existing
    final (even one created meanwhile) is never replaced but refused (InvalidInput), with a
    check-then-rename where the file system has no hard links. ``durable``: fsync each file
    before it is placed and its directory after. ``on_error`` maps an OSError of these steps
    (not of the body) to what is raised instead, e.g. an error naming the final, not the
    temporary.
    """
    temporaries: list[Path] = []
    placed: list[Path] = []
    try:
        for final in finals:
            final.parent.mkdir(parents=True, exist_ok=True, mode=parent_mode)
            with _mapped(final, on_error):
                handle, name = tempfile.mkstemp(
                    prefix=f".{final.name}.", suffix=suffix, dir=final.parent
                )
            os.close(handle)
            temporaries.append(Path(name))
        yield temporaries
        for temporary, final in zip(temporaries, finals, strict=True):
            with _mapped(final, on_error):
                if durable:
                    fsync(temporary)
                _place(temporary, final, overwrite=overwrite)
                if durable:
                    fsync(final.parent)
            placed.append(final)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for path in temporaries:
            path.unlink(missing_ok=True)  # a hard-linked temporary is still there


@contextmanager
def _mapped(final: Path, on_error: OnError | None) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        if on_error is None:
            raise
        raise on_error(error, final) from error


def _place(temporary: Path, final: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, final)
        return
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise InvalidInput(f"{final} already exists; refusing to overwrite it") from None
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        if final.exists():  # no hard links here: fall back to check-then-rename
            raise InvalidInput(f"{final} already exists; refusing to overwrite it") from None
        os.replace(temporary, final)


def fsync(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
