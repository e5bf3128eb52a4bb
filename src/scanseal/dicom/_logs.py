"""One stderr handler for a DICOM log (the agent's, the receiving side's) in a long-running
process, when nothing else configured one: timestamp, level, message, one line per event."""

from __future__ import annotations

import logging


def to_stderr(log: logging.Logger) -> None:
    """Give ``log`` a stderr handler at INFO unless it has one already."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
