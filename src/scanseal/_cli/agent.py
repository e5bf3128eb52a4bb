"""``scanseal agent``: forward records granted to one identity into a PACS, unattended.

The same agent runs inside ``scanseal serve`` when its config has a [forward] table (the
receiving department's gateway then also feeds its PACS); docs/DICOM.md describes both.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape  # help text is Rich markup: "[forward]" would vanish

from scanseal._cli._common import load_forward, unlock
from scanseal._lock import home_lock
from scanseal.errors import InvalidInput

if TYPE_CHECKING:
    from scanseal.dicom.agent import ForwardAgent, ForwardState

_out = Console(highlight=False, soft_wrap=True)


def agent(
    config: Annotated[
        Path, typer.Option("--config", help=escape("scanseal.toml with a [forward] table."))
    ],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    status: Annotated[
        bool, typer.Option("--status", help="List records not forwarded yet, then exit.")
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
            _print_status(state)
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
            _out.print(
                f"{done.discovered} new, {done.forwarded} forwarded, {done.failed} failed{held}"
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


def _print_status(state: ForwardState) -> None:
    counts = state.counts()
    _out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing yet")
    for item in state.unfinished():
        line = f"{item.manifest_cid}  {item.status}  {item.attempts} attempt(s)  {item.last_error}"
        _out.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
