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
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
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
