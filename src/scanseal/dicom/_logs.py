"""One stderr handler for a DICOM log (the agent's, the receiving side's) in a long-running
process, when nothing else configured one: timestamp, level, message, one line per event.

``scanseal serve`` configures the ``scanseal`` logger itself (text or JSON lines, with each
line's fields): then these logs write through it and get no handler of their own."""

from __future__ import annotations

import logging


def to_stderr(log: logging.Logger) -> None:
    """Give ``log`` a stderr handler at INFO unless it, or the ``scanseal`` logger above it,
    has one already."""
    if not log.handlers and not logging.getLogger("scanseal").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
