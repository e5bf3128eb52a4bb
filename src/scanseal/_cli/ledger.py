"""`scanseal audit RECORD|STUDY`: a record's audit trail as a table, JSON or CSV.

RECORD is the manifest CID as printed by `scanseal seal` (base32 `b…`, base58 `Qm…`, or hex
`f…`/`0x…` of the binary CID). The trail comes from the chain's events and, in batched mode, from
the operator's log with an inclusion proof per entry. STUDY, a Study Instance UID, stands for
each record of that study the caller owns (through its gateway).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scanseal._cli._common import ConfigOption, connect, study_records
from scanseal.errors import InvalidInput, NotFound
from scanseal.storage import CID
from scanseal.transfer.catalogue import is_study_uid

_COLUMNS = ("time", "action", "actor", "subject", "access", "allowed", "reason", "evidence")


def register(app: typer.Typer) -> None:
    """Attach `scanseal audit` as a top-level command."""
    app.command("audit")(audit)


def audit(
    record: Annotated[str, typer.Argument(help="Manifest CID of the record (b…, Qm…, f… or 0x…).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write JSON to FILE ('-': stdout).")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write CSV to FILE ('-': stdout).")
    ] = None,
    config: ConfigOption = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Ask this gateway (signed request) instead of the ledger."),
    ] = None,
    as_name: Annotated[
        str | None, typer.Option("--as", help="Your identity, to sign the gateway request.")
    ] = None,
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate of the gateway.")] = None,
) -> None:
    """Print who stored, granted, revoked and accessed a record, with the evidence for each.

    A Study Instance UID in place of the record asks the gateway for the trail of each record
    of that study you own (one table each; JSON and CSV rows carry their ``record``)."""
    if is_study_uid(record):
        _study_trails(record, gateway, as_name, ca, json_out, csv_out)
        return
    cid = parse_cid(record)
    if gateway is not None or as_name is not None:
        trail = _remote_trail(record, gateway, as_name, ca)
    else:
        trail = _local_trail(cid, config)
    if not trail:
        raise NotFound(f"no ledger events for record {record}")
    export(record, trail, json_out, csv_out)


def _local_trail(cid: bytes, config: Path | None) -> list[dict[str, Any]]:
    """The trail read from the ledger itself, in the JSON form the gateway also serves."""
    from scanseal.ledger import Ledger, LedgerConfig

    with Ledger.open(LedgerConfig.load(config)) as ledger:
        return [entry.to_dict() for entry in ledger.audit_trail(cid)]


def _remote_trail(
    record: str, gateway: str | None, as_name: str | None, ca: Path | None
) -> list[dict[str, Any]]:
    """The trail a gateway returns to a signed request, already in ``AuditEntry.to_dict`` form."""
    with connect(gateway, ca, as_name) as client:
        return client.audit(record)


def _study_trails(
    study: str,
    gateway: str | None,
    as_name: str | None,
    ca: Path | None,
    json_out: Path | None,
    csv_out: Path | None,
) -> None:
    """Each owned record's trail of ``study``, through the gateway (which alone knows it)."""
    with connect(gateway, ca, as_name) as client:
        trails = {
            e.record: client.audit(e.record) for e in study_records(client, study, owned=True)
        }
    if json_out is None and csv_out is None:
        for record, trail in trails.items():
            _print_table(record, trail)
        return
    merged = [{"record": record, **entry} for record, trail in trails.items() for entry in trail]
    export(study, merged, json_out, csv_out)


def export(
    record: str, trail: list[dict[str, Any]], json_out: Path | None, csv_out: Path | None
) -> None:
    """JSON and/or CSV when asked, else a table: one renderer for the local and remote forms."""
    if json_out is not None:
        _write(json_out, json.dumps(trail, indent=2) + "\n")
    if csv_out is not None:
        _write(csv_out, _as_csv(trail))
    if json_out is None and csv_out is None:
        _print_table(record, trail)


def trail_row(entry: dict[str, Any]) -> dict[str, str]:
    """A table or CSV row from one JSON audit entry (``AuditEntry.to_dict`` form)."""
    when = datetime.fromtimestamp(int(entry["timestamp"]), UTC).strftime("%Y-%m-%d %H:%M:%S")
    allowed = entry.get("allowed")
    return {
        "time": when,
        "action": str(entry["action"]),
        "actor": str(entry["actor"]),
        "subject": str(entry.get("subject") or ""),
        "access": str(entry.get("access_type") or ""),
        "allowed": "" if allowed is None else ("allowed" if allowed else "DENIED"),
        "reason": str(entry.get("reason") or ""),
        "evidence": str(entry.get("evidence") or ""),
    }


def parse_cid(text: str) -> bytes:
    """The binary CID from any multibase text form, or ``0x``-hex as the chain shows it."""
    text = text.strip()
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise InvalidInput(f"{text!r} is not a valid hex CID") from None
    return CID.parse(text).to_bytes()


def _as_csv(trail: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    studied = any("record" in entry for entry in trail)  # a study's trails, merged
    columns = ["record", *_COLUMNS] if studied else list(_COLUMNS)
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for entry in trail:
        row = trail_row(entry)
        writer.writerow({"record": str(entry["record"]), **row} if studied else row)
    return buffer.getvalue()


def _write(target: Path, text: str) -> None:
    if str(target) == "-":
        sys.stdout.write(text)
        return
    try:
        target.write_text(text, "utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {target}: {error}") from error


def _print_table(record: str, trail: list[dict[str, Any]]) -> None:
    table = Table(title=f"audit trail of {record}", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column, overflow="fold")
    for entry in trail:
        table.add_row(*trail_row(entry).values())
    Console(highlight=False).print(table)
