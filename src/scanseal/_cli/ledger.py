"""`scanseal audit RECORD`: a record's audit trail as a table, JSON or CSV.

RECORD is the manifest CID as printed by `scanseal seal` (base32 `b…`, base58 `Qm…`, or hex
`f…`/`0x…` of the binary CID). The trail comes from the chain's events and, in batched mode, from
the operator's log with an inclusion proof per entry.
"""

from __future__ import annotations

import binascii
import csv
import io
import json
import sys
from base64 import b32decode
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from scanseal.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # the ledger pulls in web3 and py-evm: import it only when auditing
    from scanseal.ledger import AuditEntry

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
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
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file with a [ledger] table.")
    ] = None,
) -> None:
    """Print who stored, granted, revoked and accessed a record, with the evidence for each."""
    from scanseal.ledger import Ledger, LedgerConfig

    cid = parse_cid(record)
    with Ledger.open(LedgerConfig.load(config)) as ledger:
        trail = ledger.audit_trail(cid)
    if not trail:
        raise NotFound(f"no ledger events for record {record}")
    if json_out is not None:
        _write(json_out, json.dumps([_as_json(e) for e in trail], indent=2) + "\n")
    if csv_out is not None:
        _write(csv_out, _as_csv(trail))
    if json_out is None and csv_out is None:
        _print_table(record, trail)


def parse_cid(text: str) -> bytes:
    """The binary CID from its usual text forms; InvalidInput for anything else."""
    text = text.strip()
    try:
        if text.startswith("0x"):
            return bytes.fromhex(text[2:])
        if text.startswith("Qm"):
            return _base58_decode(text)
        if text.startswith("f"):
            return bytes.fromhex(text[1:])
        if text.startswith("b"):
            body = text[1:].upper()
            return b32decode(body + "=" * (-len(body) % 8))
    except (ValueError, binascii.Error) as error:
        raise InvalidInput(f"{text!r} is not a valid CID: {error}") from error
    raise InvalidInput(f"{text!r} is not a CID (expected b…, Qm…, f… or 0x…)")


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _BASE58.find(char)
        if digit < 0:
            raise ValueError(f"{char!r} is not a base58 digit")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return bytes(len(text) - len(text.lstrip("1"))) + body


def _row(entry: AuditEntry) -> dict[str, str]:
    when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    allowed = "" if entry.allowed is None else ("allowed" if entry.allowed else "DENIED")
    return {
        "time": when,
        "action": entry.action,
        "actor": entry.actor,
        "subject": entry.subject or "",
        "access": entry.access_type or "",
        "allowed": allowed,
        "reason": entry.reason or "",
        "evidence": entry.evidence(),
    }


def _as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "timestamp": entry.timestamp,
        "action": entry.action,
        "actor": entry.actor,
        "subject": entry.subject,
        "access_type": entry.access_type,
        "allowed": entry.allowed,
        "reason": entry.reason,
        "source": entry.source,
        "tx_hash": entry.tx_hash,
        "proof": entry.proof.to_json() if entry.proof is not None else None,
    }


def _as_csv(trail: list[AuditEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in trail:
        writer.writerow(_row(entry))
    return buffer.getvalue()


def _write(target: Path, text: str) -> None:
    if str(target) == "-":
        sys.stdout.write(text)
        return
    try:
        target.write_text(text, "utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot write {target}: {error}") from error


def _print_table(record: str, trail: list[AuditEntry]) -> None:
    table = Table(title=f"audit trail of {record}", title_justify="left")
    for column in _COLUMNS:
        table.add_column(column, overflow="fold")
    for entry in trail:
        table.add_row(*_row(entry).values())
    Console(highlight=False).print(table)
