"""`scanseal audit RECORD`: a record's audit trail as a table, JSON, CSV, FHIR or DICOM.

RECORD is the manifest CID as printed by `scanseal seal` (base32 `b…`, base58 `Qm…`, or hex
`f…`/`0x…` of the binary CID). The trail comes from the chain's events and, in batched mode, from
the operator's log with an inclusion proof per entry; or from a gateway (`--gateway`, `--as`).
Names come from the cards in the keystore and those given with `--cards` (a gateway's answer
brings its members' names).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanseal import audit as formats
from scanseal._cli._common import ConfigOption, connect, parse_cid, patient_records, study_records
from scanseal.crypto.identity import Keystore
from scanseal.errors import InvalidInput, NotFound, ScanSealError
from scanseal.transfer.catalogue import is_study_uid

if TYPE_CHECKING:
    from scanseal.client import GatewayClient

_PAGE: Final = 500
"""Events asked for per page of a query (the gateway's most)."""


class Format(StrEnum):
    """What `--format` writes."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    FHIR = "fhir"
    DICOM = "dicom"


def register(app: typer.Typer) -> None:
    """Attach `scanseal audit` as a top-level command."""
    app.command("audit")(audit)


RecordArgument = Annotated[
    str | None,
    typer.Argument(
        help="Manifest CID of the record (b…, Qm…, f… or 0x…), or a Study Instance UID."
    ),
]
FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="table, json, csv, fhir (R4 Bundle) or dicom.")
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to FILE ('-': stdout, default).")
]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Also write JSON to FILE ('-': stdout).")
]
CsvOption = Annotated[
    Path | None, typer.Option("--csv", help="Also write CSV to FILE ('-': stdout).")
]
CardsOption = Annotated[
    list[Path] | None,
    typer.Option("--cards", help="Identity cards (a file or a directory) naming addresses."),
]
AuditGatewayOption = Annotated[
    str | None,
    typer.Option("--gateway", help="Ask this gateway (signed request) instead of the ledger."),
]
AuditAsOption = Annotated[
    str | None, typer.Option("--as", help="Your identity, to sign the gateway request.")
]
AuditCaOption = Annotated[Path | None, typer.Option("--ca", help="CA certificate of the gateway.")]
SendOption = Annotated[
    bool, typer.Option("--send", help=escape("Send DICOM audit messages to the [audit] syslog."))
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Events by or about NAME or ADDRESS (gateway query).")
]
PatientOption = Annotated[
    str | None, typer.Option("--patient", help="Events of a patient's records (Patient ID).")
]
StudyOption = Annotated[str | None, typer.Option("--study", help="Events of a study's records.")]
ActionOption = Annotated[
    str | None, typer.Option("--action", help="stored, granted, revoked, access or admin.")
]
OutcomeOption = Annotated[
    str | None, typer.Option("--outcome", help="success, denied or unauthenticated.")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="From this time: ISO 8601, or 7d, 12h, 30m ago.")
]
UntilOption = Annotated[str | None, typer.Option("--until", help="Up to this time (as --since).")]
LimitOption = Annotated[
    int | None, typer.Option("--limit", help="At most N events (default: every page).")
]


class FhirRelease(StrEnum):
    """Which FHIR release `--format fhir` writes."""

    R4 = "R4"
    R5 = "R5"


FhirReleaseOption = Annotated[
    FhirRelease,
    typer.Option("--fhir-release", help="R4 (validated as FHIR R4/4.3) or R5 AuditEvents."),
]
AdminOption = Annotated[
    bool, typer.Option("--admin", help="The registry's administrative changes (no RECORD).")
]


def audit(
    record: RecordArgument = None,
    format_: FormatOption = Format.TABLE,
    output: OutputOption = None,
    json_out: JsonOption = None,
    csv_out: CsvOption = None,
    cards: CardsOption = None,
    config: ConfigOption = None,
    gateway: AuditGatewayOption = None,
    as_name: AuditAsOption = None,
    ca: AuditCaOption = None,
    send: SendOption = False,
    admin: AdminOption = False,
    actor: ActorOption = None,
    patient: PatientOption = None,
    study: StudyOption = None,
    action: ActionOption = None,
    outcome: OutcomeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = None,
    fhir_release: FhirReleaseOption = FhirRelease.R4,
) -> None:
    """Print who stored, granted, revoked and accessed a record, with the evidence for each;
    or, with --admin, who changed the registry's owner, admins, uploaders and identities.

    A Study Instance UID in place of the record asks the gateway for the trail of each
    record of that study you own (a table each; JSON, CSV and FHIR carry each entry's
    record).

    With --actor, --patient, --study, --action, --outcome, --since, --until or --limit the
    gateway answers a query across records (RECORD, if given, limits it to that record)."""
    remote = None if gateway is None and as_name is None else (gateway, as_name, ca)
    options = formats.QueryOptions(actor, patient, study, action, outcome, since, until, limit)
    if options.given and not admin:
        events, name, url = query_events(record, options, (gateway, as_name, ca))
        rows = formats.entries(events, _names(cards or []))
        source = formats.Source(name, url)
        _emit_query(record, events, rows, source, format_, output, fhir_release.value)
        return
    if record is not None and is_study_uid(record) and not admin:
        names = _names(cards or [])
        older = (json_out, csv_out)
        remote_of = (gateway, as_name, ca)
        _study_trails(record, remote_of, names, format_, output, older, fhir_release.value)
        return
    record, trail, source = _trail(record, admin, config, remote)
    events = formats.entries(trail, _names(cards or []))
    if send:
        target = formats.AuditConfig.load(config)
        count = formats.send_audit(target, record, events, source)
        sys.stderr.write(f"sent {count} audit messages to {target.syslog}\n")
        if output is None and json_out is None and csv_out is None:
            return
    _emit(record, events, source, format_, output, (json_out, csv_out), fhir_release.value)


def _emit(
    record: str,
    events: list[dict[str, Any]],
    source: formats.Source,
    format_: Format,
    output: Path | None,
    older: tuple[Path | None, Path | None],
    release: formats.Release = "R4",
) -> None:
    """Write the trail as asked: ``--json``/``--csv`` (the older spellings, which combine),
    then ``--format`` to ``-o`` (a table on the terminal when neither names a file)."""
    json_out, csv_out = older
    if json_out is not None:
        _write(json_out, formats.to_json(events))
    if csv_out is not None:
        _write(csv_out, formats.to_csv(events))
    if (json_out or csv_out) is not None and output is None and format_ is Format.TABLE:
        return
    if format_ is Format.TABLE and output in (None, Path("-")):
        _print_table(record, events)
        return
    if format_ is Format.FHIR:
        _write(output or Path("-"), formats.to_fhir_json(record, events, source, release))
        return
    _write(output or Path("-"), _RENDER[format_](record, events, source))


def query_events(
    record: str | None,
    options: formats.QueryOptions,
    remote: tuple[str | None, str | None, Any],
) -> tuple[list[dict[str, Any]], str, str]:
    """Every matching event (up to ``--limit``), the gateway's name and its URL."""
    if options.limit is not None and options.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    gateway, as_name, ca = remote
    with connect(gateway, ca, as_name) as client:
        records = _records(client, record, options)
        filters = {
            "records": records,
            "identity": options.actor,
            "action": options.action,
            "outcome": options.outcome,
            "since": formats.query_time(options.since),
            "until": formats.query_time(options.until),
            "limit": min(options.limit or _PAGE, _PAGE),
        }
        found: Iterator[dict[str, Any]] = client.audit_query(**filters)
        events = list(islice(found, options.limit) if options.limit else found)
        return events, f"gateway {client.domain.gateway}", client.url


def _records(
    client: GatewayClient, record: str | None, options: formats.QueryOptions
) -> list[str] | None:
    """The records the query is limited to: RECORD (or a study UID given as RECORD),
    ``--study``, ``--patient``; None for no such limit."""
    chosen: list[str] | None = None
    if record is not None:
        chosen = _study(client, record) if is_study_uid(record) else [record]
    if options.study is not None:
        chosen = _both(chosen, _study(client, options.study))
    if options.patient is not None:
        chosen = _both(chosen, patient_records(client, options.patient))
    if chosen == []:  # an empty list would ask the gateway for every record
        raise NotFound("no record shared with you is the RECORD, --study and --patient given")
    return chosen


def _both(first: list[str] | None, second: list[str]) -> list[str]:
    return second if first is None else [r for r in first if r in second]


def _study(client: GatewayClient, study: str) -> list[str]:
    return [entry.record for entry in study_records(client, study, owned=False)]


def _emit_query(
    record: str | None,
    events: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    source: formats.Source,
    format_: Format,
    output: Path | None,
    release: formats.Release = "R4",
) -> None:
    """A query's events: JSON and CSV carry each event's record, FHIR and DICOM name it as
    each event's participant object (its recordId for a record of another gateway, the
    registry for an administrative change); the table as for one record's trail."""
    owners = [str(e.get("record") or e.get("record_id") or "registry") for e in events]
    merged = [{"record": e.get("record"), **row} for e, row in zip(events, rows, strict=True)]
    target = output or Path("-")
    if format_ is Format.JSON:
        _write(target, json.dumps(merged, indent=2) + "\n")
    elif format_ is Format.CSV:
        _write(target, _study_csv(merged) if merged else formats.to_csv([]))
    elif format_ is Format.DICOM:
        _write(target, formats.to_dicom_xml_of(list(zip(owners, rows, strict=True)), source))
    elif format_ is Format.FHIR and rows:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for owner, row in zip(owners, rows, strict=True):
            grouped.setdefault(owner, []).append(row)
        _write(target, _study_text(Format.FHIR, grouped, source, release))
    else:
        _emit(record or "query", rows, source, format_, output, (None, None), release)


def _local_trail(cid: bytes, config: Path | None) -> tuple[list[dict[str, Any]], formats.Source]:
    """The trail read from the ledger itself, in the JSON form the gateway also serves."""
    from scanseal.ledger import Ledger, LedgerConfig

    with Ledger.open(LedgerConfig.load(config), read_only=True) as ledger:
        trail = [entry.to_dict() for entry in ledger.audit_trail(cid)]
        source = formats.Source(f"ledger eip155:{ledger.chain.chain_id}:{ledger.address}", "ledger")
    return trail, source


def _trail(
    record: str | None,
    admin: bool,
    config: Path | None,
    remote: tuple[str | None, str | None, Path | None] | None,
) -> tuple[str, list[dict[str, Any]], formats.Source]:
    """What was asked for: the registry's changes (``admin``), or a record's trail from the
    ledger or from a gateway (``remote``: its URL, our identity, its CA)."""
    if admin:
        if record is not None or remote is not None:
            raise InvalidInput("--admin reads the ledger itself and takes no RECORD")
        record, trail, source = _admin_trail(config)
    elif record is None:
        raise InvalidInput("give a RECORD (its manifest CID), or --admin")
    elif remote is not None:
        parse_cid(record)
        trail, source = _remote_trail(record, *remote)
    else:
        trail, source = _local_trail(parse_cid(record), config)
    if not trail:
        raise NotFound(f"no ledger events for record {record}")
    return record, trail, source


def _study_trails(
    study: str,
    remote: tuple[str | None, str | None, Path | None],
    names: dict[str, str],
    format_: Format,
    output: Path | None,
    older: tuple[Path | None, Path | None],
    release: formats.Release = "R4",
) -> None:
    """Each owned record's trail of ``study``, through the gateway (which alone knows it)."""
    gateway, as_name, ca = remote
    with connect(gateway, ca, as_name) as client:
        records = [e.record for e in study_records(client, study, owned=True)]
        trails = {record: client.audit(record) for record in records}
        source = formats.Source(f"gateway {client.domain.gateway}", client.url)
    events = {record: formats.entries(trail, names) for record, trail in trails.items()}
    json_out, csv_out = older
    if json_out is not None:
        _write(json_out, _study_text(Format.JSON, events, source))
    if csv_out is not None:
        _write(csv_out, _study_text(Format.CSV, events, source))
    if (json_out or csv_out) is not None and output is None and format_ is Format.TABLE:
        return
    if format_ is Format.TABLE and output in (None, Path("-")):
        for record, rows in events.items():
            _print_table(record, rows)
        return
    _write(output or Path("-"), _study_text(format_, events, source, release))


def _study_text(
    format_: Format,
    events: dict[str, list[dict[str, Any]]],
    source: formats.Source,
    release: formats.Release = "R4",
) -> str:
    """A study's trails in one document: JSON and CSV carry each entry's record, FHIR is one
    Bundle; DICOM audit messages are written per record."""
    if format_ is Format.DICOM:
        raise InvalidInput("--format dicom takes one record; give each record of the study")
    if format_ is Format.FHIR:
        pairs = [(record, row) for record, rows in events.items() for row in rows]
        return formats.to_fhir_json_of(pairs, source, release)
    merged = [{"record": record, **row} for record, rows in events.items() for row in rows]
    if format_ is Format.JSON:
        return json.dumps(merged, indent=2) + "\n"
    if format_ is Format.CSV:
        return _study_csv(merged)
    return "".join(_render_table(record, rows, source) for record, rows in events.items())


def _study_csv(merged: list[dict[str, Any]]) -> str:
    """The CSV of each record's events, a ``record`` column first."""
    lines = []
    for index, row in enumerate(merged):
        rendered = formats.to_csv([row]).splitlines()
        if index == 0:
            lines.append("record," + rendered[0])
        lines.append(f"{row['record']}," + rendered[1])
    return "\n".join(lines) + "\n"


def _admin_trail(config: Path | None) -> tuple[str, list[dict[str, Any]], formats.Source]:
    """The registry's administrative changes, with the registry as their subject."""
    from scanseal.ledger import Ledger, LedgerConfig

    with Ledger.open(LedgerConfig.load(config), read_only=True) as ledger:
        trail = [entry.to_dict() for entry in ledger.admin_trail()]
        registry = f"eip155:{ledger.chain.chain_id}:{ledger.address}"
    return registry, trail, formats.Source(f"ledger {registry}", "ledger")


def _remote_trail(
    record: str, gateway: str | None, as_name: str | None, ca: Path | None
) -> tuple[list[dict[str, Any]], formats.Source]:
    """The trail a gateway returns to a signed request, already in ``AuditEntry.to_dict`` form."""
    with connect(gateway, ca, as_name) as client:
        trail = client.audit(record)
        source = formats.Source(f"gateway {client.domain.gateway}", client.url)
    return trail, source


def _names(cards: list[Path]) -> dict[str, str]:
    """Names by address: the keystore's cards, then the ``--cards`` files and directories."""
    keystore = Keystore()
    names: dict[str, str] = {}
    for name in keystore.names():
        try:
            card = keystore.card(name)
        except ScanSealError:
            continue
        names[card.address] = card.name
    for path in cards:
        if not path.exists():
            raise InvalidInput(f"--cards {path}: no such file or directory")
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        names.update(formats.names_from_cards(files))
    return names


def _render_table(record: str, events: list[dict[str, Any]], _source: formats.Source) -> str:
    console = Console(markup=False, highlight=False, record=True, width=200, file=io.StringIO())
    console.print(_table(record, events))
    return console.export_text()


_RENDER: dict[Format, Callable[[str, list[dict[str, Any]], formats.Source], str]] = {  # not FHIR
    Format.TABLE: _render_table,
    Format.JSON: lambda _record, events, _source: formats.to_json(events),
    Format.CSV: lambda _record, events, _source: formats.to_csv(events),
    Format.DICOM: lambda record, events, source: formats.to_dicom_xml(record, events, source),
}


def _write(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` ('-': stdout) whole: a file appears only complete."""
    if str(target) == "-":
        sys.stdout.write(text)
        return
    partial = target.with_name(target.name + ".partial")
    try:
        partial.write_text(text, "utf-8")
        partial.replace(target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {error}") from error


def _table(record: str, events: list[dict[str, Any]]) -> Table:
    table = Table(title=f"audit trail of {record}", title_justify="left")
    for column in formats.TABLE_COLUMNS:  # a time is never folded: it must stay searchable
        table.add_column(column, overflow="fold", no_wrap=column in ("time", "action", "outcome"))
    for row in formats.table_rows(events):
        table.add_row(*row)
    return table


def _print_table(record: str, events: list[dict[str, Any]]) -> None:
    Console(markup=False, highlight=False).print(_table(record, events))
