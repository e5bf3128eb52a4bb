"""``scanseal proof``: a batched record's inclusion proof, exported and checked against the chain.

``export RECORD -o FILE`` writes the proof file of docs/LEDGER.md from the operator's log (run
where the log is). ``verify RECORD --proof FILE`` needs nothing but that file and a chain to read
(the configured one, or any node by ``--rpc URL --contract ADDR``, such as ``scanseal ledger
rpc``): like ``rekor-cli verify`` it prints each check it passed and, on the first that fails,
one line naming it, exit 3. Without ``--proof`` the proof is taken from the local log first.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scanseal._cli._common import ConfigOption, parse_cid
from scanseal.errors import InvalidInput

app = typer.Typer(
    help="Inclusion proofs of batched records: export them, check them against the chain.",
    no_args_is_help=True,
)
_out = Console(markup=False, highlight=False, soft_wrap=True)

RecordArgument = Annotated[
    str, typer.Argument(help="Manifest CID of the record (b…, Qm…, f… or 0x…).")
]
RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="Read this JSON-RPC node, not the configured chain.")
]
ContractOption = Annotated[
    str | None, typer.Option("--contract", help="The ImageRegistry address (needed with --rpc).")
]


@app.command("export")
def export(
    record: RecordArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Proof file ('-': stdout).")],
    config: ConfigOption = None,
) -> None:
    """Write the inclusion proof of a batched record, and its anchor transaction, to a file."""
    from scanseal.ledger import LedgerConfig, export_record_proof

    cid = parse_cid(record)
    text = json.dumps(export_record_proof(LedgerConfig.load(config), cid).to_json(), indent=2)
    if output == Path("-"):
        sys.stdout.write(text + "\n")
        return
    temporary = output.with_name(output.name + ".part")
    temporary.write_text(text + "\n", "utf-8")
    os.replace(temporary, output)
    _out.print(f"wrote the proof of 0x{cid.hex()} to {output}")


@app.command("verify")
def verify(
    record: RecordArgument,
    proof: Annotated[
        Path | None, typer.Option("--proof", help="Proof file (default: from the local log).")
    ] = None,
    config: ConfigOption = None,
    rpc: RpcOption = None,
    contract: ContractOption = None,
) -> None:
    """Check a batched record's inclusion proof and its anchor transaction against the chain."""
    from scanseal.ledger import (
        LedgerConfig,
        ProofFile,
        export_record_proof,
        open_reader,
        verify_evidence,
    )

    cid = parse_cid(record)
    if rpc is not None and contract is None:
        raise InvalidInput("--rpc needs --contract (the ImageRegistry to check against)")
    settings = LedgerConfig.load(config)
    if proof is None:
        loaded = export_record_proof(settings, cid)
    else:
        loaded = ProofFile.from_json(_read_json(proof))
    reader = open_reader(settings, rpc, contract)
    try:
        verify_evidence(reader, cid, loaded, _out.print)
    finally:
        reader.close()
    _out.print("verified: the record is in the log whose root the contract anchored")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such proof file") from None
    except ValueError as error:
        raise InvalidInput(f"{path}: not JSON ({error})") from None
