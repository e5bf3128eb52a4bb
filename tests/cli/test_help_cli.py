"""`--help` shows TOML table names: Rich markup, which renders every help text, takes
"[gateway]" for a style tag and drops it ("scanseal.toml with , ,  tables")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import typer

from scanseal.cli import app

_BRACKETED = re.compile(r"\[([a-z][a-z_.]*)\]")


def commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in getattr(group, "commands", {}).items():  # a Typer group, not click's
        yield from commands(command, (*path, name))


def bracketed(command: click.Command) -> set[str]:
    """Every "[name]" its help texts mean to show (escaped for Rich or not)."""
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    return {f"[{name}]" for text in texts for name in _BRACKETED.findall(text)}


def test_every_bracketed_name_in_a_help_text_shows_in_help(home: Path, run) -> None:
    seen = 0
    for path, command in commands(typer.main.get_command(app)):
        wanted = bracketed(command)
        if not wanted:
            continue
        shown = run(*path, "--help")
        assert shown.code == 0, (path, shown.err)
        for name in wanted:
            assert name in shown.out, f"scanseal {' '.join(path)} --help lost {name}"
            seen += 1
    assert seen  # at least agent's --config names [forward]


def test_agent_help_names_the_forward_table(home: Path, run) -> None:
    shown = run("agent", "--help")
    assert "scanseal.toml with a [forward] table." in shown.out
    assert "\\[" not in shown.out


def test_certs_names_the_gateway_table(home: Path, run) -> None:
    made = run("certs", str(home / "tls"))
    assert made.code == 0, made.err
    assert "(tls_cert / tls_key in [gateway])" in made.out
