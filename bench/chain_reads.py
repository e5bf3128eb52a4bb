"""The embedded chain's per-transaction reads, through web3 and straight from eth-tester/py-evm.

    python bench/chain_reads.py [--repeat 300]

A registry is deployed and populated on a fresh embedded chain; each read the access mirror
and ``Chain.wait`` make per transaction is then timed both ways (thread CPU, microseconds per
read): a receipt, the canonical hash of a block, and a block's outline (number, parent,
transaction count). The numbers in ``scanseal.ledger._direct`` come from here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]


def cpu_us(read: Callable[[], Any], repeat: int) -> float:
    read()
    started = time.thread_time()
    for _ in range(repeat):
        read()
    return (time.thread_time() - started) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    from eth_account import Account
    from hexbytes import HexBytes

    from ledger.conftest import Cast, populate
    from scanseal.ledger import Ledger, LedgerConfig, _direct

    cast = Cast(*(Account.create() for _ in range(6)))
    config = LedgerConfig(state_dir=Path(tempfile.mkdtemp(prefix="chain-reads-")) / "chain")
    with Ledger.open(config, deployer=cast.owner) as ledger:
        populate(ledger, cast)
        chain: Any = ledger.chain
        w3, evm = chain.w3, chain._evm.chain
        number, head = chain.head()
        tx = evm.chaindb.get_block_transaction_hashes(evm.get_block_header_by_hash(head))[0]
        text = "0x" + bytes(tx).hex()
        pairs = {
            "receipt": (lambda: w3.eth.get_transaction_receipt(HexBytes(tx)),
                        lambda: _direct.receipt(chain._tester, text)),
            "canonical hash": (lambda: w3.eth.get_block(number - 1)["hash"],
                               lambda: _direct.canonical_hash(evm, number - 1)),
            "block outline": (lambda: w3.eth.get_block(HexBytes(head)),
                              lambda: _direct.outline(evm, head)),
        }  # fmt: skip
        print(f"{'read':16s} {'web3 µs':>8s} {'direct µs':>10s}")
        for name, (through_web3, direct) in pairs.items():
            print(f"{name:16s} {cpu_us(through_web3, args.repeat):8.0f} "
                  f"{cpu_us(direct, args.repeat):10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
