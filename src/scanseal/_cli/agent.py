"""``scanseal agent``: forward records granted to one identity into a PACS, unattended.

The same agent runs inside ``scanseal serve`` when its config has a [forward] table (the
receiving department's gateway then also feeds its PACS); docs/DICOM.md describes both.
"""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape  # help text is Rich markup: "[forward]" would vanish
from rich.table import Table

from scanseal._cli._common import load_forward, unlock
from scanseal._lock import home_lock
from scanseal.errors import InvalidInput

if TYPE_CHECKING:
    from scanseal.dicom.agent import ForwardAgent, ForwardState, Item

_out = Console(markup=False, highlight=False, soft_wrap=True)


def agent(
    config: Annotated[
        Path, typer.Option("--config", help=escape("scanseal.toml with a [forward] table."))
    ],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    status: Annotated[
        bool, typer.Option("--status", help="List records not forwarded yet, then exit.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --status: the same as one JSON object.")
    ] = False,
) -> None:
    """Forward every record granted to an identity at a gateway into a PACS, once each."""
    from scanseal.dicom.agent import ForwardAgent, ForwardState

    settings = load_forward(config)
    if settings is None:
        raise InvalidInput(f"{config} has no [forward] table")
    if status:
        state = ForwardState(settings.state_dir / "forward.sqlite3")
        try:
            _print_status(state, as_json=as_json)
        finally:
            state.close()
        return
    with home_lock("agent"):  # one agent per home, before its state is opened
        _forward(ForwardAgent(settings, unlock(settings.identity)), once=once)


def _forward(runner: ForwardAgent, *, once: bool) -> None:
    """Run ``runner`` (one pass with ``once``, else until SIGINT or SIGTERM), then close it."""
    from scanseal.dicom.agent import log_to_stderr

    log_to_stderr()
    try:
        if once:
            done = runner.run_once()
            held = f", {done.held} held" if done.held else ""  # a flag at sealing ([forward])
            deferred = f", {done.deferred} deferred" if done.deferred else ""  # the PACS is down
            _out.print(
                f"{done.discovered} new, {done.forwarded} forwarded, {done.failed} failed"
                f"{held}{deferred}"
            )
            if done.failed:
                raise typer.Exit(5)
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        runner.run(stop)
    finally:
        runner.close()


def _print_status(state: ForwardState, *, as_json: bool = False) -> None:
    """The counts per status, then each record not forwarded: a table on a terminal, else one
    line per record and, when the agent opened it, an indented line with what it is."""
    counts, items = state.counts(), state.unfinished()
    if as_json:
        rows = [_row(item) for item in items]
        _out.print_json(json.dumps({"counts": counts, "records": rows}))
        return
    _out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing yet")
    if _out.is_terminal and items:
        table = Table("record", "status", "attempts", "study", "patient", "SOP Instance UID",
                      "reason")  # fmt: skip
        for column in table.columns:  # whole CIDs and UIDs, to copy: folded, not cut short
            column.overflow = "fold"
        for item in items:
            described = map(escape, (*_described(item), item.last_error or "-"))
            table.add_row(item.manifest_cid, item.status, str(item.attempts), *described)
        _out.print(table)
        return
    for item in items:
        line = f"{item.manifest_cid}  {item.status}  {item.attempts} attempt(s)  {item.last_error}"
        _out.print(line, markup=False)
        if item.labels is not None:
            study, patient, sop = _described(item)
            _out.print(f"    study {study}  patient {patient}  SOP {sop}", markup=False)


def _row(item: Item) -> dict[str, object]:
    """One record for ``--status --json``: ``labels`` null for one the agent never opened."""
    return {
        "record": item.manifest_cid, "status": item.status, "attempts": item.attempts,
        "next_try": item.next_try, "reason": item.last_error,
        "labels": None if item.labels is None else asdict(item.labels),
    }  # fmt: skip


def _described(item: Item) -> tuple[str, str, str]:
    """Study, patient and SOP Instance UID as words: "-" for what the agent could not read."""
    labels = item.labels
    if labels is None:
        return "-", "-", "-"
    study = " ".join(v for v in (labels.study_description, labels.study_uid) if v) or "-"
    patient = labels.patient_name or "-"
    if labels.patient_id:
        patient = f"{patient} ({labels.patient_id})"
    return study, patient, labels.sop_instance_uid or "-"


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
