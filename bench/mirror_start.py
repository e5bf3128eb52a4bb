"""How soon a gateway's grant-table mirror is ready after a start, with a long chain behind it.

    python bench/mirror_start.py [--transactions 10000] [--backend anvil|embedded]

Fills a fresh ImageRegistry with ``--transactions`` storeImage transactions (100 a block on
anvil), then times opening the ledger and catching its access mirror up to the head, which is
what ``scanseal serve`` does before /v1/health answers "ok":

- ``rebuild``: no checkpoint (the first start after an upgrade, or a reorganised chain): every
  block since the deployment is read;
- ``checkpoint``: a valid checkpoint at the head: no block is read;
- ``incremental``: a checkpoint 500 transactions behind the head: only those blocks are read.

Prints one JSON object. The target is ``checkpoint.ready_seconds`` under 2 s at 10,000
transactions (docs/LEDGER.md has a run). Filling 10,000 takes a few minutes on 2 cores;
``--transactions 2000`` is the quick run. On the embedded chain opening replays the journal
(about 30 transactions a second on 2 cores), which no checkpoint shortens; use a few hundred
transactions there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the anvil launcher the tests use

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402

from devnode import ANVIL_FUNDER_KEY, running_anvil  # noqa: E402
from scanseal.ledger import Ledger, LedgerConfig, RecordInput  # noqa: E402

_BEHIND = 500
_CHUNK = 100
"""storeImage transactions per block on anvil (about 110,000 gas each, 30 M gas a block)."""


def _items(count: int) -> list[RecordInput]:
    return [
        RecordInput(b"\x01\x55\x12\x20" + os.urandom(32), *(os.urandom(32) for _ in range(3)))
        for _ in range(count)
    ]


@contextlib.contextmanager
def _chain(backend: str, state_dir: Path) -> Iterator[LedgerConfig]:
    if backend == "embedded":
        yield LedgerConfig(state_dir=state_dir)
        return
    with running_anvil() as url:
        yield LedgerConfig(
            backend="jsonrpc", url=url, funder_key=ANVIL_FUNDER_KEY, state_dir=state_dir
        )


def _fill(config: LedgerConfig, count: int) -> LocalAccount:
    """Deploy, authorize an uploader, store ``count`` records; returns the uploader."""
    owner: LocalAccount = Account.create()
    uploader: LocalAccount = Account.create()
    with Ledger.open(config, deployer=owner) as ledger:
        ledger.register_identity(owner, uploader.address, os.urandom(32))
        ledger.authorize_uploader(owner, uploader.address)
        _store_fast(ledger, uploader, count)
    return uploader


def _store_fast(ledger: Ledger, uploader: LocalAccount, count: int) -> None:
    """storeImage ``count`` times without waiting for each receipt. On anvil, automining is
    off meanwhile and each chunk is mined as one block (filling the chain one transaction per
    block ran at about 13 a second on a loaded machine)."""
    anvil = ledger.chain.w3.provider if ledger._config.backend == "jsonrpc" else None
    if anvil is not None:
        ledger.chain.ensure_funded(uploader.address)  # mined while automining is still on
        anvil.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    contract = ledger._contract
    for done in range(0, count, _CHUNK):
        sent = [
            contract.send(uploader, "storeImage", contract.store_args(uploader, i))
            for i in _items(min(_CHUNK, count - done))
        ]
        if anvil is not None:
            anvil.make_request("evm_mine", [])  # type: ignore[arg-type]
        for _tx, tx_hash in sent[-1:]:
            if ledger.chain.wait(tx_hash)["status"] != 1:
                raise SystemExit("a storeImage transaction failed")
    if anvil is not None:
        anvil.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def _start(config: LedgerConfig) -> dict[str, Any]:
    """Open and catch up, timed; the ledger is closed after (saving its checkpoint)."""
    started = time.perf_counter()
    with Ledger.open(config) as ledger:
        opened = time.perf_counter()
        ledger.catch_up()
        ready = time.perf_counter()
        return {
            "open_seconds": round(opened - started, 3),
            "catch_up_seconds": round(ready - opened, 3),
            "ready_seconds": round(ready - started, 3),
            "blocks_read": ledger._access.blocks_read,
            "head": ledger.chain.head()[0],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--backend", choices=["anvil", "embedded"], default="anvil")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="scanseal-mirror-") as scratch,
        _chain(args.backend, Path(scratch) / "chain") as config,
    ):
        filling = time.perf_counter()
        uploader = _fill(config, args.transactions)
        report: dict[str, Any] = {
            "backend": args.backend,
            "transactions": args.transactions,
            "fill_seconds": round(time.perf_counter() - filling, 1),
        }
        for old in Path(config.state_dir).glob("mirror-*"):
            old.unlink()  # filling saved one: start as an installation without any
        report["rebuild"] = _start(config)
        report["checkpoint"] = _start(config)
        with Ledger.open(config) as ledger:  # closes without a decision: checkpoint stays
            _store_fast(ledger, uploader, _BEHIND)
        report["incremental"] = _start(config)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
