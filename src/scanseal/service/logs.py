"""The gateway's log: timestamped lines with a level, as text or as one JSON object per line.

``scanseal serve`` calls :func:`configure` once, with ``[gateway] log_format`` / ``log_level``
or ``--log-format`` / ``--log-level``. Every ScanSeal logger (``scanseal.*``: the access log,
the receiving DICOM log, the ledger's anchors, the agent) writes through one stderr handler at
that level; other libraries' loggers (uvicorn's among them) reach it at WARNING and above.

A log call gives its structured values as ``extra={"fields": {...}}``: the text format appends
them as ``key=value``, the JSON format carries them in ``fields``, so a program reading the log
never parses the message. docs/OPERATIONS.md lists the lines and their fields.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final, TextIO

FORMATS: Final = ("text", "json")
LEVELS: Final = ("debug", "info", "warning", "error")
_OTHERS_LEVEL: Final = logging.WARNING
_HANDLER_NAME: Final = "scanseal"


def check(log_format: str, log_level: str) -> str | None:
    """What is wrong with this format and level, or None."""
    if log_format not in FORMATS:
        return f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}"
    if log_level not in LEVELS:
        return f"log_level must be one of {', '.join(LEVELS)}, not {log_level!r}"
    return None


def configure(
    log_format: str = "text", log_level: str = "info", stream: TextIO | None = None
) -> None:
    """Send ScanSeal's loggers (at ``log_level``) and everyone else's warnings to one stderr
    handler in ``log_format``; calling it again replaces the handler, never adds a second."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    ours = logging.getLogger("scanseal")
    root = logging.getLogger()
    for logger in (ours, root):
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
    ours.setLevel(log_level.upper())
    ours.propagate = False  # the root has the same handler: each line once
    root.setLevel(_OTHERS_LEVEL)


def configured() -> bool:
    """Whether :func:`configure` has set up ScanSeal's log (a module that would give its logger
    a handler of its own leaves it alone then)."""
    return any(h.get_name() == _HANDLER_NAME for h in logging.getLogger("scanseal").handlers)


def timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2026-12-03T11:32:18.123Z``."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{whole}.{int(created % 1 * 1000):03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured values a log call gave (``extra={"fields": ...}``)."""
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``TS LEVEL logger: message key=value ...``, then the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{timestamp(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        )
        pairs = " ".join(f"{key}={_text(value)}" for key, value in fields_of(record).items())
        if pairs:
            line += " " + pairs
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``fields`` (and
    ``exc``, the traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "fields": fields_of(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    """A field in the text format: bare when it has no space or quote, else JSON-quoted."""
    shown = "-" if value is None else str(value)
    if not shown or any(c in shown for c in ' "=\n'):
        return json.dumps(shown, ensure_ascii=False)
    return shown


class SourceLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's connection logger with the peer's address among its fields (its "Invalid HTTP
    request received" names no one otherwise); ``level`` as uvicorn reads it from a Logger."""

    def __init__(self, logger: logging.Logger, source: str | None) -> None:
        super().__init__(logger, {"fields": {"source": source}})

    @property
    def level(self) -> int:
        return int(self.logger.level)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return msg, kwargs
