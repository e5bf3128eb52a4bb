"""One stderr handler for a DICOM log (the agent's, the receiving side's) in a long-running
process, when nothing else configured one: timestamp, level, message, one line per event.

``scanseal serve`` configures the ``scanseal`` logger itself (text or JSON lines, with each
line's fields): then these logs write through it and get no handler of their own; an acceptor
process is handed that formatter (:func:`handed_down`, :func:`take_over`). The receiving side's
lines (one per stored or refused instance) are written here too."""

from __future__ import annotations

import logging
from typing import Any, Final

from pydicom.dataset import Dataset

from scanseal.transfer import Manifest, ScreenVerdict, screen_verdict

STOW: Final = "STOW-RS"
"""The calling AE title STOW-RS instances are received under (the route's key in [dicom])."""
_log = logging.getLogger("scanseal.dicom.scp")


def handed_down() -> tuple[logging.Formatter | None, int]:
    """The ``scanseal`` logger's formatter (the one ``scanseal serve`` configured, if any) and
    level, for an acceptor process to write its lines as the gateway does."""
    ours = logging.getLogger("scanseal")
    formatter = next((h.formatter for h in ours.handlers if h.formatter is not None), None)
    return formatter, ours.getEffectiveLevel()


def take_over(formatter: logging.Formatter | None, level: int) -> None:
    """In an acceptor process: ScanSeal's lines to stderr with the gateway's formatter and
    level (:func:`handed_down`), or as :func:`to_stderr` writes them when it had none."""
    if formatter is None:
        to_stderr(_log)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    ours = logging.getLogger("scanseal")
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False


def to_stderr(log: logging.Logger) -> None:
    """Give ``log`` a stderr handler at INFO unless it, or the ``scanseal`` logger above it,
    has one already."""
    if not log.handlers and not logging.getLogger("scanseal").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def log_verdict(manifest: Manifest, stored: str, fields: dict[str, Any] | None = None) -> None:
    """One line per stored instance: ``stored`` and the screen's verdict, a warning if flagged;
    ``fields`` (:func:`instance_fields`) with the verdict among them."""
    verdict = screen_verdict(manifest)
    fields = dict(fields or {})
    fields["screen"] = _screen_field(verdict)
    extra = {"fields": fields}
    if verdict is None:
        _log.info("%s (not screened)", stored, extra=extra)
    elif verdict.flagged:
        _log.warning("%s, %s", stored, verdict.describe(), extra=extra)
    else:
        _log.info("%s, %s", stored, verdict.describe(), extra=extra)


def _screen_field(verdict: ScreenVerdict | None) -> str | None:
    """The ``screen`` field of an instance's log line: flagged, clean or not screened."""
    if verdict is None or verdict.not_screened is not None:
        return "not screened"
    return "flagged" if verdict.flagged else "clean"


def log_refused(calling: str, header: Dataset | None, status: int, reason: str) -> None:
    """One line per refused instance (C-STORE, or a STOW-RS part): who sent it, its SOP
    Instance UID when it could be read, the failure status and why."""
    via = _via(calling)
    fields = instance_fields(calling, header, status) | {"reason": reason}
    _log.warning("%s from %s refused: %s", via, calling, reason, extra={"fields": fields})


def instance_fields(calling: str, header: Dataset | None, status: int) -> dict[str, Any]:
    """The fields of an instance's log line: the way in, the calling AE, the SOP Instance UID
    (None when the data set could not be read) and the DICOM status, as 4 hex digits."""
    uid = None
    if header is not None:
        try:
            uid = str(header.get("SOPInstanceUID", "")) or None
        except Exception:  # a value pydicom cannot decode: the line is written without it
            uid = None
    return {"via": _via(calling), "calling_ae": calling, "sop_instance_uid": uid,
            "status": f"{status:04X}"}  # fmt: skip


def _via(calling: str) -> str:
    return STOW if calling == STOW else "C-STORE"


def log_to_stderr() -> None:
    """Give the receiving log (C-STORE and STOW-RS, one line per instance) a stderr handler
    when nothing else configured one (``scanseal serve``)."""
    to_stderr(_log)
