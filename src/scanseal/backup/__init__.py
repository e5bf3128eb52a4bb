"""Backing up and restoring a gateway's home (``scanseal backup`` / ``scanseal restore``).

One tar archive, mode 0600, holds everything under ``$SCANSEAL_HOME`` that a department needs
to come back: the keystore (still encrypted: nothing here asks for a passphrase), the members'
cards, the gateway state (nonces, pending uploads, the DICOM index and inbox cursor), the
forwarding agent's state, the embedded chain's journal and batched logs, the embedded block
store, and the configuration when it lives in the home; ``MANIFEST.json`` names every file with
its SHA-256, and a restore writes nothing unless every file matches. The layout: docs/DEPLOY.md,
"Backups".

Both hold the home's ``serve`` and ``agent`` locks (``scanseal._lock``) while they run, so a
backup never reads a home a gateway or agent is writing (stop them first: exit 5 names the
PID), and neither can start on a home while it is being restored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from scanseal._disk import disk_error
from scanseal._lock import exclusive
from scanseal.backup._manifest import LOCK_FILES
from scanseal.backup._read import RestoreSummary, restore_archive
from scanseal.backup._write import BackupSummary, write_archive
from scanseal.errors import GatewayUnavailable, InvalidInput

__all__ = ["BackupSummary", "RestoreSummary", "backup_home", "restore_home"]


def backup_home(home: Path, out: Path, state_dirs: Iterable[Path] = ()) -> BackupSummary:
    """Archive ``home`` into ``out`` (a new file outside the home). ``state_dirs`` are the
    directories the configuration has a gateway or agent write: each must lie inside the home,
    or the archive would miss it (InvalidInput naming them)."""
    home, out = home.resolve(), out.absolute()
    if out.exists() or out.is_symlink():
        raise InvalidInput(f"{out} exists: choose a new file for the backup")
    if out.resolve().is_relative_to(home):
        raise InvalidInput(f"{out} is inside {home}: write the backup elsewhere")
    if not out.parent.is_dir():
        raise InvalidInput(f"{out.parent} is not a directory")
    outside = sorted({str(d) for d in state_dirs if not d.resolve().is_relative_to(home)})
    if outside:
        raise InvalidInput(
            f"the configuration keeps state outside {home} ({', '.join(outside)}), which a "
            "backup of the home would miss: move it under the home"
        )
    with _quiet(home, "back up"):
        try:
            return write_archive(home, out)
        except OSError as error:
            raise disk_error(error, out) from None


def restore_home(archive: Path, home: Path, *, force: bool = False) -> RestoreSummary:
    """Restore ``archive`` into ``home`` (created when missing). A home with content is refused
    unless ``force``, which moves that content into ``home/.before-restore-STAMP``."""
    if not archive.is_file():
        raise InvalidInput(f"no such backup: {archive}")
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise disk_error(error, home) from None
    home = home.resolve()
    with _quiet(home, "restore into"):
        try:
            return restore_archive(archive, home, force=force)
        except OSError as error:
            raise disk_error(error, home) from None


@contextmanager
def _quiet(home: Path, doing: str) -> Iterator[None]:
    """Hold the home's serve and agent locks; a running one refuses with its PID."""
    with ExitStack() as held:
        for lock in sorted(LOCK_FILES, reverse=True):  # serve, then agent, as serve takes them
            role = lock.removesuffix(".lock")
            try:
                held.enter_context(exclusive(home / lock, f"scanseal {role}"))
            except GatewayUnavailable as running:
                raise GatewayUnavailable(f"cannot {doing} {home}: {running.reason}") from None
        yield
