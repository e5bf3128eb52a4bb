"""The filters of an audit query as ``scanseal audit`` takes them (docs/AUDIT.md), and the
times they name: ISO 8601 with a zone, a date (midnight UTC), or a span back from now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from scanseal.errors import InvalidInput

_RELATIVE: Final = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True)
class QueryOptions:
    """The filters `scanseal audit` was given."""

    actor: str | None = None
    patient: str | None = None
    study: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None

    @property
    def given(self) -> bool:
        return any(value is not None for value in vars(self).values())


def query_time(text: str | None, now: datetime | None = None) -> str | None:
    """An ISO 8601 time (zone required; a date alone is midnight UTC) or a relative one
    (``7d``, ``12h``, ``30m`` ago) as the ISO 8601 UTC text a gateway takes."""
    if text is None:
        return None
    now = datetime.now(UTC) if now is None else now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        then = now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return then.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is neither ISO 8601 nor a relative time (7d, 12h, 30m)"
        ) from None
    if parsed.tzinfo is None:
        if len(text) > 10:
            raise InvalidInput(f"{text!r} has no zone: add Z or +hh:mm")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
