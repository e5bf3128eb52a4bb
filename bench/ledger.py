"""Ledger throughput and gas: per-record vs Merkle-batched, on the embedded EVM and on anvil.

    python bench/ledger.py [--records N] [--batched N] [--batch-size N]

Per-record sends one storeImage transaction per record, signed locally with explicit nonces,
with a window of them in flight (store_records' own window). The baseline is the cheapest
transaction there is (a 21,000-gas ether transfer) through the very same send/wait path,
interleaved with it chunk by chunk in the same run, so the ratio shows what the contract costs
over the node's own limit. Batched mode counts a record
as committed once its root is anchored on chain and its inclusion proof is produced.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.ledger import TRANSACTION_WINDOW as WINDOW
from scanseal.ledger import Ledger, LedgerConfig, RecordInput

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the anvil launcher
from devnode import ANVIL_FUNDER_KEY, running_anvil


def _items(count: int) -> list[RecordInput]:
    return [
        RecordInput(b"\x01\x55\x12\x20" + os.urandom(32), *(os.urandom(32) for _ in range(3)))
        for _ in range(count)
    ]


def _fresh(config: LedgerConfig, **changes: object) -> LedgerConfig:
    """The same chain with its own state directory, so each scenario deploys its own registry."""
    values = {**config.__dict__, **changes}
    values["state_dir"] = Path(tempfile.mkdtemp(dir=config.state_dir.parent))
    return LedgerConfig(**values)


def _setup(config: LedgerConfig) -> tuple[LocalAccount, LocalAccount]:
    """Deploy, and make an admin (the batch operator) and an uploader."""
    owner, uploader = Account.create(), Account.create()
    with Ledger.open(config, deployer=owner) as ledger:
        ledger.register_identity(owner, uploader.address, os.urandom(32))
        ledger.authorize_uploader(owner, uploader.address)
    return owner, uploader


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def per_record(config: LedgerConfig, count: int) -> dict[str, float]:
    config = _fresh(config)
    _owner, uploader = _setup(config)
    with Ledger.open(config) as ledger:
        ledger.store_records(uploader, _items(5))  # warm up caches and nonces
        receipts: list[object] = []
        seconds = _timed(lambda: receipts.extend(ledger.store_records(uploader, _items(count))))
        gas = sum(r.gas_used or 0 for r in ledger.store_records(uploader, _items(20))) / 20
        return {"tps": count / seconds, "gas": gas}


def access_gas(config: LedgerConfig, pairs: int = 20) -> dict[str, float]:
    """Gas of the access-control calls: one grantAccess, a grantAccessBatch per pair (``pairs``
    records of a batch, each reserved by its grant), a logAccess and a logAccessVia (an
    instance read through its study record), each an allowed read of a stored record."""
    config = _fresh(config)
    owner, uploader = _setup(config)
    grantee = Account.create().address
    with Ledger.open(config) as ledger:
        ledger.register_identity(owner, grantee, os.urandom(32))
        study, instance = _items(2)
        for item in (study, instance):
            ledger.store_record(uploader, item.cid, item.image_hash, item.h3, item.pixel_digest)
        single = ledger.grant(owner, instance.cid, grantee).gas_used or 0
        batch = ledger.grant_many(owner, [(item.cid, grantee) for item in _items(pairs)])
        ledger.grant(owner, study.cid, grantee)
        read = ledger.log_access(owner, instance.cid, grantee).receipt
        via = ledger.log_access(owner, _items(1)[0].cid, grantee, via=study.cid).receipt
        return {
            "grant": single,
            "batch_pair": (batch.gas_used or 0) / pairs,
            "log": float(read.gas_used or 0),
            "via": float(via.gas_used or 0),
        }


def per_record_vs_minimal(config: LedgerConfig, count: int, chunk: int = 100) -> dict[str, float]:
    """storeImage against the cheapest transaction, interleaved chunk by chunk on the same node,
    so that both see the same chain length and the same load from anything else running."""
    config = _fresh(config)
    _owner, uploader = _setup(config)
    sender, target = Account.create(), Account.create().address
    spent = {"minimal": 0.0, "store": 0.0}
    with Ledger.open(config) as ledger:
        chain = ledger.chain
        chain.ensure_funded(sender.address)
        ledger.store_records(uploader, _items(5))  # warm up caches and nonces

        def transfers(n: int) -> None:
            in_flight: deque[str] = deque()
            for _ in range(n):
                in_flight.append(chain.send(sender, {"to": target, "gas": 21000}))
                if len(in_flight) >= WINDOW:
                    assert chain.wait(in_flight.popleft())["status"] == 1
            while in_flight:
                assert chain.wait(in_flight.popleft())["status"] == 1

        done = 0
        while done < count:
            n = min(chunk, count - done)
            items = _items(n)
            spent["minimal"] += _timed(partial(transfers, n))
            spent["store"] += _timed(partial(ledger.store_records, uploader, items))
            done += n
        gas = sum(r.gas_used or 0 for r in ledger.store_records(uploader, _items(20))) / 20
    return {"minimal": count / spent["minimal"], "tps": count / spent["store"], "gas": gas}


def batched(config: LedgerConfig, count: int, batch_size: int) -> dict[str, float]:
    config = _fresh(config)
    owner, uploader = _setup(config)
    batched_config = LedgerConfig(
        **{**config.__dict__, "mode": "batched", "batch_size": batch_size}
    )
    with Ledger.open(batched_config, operator=owner) as ledger:
        items = _items(count)
        anchors_before = ledger.anchor_count(owner.address)

        def run() -> None:
            receipts = ledger.store_records(uploader, items)
            ledger.anchor()
            for receipt in receipts:
                assert receipt.log_index is not None
                ledger.prove(receipt.log_index)

        seconds = _timed(run)
        anchors = ledger.anchor_count(owner.address) - anchors_before
        return {"rps": count / seconds, "anchors": anchors}


def anchor_gas(config: LedgerConfig, batch_size: int) -> float:
    """Gas of one anchorBatch (with its consistency proof) divided by the records it covers."""
    config = _fresh(config)
    owner, uploader = _setup(config)
    batched_config = LedgerConfig(**{**config.__dict__, "mode": "batched", "batch_size": 10**9})
    with Ledger.open(batched_config, operator=owner) as ledger:
        ledger.store_records(uploader, _items(batch_size))
        ledger.anchor()
        ledger.store_records(uploader, _items(batch_size))
        info = ledger.anchor()
        assert info is not None
        assert info.gas_used
        return info.gas_used / batch_size


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores, {cpu}, {int(mem) // 1024 // 1024} GiB RAM"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000, help="per-record transactions")
    parser.add_argument("--embedded-records", type=int, default=200)
    parser.add_argument("--batched", type=int, default=20000, help="batched records")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    print(f"# ledger bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {machine()}")
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        embedded = LedgerConfig(state_dir=Path(tmp) / "embedded")
        result = per_record(embedded, args.embedded_records)
        rows.append(("embedded py-evm", "per-record storeImage", f"{result['tps']:.1f} tx/s"))
        rows.append(("embedded py-evm", "gas per record, per-record", f"{result['gas']:.0f}"))
        access = access_gas(embedded)
        rows.append(("embedded py-evm", "gas, grantAccess (one pair)", f"{access['grant']:.0f}"))
        rows.append(("embedded py-evm", "gas per pair, grantAccessBatch (20 pairs)",
                     f"{access['batch_pair']:.0f}"))  # fmt: skip
        rows.append(("embedded py-evm", "gas, logAccess (first read)", f"{access['log']:.0f}"))
        rows.append(("embedded py-evm", "gas, logAccessVia (first read, through a study)",
                     f"{access['via']:.0f}"))  # fmt: skip
        result = batched(embedded, args.batched // 4, args.batch_size)
        rows.append(("embedded py-evm", "batched, with proofs", f"{result['rps']:.0f} records/s"))
        with running_anvil() as url:
            node = LedgerConfig(
                backend="jsonrpc",
                url=url,
                state_dir=Path(tmp) / "anvil",
                funder_key=ANVIL_FUNDER_KEY,
            )
            result = per_record_vs_minimal(node, args.records)
            base = result["minimal"]
            rows.append(("anvil", "minimal tx (21,000-gas transfer)", f"{base:.0f} tx/s"))
            rows.append(("anvil", "per-record storeImage", f"{result['tps']:.0f} tx/s"))
            rows.append(("anvil", "per-record / minimal", f"{100 * result['tps'] / base:.0f} %"))
            rows.append(("anvil", "gas per record, per-record", f"{result['gas']:.0f}"))
            result = batched(node, args.batched, args.batch_size)
            rows.append(("anvil", "batched, with proofs", f"{result['rps']:.0f} records/s"))
            rows.append(("anvil", "anchors sent", f"{result['anchors']:.0f}"))
            gas = anchor_gas(node, args.batch_size)
            rows.append(
                ("anvil", f"gas per record, batched ({args.batch_size}/anchor)", f"{gas:.1f}")
            )
    print()
    print("| chain | measure | value |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
