"""The trail as people read it: JSON entries, CSV and table rows, one shape for all three.

Input is the trail in ``AuditEntry.to_dict`` form (from the ledger, or a gateway's answer,
which may already carry names); output entries say what happened (``action``, ``outcome``), who
(``actor`` and ``subject`` with their names), when (``time``, ISO 8601 UTC with its zone) and the
evidence. Entries from an older gateway without ``time`` or ``outcome`` get them here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any, Final

from scanseal.audit._names import with_names
from scanseal.ledger import utc_iso

FIELDS: Final = (
    "time",
    "action",
    "outcome",
    "allowed",
    "actor",
    "actor_name",
    "subject",
    "subject_name",
    "subject_verified",
    "claimed_name",
    "access_type",
    "reason",
    "detail",
    "evidence",
    "source",
    "tx_hash",
    "proof",
)
CSV_COLUMNS: Final = (
    "time",
    "action",
    "outcome",
    "actor",
    "actor_name",
    "subject",
    "subject_name",
    "claimed_name",
    "access",
    "allowed",
    "reason",
    "evidence",
)
TABLE_COLUMNS: Final = (
    "time",
    "action",
    "outcome",
    "by",
    "subject",
    "access",
    "reason",
    "evidence",
)


def entries(trail: list[dict[str, Any]], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The trail as the entries ``scanseal audit --format json`` prints (names from ``names``
    where the trail brought none; ``record`` first where the trail names it)."""
    named = with_names([_completed(entry) for entry in trail], names)
    out = []
    for entry, original in zip(named, trail, strict=True):
        for key in ("actor_name", "subject_name", "claimed_name"):
            if isinstance(original.get(key), str):
                entry[key] = original[key]
        chosen = {key: entry.get(key) for key in FIELDS}
        # a study record's trail names each event's record (the study's or an instance's)
        out.append({"record": original["record"], **chosen} if "record" in original else chosen)
    return out


def to_json(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, indent=2) + "\n"


def to_csv(events: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for event in events:
        writer.writerow(_csv_row(event))
    return buffer.getvalue()


def to_csv_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    """The CSV of events of several records, (record, event) pairs as a query returns: a
    ``record`` column first."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=("record", *CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for record, event in events:
        writer.writerow({"record": record, **_csv_row(event)})
    return buffer.getvalue()


def table_rows(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row of :data:`TABLE_COLUMNS` per event: names beside shortened addresses."""
    rows: list[tuple[str, ...]] = []
    for event in events:
        subject = _who(event.get("subject"), event.get("subject_name"))
        if event.get("subject_verified") is False:
            claimed = event.get("claimed_name") or event.get("subject")
            subject = f"unverified claim: {claimed} ({_short(event.get('subject'))})"
        rows.append(
            (
                str(event["time"]),
                str(event["action"]),
                str(event["outcome"]).upper() if event["outcome"] != "success" else "success",
                _who(event.get("actor"), event.get("actor_name")),
                subject,
                str(event.get("access_type") or ""),
                str(event.get("reason") or event.get("detail") or ""),
                str(event.get("evidence") or ""),
            )
        )
    return rows


def _completed(entry: dict[str, Any]) -> dict[str, Any]:
    """``time`` and ``outcome`` for an entry from a gateway that did not send them."""
    done = dict(entry)
    if not isinstance(done.get("time"), str):
        done["time"] = utc_iso(int(done["timestamp"]))
    if done.get("outcome") not in ("success", "denied", "unauthenticated"):
        allowed = done.get("allowed")
        done["outcome"] = "success" if allowed is None or allowed else "denied"
    return done


def _csv_row(event: dict[str, Any]) -> dict[str, str]:
    outcome = str(event["outcome"])
    allowed = "" if event["action"] not in ("access", "granted", "revoked") else outcome
    if event.get("access_type") is None:
        allowed = ""
    return {
        "time": str(event["time"]),
        "action": str(event["action"]),
        "outcome": outcome,
        "actor": str(event.get("actor") or ""),
        "actor_name": str(event.get("actor_name") or ""),
        "subject": str(event.get("subject") or ""),
        "subject_name": str(event.get("subject_name") or ""),
        "claimed_name": str(event.get("claimed_name") or ""),
        "access": str(event.get("access_type") or ""),
        "allowed": {"success": "allowed", "": ""}.get(allowed, "DENIED"),
        "reason": str(event.get("reason") or event.get("detail") or ""),
        "evidence": str(event.get("evidence") or ""),
    }


def _who(address: object, name: object) -> str:
    if not address:
        return ""
    return f"{name} ({_short(address)})" if name else str(address)


def _short(address: object) -> str:
    text = str(address or "")
    return text[:8] + "…" + text[-4:] if len(text) == 42 else text
