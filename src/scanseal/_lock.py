"""One process per role on a home: ``scanseal serve`` and ``scanseal agent`` each hold a lock.

Two gateways on one ``$SCANSEAL_HOME`` would share its chain journal, state database and block
store, and the second would only find out when it failed to bind its port, after it had opened
all of them. So each role takes an exclusive ``flock`` on ``$SCANSEAL_HOME/ROLE.lock`` before it
opens anything, and writes its PID into the file once it holds it. A second process of the same
role is refused at once (GatewayUnavailable, exit 5), naming the holder's PID. The kernel drops
the lock when the holder exits, however it exits, so a crash never leaves a stale lock; the file
itself stays (removing it would let a third process lock a different file of the same name).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from scanseal._disk import disk_error
from scanseal.config import scanseal_home
from scanseal.errors import GatewayUnavailable


def home_lock(role: str) -> AbstractContextManager[None]:
    """:func:`exclusive` on ``$SCANSEAL_HOME/ROLE.lock``, naming ``scanseal ROLE``."""
    return exclusive(scanseal_home() / f"{role}.lock", f"scanseal {role}")


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600) while the block runs.

    ``what`` names the holder in the refusal: ``"scanseal serve"`` gives "scanseal serve is
    already running on HOME (pid N)".
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise disk_error(error, path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise GatewayUnavailable(
                f"{what} is already running on {path.parent} ({holder}; lock {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """``pid N`` from the lock file, or why it cannot say (the holder has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {text}" if text.isdigit() else "pid unknown"
