"""The `scanseal` entry point exits with the code a command asked for (typer.Exit), not 0."""

from __future__ import annotations

import pytest
import typer

import scanseal.cli


def _app_exiting_with(code: int) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def finish() -> None:
        raise typer.Exit(code)

    @app.command()
    def other() -> None:  # two commands, so the name is parsed as a subcommand
        return None

    return app


@pytest.mark.parametrize("code", [5, 2])
def test_a_commands_exit_code_reaches_the_shell(code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`agent --once` raises typer.Exit(5) when a record failed; click's non-standalone mode
    returns that code instead of raising it, and it used to be dropped (exit 0)."""
    monkeypatch.setattr(scanseal.cli, "app", _app_exiting_with(code))
    monkeypatch.setattr("sys.argv", ["scanseal", "finish"])
    with pytest.raises(SystemExit) as exited:
        scanseal.cli._run()
    assert exited.value.code == code


def test_success_exits_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanseal.cli, "app", _app_exiting_with(0))
    monkeypatch.setattr("sys.argv", ["scanseal", "other"])
    scanseal.cli._run()  # returns: exit status 0
