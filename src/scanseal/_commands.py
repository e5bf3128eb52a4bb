"""The root command's subcommands, each command module imported only when it is needed.

The command modules pull in web3, py-evm, pydicom, onnxruntime, FastAPI and more: importing
all of them to print ``scanseal --version`` or run ``scanseal keys list`` took over a second.
The root group knows every subcommand's name (``COMMANDS``, in the order ``--help`` lists
them) and the module that defines it; a command is built from its module the first time it is
looked up, exactly as Typer builds it eagerly, so names, options, help texts and output are
unchanged. ``--help`` of the root still looks up every command (it shows their summaries).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any, Final

import typer
from typer.core import TyperGroup

COMMANDS: Final[dict[str, str]] = {
    "seal": "sealing",
    "open": "sealing",
    "verify": "sealing",
    "audit": "ledger",
    "serve": "gateway",
    "certs": "gateway",
    "send": "studies",
    "inbox": "studies",
    "fetch": "studies",
    "grant": "studies",
    "revoke": "studies",
    "screen": "screen",
    "agent": "agent",
    "deid": "deid",
    "reid": "deid",
    "deid-key": "deid",
    "backup": "backup",
    "restore": "backup",
    "console": "console",
    "keys": "keys",
    "config": "configuration",
    "ledger": "chain",
    "proof": "proof",
    "storage": "storage",
    "car": "storage",
}
"""Subcommand -> the ``scanseal._cli`` module that defines it, in ``--help`` order."""

SUBAPPS: Final[dict[str, str]] = {
    "keys": "keys",
    "config": "configuration",
    "ledger": "chain",
    "proof": "proof",
}
"""Groups that are a module's own ``app`` (added under this name); every other module adds its
commands and groups to the root through its ``register(app)``."""


def module_commands(module_name: str) -> dict[str, Any]:
    """The click commands ``scanseal._cli.<module_name>`` contributes to the root, built by
    Typer as it builds the whole tree (a holder app with the root's settings and a callback,
    so that Typer makes it a group even when the module has one command)."""
    module = import_module(f"scanseal._cli.{module_name}")
    holder = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    holder.callback()(_nothing)
    named = [name for name, owner in SUBAPPS.items() if owner == module_name]
    if named:
        holder.add_typer(module.app, name=named[0])
    else:
        module.register(holder)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return dict(group.commands)


def _nothing() -> None:
    """The holder app's callback (never run)."""


class _Commands(MutableMapping[str, Any]):
    """The root's commands: every name known up front, each module loaded on first access."""

    def __init__(self, eager: MutableMapping[str, Any]) -> None:
        self._loaded: dict[str, Any] = dict(eager)
        self._names = list(COMMANDS) + [name for name in eager if name not in COMMANDS]

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            module_name = COMMANDS.get(name)
            if module_name is None:
                raise KeyError(name)
            self._loaded.update(module_commands(module_name))
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


class LazyGroup(TyperGroup):
    """The root group (``typer.Typer(cls=LazyGroup)``) over :class:`_Commands`."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        """Names only: Typer's own version reads every command, which would load them all."""
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.commands.get(cmd_name)
