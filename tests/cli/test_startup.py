"""``scanseal --version`` loads no command module: the root group knows its commands by name
(``scanseal._commands.COMMANDS``) and imports a module when one of its commands is looked up.
The table cannot drift from the modules: each module contributes exactly the commands the table
gives it, and the tree built from the table is the one Typer builds from all modules at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from scanseal._commands import COMMANDS, SUBAPPS, module_commands
from scanseal.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("web3", "onnxruntime", "fastapi", "pydicom", "eth_account", "pynetdicom", "numpy")

_PROBE = """
import sys
from scanseal.cli import main
sys.argv = ["scanseal", "--version"]
try:
    main()
except SystemExit as done:
    assert done.code in (0, None), done.code
heavy = sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[1:])
print("loaded:", ",".join(heavy))
"""


def test_version_imports_no_heavy_library() -> None:
    """In a fresh interpreter, as the console script runs it."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("sys.argv[1:]", repr(HEAVY))],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[0].startswith("scanseal "), lines
    assert lines[-1] == "loaded: ", f"scanseal --version imported {lines[-1]}"


def test_a_command_that_reads_no_key_imports_no_eth_account(tmp_path: Path) -> None:
    """eth-account (py_ecc's tables) is imported where a key is made or read, not by
    ``scanseal.crypto.identity`` itself: ``keys list`` in an empty home needs no key."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE.replace('"--version"', '"keys", "list"')
         .replace("sys.argv[1:]", repr(("eth_account", "web3")))],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "SCANSEAL_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[-1] == "loaded: ", probe.stdout


def test_every_command_module_gives_exactly_its_table_entries() -> None:
    modules = sorted(
        path.stem for path in (SRC / "scanseal" / "_cli").glob("*.py") if path.stem[0] != "_"
    )
    assert sorted(set(COMMANDS.values())) == modules
    for module in modules:
        wanted = [name for name, owner in COMMANDS.items() if owner == module]
        assert sorted(module_commands(module)) == sorted(wanted), module


def test_the_lazy_tree_is_the_eager_one() -> None:
    """Same names in the same order, and each command the same help and options as in a tree
    Typer builds from every module registered up front."""
    eager = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    eager.callback()(lambda: None)
    for name, module in SUBAPPS.items():
        eager.add_typer(__import__(f"scanseal._cli.{module}", fromlist=["app"]).app, name=name)
    for module in dict.fromkeys(COMMANDS.values()):
        if module not in SUBAPPS.values():
            __import__(f"scanseal._cli.{module}", fromlist=["register"]).register(eager)
    full = typer.main.get_command(eager)
    lazy = typer.main.get_command(app)
    assert isinstance(full, TyperGroup)
    assert isinstance(lazy, TyperGroup)
    assert list(lazy.commands) == list(full.commands)
    for name, command in full.commands.items():
        built = lazy.commands[name]
        assert built.help == command.help, name
        assert [p.opts for p in built.params] == [p.opts for p in command.params], name


_SIGNING_PROBE = """
import sys
from scanseal._cli import studies  # send, fetch, grant, revoke
from scanseal._cli._common import unlock_identity
from scanseal.client import GatewayClient
from scanseal.protocol.signed import Domain, signed_headers
identity = unlock_identity("alice")
domain = Domain(31337, identity.address, identity.address)
assert signed_headers(identity.signer, domain, "fetch", "record")
assert identity.sign(b"a manifest")
GatewayClient("https://127.0.0.1:1", identity).close()
from scanseal.transfer import open_checked  # what opens a fetched record
from scanseal.transfer.catalogue import describe  # what reads it for the inbox
heavy = ("eth_account", "web3", "pydicom", "numpy", "PIL", "onnxruntime")
print("loaded:", ",".join(sorted(name for name in sys.modules if name.split(".")[0] in heavy)))
"""


def test_signing_for_a_gateway_and_opening_a_record_import_no_chain_and_no_decoder(
    tmp_path: Path,
) -> None:
    """What ``send`` and ``fetch`` do before they talk to a gateway — unlock the identity,
    sign a request and a manifest, build the client — signs with libsecp256k1: eth-account
    (py_ecc's tables) and web3 are for ledger transactions only. Opening and describing a
    fetched record decode no pixels, so neither pydicom, numpy, Pillow nor onnxruntime loads
    (``send`` loads them when it reads and screens its first file)."""
    from scanseal.crypto.identity import Keystore

    Keystore(tmp_path / "keys", scrypt_n=2**10).create("alice", "a passphrase for alice")
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "SCANSEAL_HOME": str(tmp_path),
           "SCANSEAL_PASSPHRASE": "a passphrase for alice"}  # fmt: skip
    probe = subprocess.run(
        [sys.executable, "-c", _SIGNING_PROBE], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines()[-1] == "loaded: ", probe.stdout


_CLIENT_PROBE = """
import sys
from scanseal._cli._common import connect
client = connect("https://127.0.0.1:1", None, "-")
assert "httpcore" in sys.modules
print("trio loaded:", sys.modules.get("trio") is not None)
try:
    import trio
    print("trio importable afterwards:", trio.__name__ == "trio")
except ImportError:
    print("trio importable afterwards: not installed")
client.close()
"""


def test_the_gateway_client_is_built_without_importing_trio() -> None:
    """httpcore imports trio (about 0.1 s) for async code under trio; a command's client is
    synchronous, so it is built without it, and trio (when installed) imports normally after."""
    probe = subprocess.run(
        [sys.executable, "-c", _CLIENT_PROBE],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[0] == "trio loaded: False", lines
    assert lines[1] in (
        "trio importable afterwards: True",
        "trio importable afterwards: not installed",
    )
