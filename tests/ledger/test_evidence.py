"""Evidence anyone can check: `scanseal proof export/verify` and `scanseal ledger tx`, through the
CLI, on the embedded chain and on anvil.

Attacks on `proof verify`: a proof for another record, a tampered sibling hash, a wrong size, an
anchor transaction that is not the contract's or that failed, a root that was never anchored.
Each must exit 3 with one line naming the check that failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from scanseal.integrity.merkle import MerkleTree, leaf_hash
from scanseal.ledger import Entry, Ledger, LedgerConfig, RecordInput, record_id
from scanseal.ledger._abi import encode_call

from .conftest import ROOT, Cast, ConfigFactory, new_cid, populate


@dataclass
class Batched:
    """A home whose scanseal.toml names a batched log with two anchored records."""

    home: Path
    config: LedgerConfig
    cids: list[bytes]
    contract: str
    txs: dict[str, str]


def _toml(config: LedgerConfig, operator: str) -> str:
    lines = ["[ledger]", f'backend = "{config.backend}"', 'mode = "batched"']
    lines += [f'operator = "{operator}"', f'state_dir = "{config.state_dir}"']
    if config.url:
        lines.append(f'url = "{config.url}"')
    return "\n".join(lines) + "\n"


def make_batched(make_config: Callable[..., LedgerConfig], cast: Cast, home: Path) -> Batched:
    """Roles on chain, then two records in the admin's batched log, anchored; a transfer, a
    grant and a failed transaction to point proofs at."""
    txs: dict[str, str] = {}
    with Ledger.open(make_config(), deployer=cast.owner) as setup:
        populate(setup, cast)
        contract = setup.address
        txs["grant"] = str(setup.grant(cast.admin, new_cid(), cast.grantee.address).tx_hash)
        txs["transfer"] = setup.chain.send(
            cast.owner, {"to": cast.stranger.address, "value": 1, "gas": 21000}
        )
        setup.chain.wait(txs["transfer"])
        failed = encode_call("anchorBatch", os.urandom(32), 1, [])
        txs["failed"] = setup.chain.send(
            cast.stranger, {"to": contract, "data": failed, "gas": 400_000}
        )
        assert setup.chain.wait(txs["failed"])["status"] == 0
    config = make_config(mode="batched", batch_size=1000, operator=cast.admin.address)
    cids = [new_cid(), new_cid()]
    with Ledger.open(config, operator=cast.admin) as ledger:
        for cid in cids:
            ledger.store_record(cast.uploader, cid, os.urandom(32), os.urandom(32), os.urandom(32))
        anchor = ledger.anchor()
        assert anchor is not None
        txs["anchor"] = str(anchor.tx_hash)
    (home / "scanseal.toml").write_text(_toml(config, cast.admin.address), "utf-8")
    return Batched(home, config, cids, contract, txs)


@pytest.fixture
def batched(make_config: ConfigFactory, cast: Cast, tmp_path: Path) -> Batched:
    return make_batched(make_config, cast, tmp_path)


def scanseal(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "SCANSEAL_HOME": str(home),
        "PYTHONPATH": str(ROOT / "src"),
        **(env or {}),
    }
    full.pop("SCANSEAL_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "scanseal", *args],
        capture_output=True, text=True, env=full, timeout=180, check=False,
    )  # fmt: skip


def _export(world: Batched, cid: bytes, name: str = "proof.json") -> dict[str, Any]:
    out = world.home / name
    done = scanseal(world.home, "proof", "export", "0x" + cid.hex(), "-o", str(out))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text("utf-8")))


def _verify(world: Batched, cid: bytes, proof: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = world.home / "checked.json"
    path.write_text(json.dumps(proof), "utf-8")
    return scanseal(world.home, "proof", "verify", "0x" + cid.hex(), "--proof", str(path))


def _failed(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 3, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert words in lines[0], lines
    assert "verified" not in done.stdout


def test_export_then_verify_offline(batched: Batched) -> None:
    proof = _export(batched, batched.cids[1])
    assert proof["format"] == "scanseal-inclusion-proof/1"
    assert proof["anchor"]["tx_hash"] == batched.txs["anchor"]
    assert proof["contract"] == batched.contract
    assert proof["proof"]["size"] == 2
    done = _verify(batched, batched.cids[1], proof)
    assert done.returncode == 0, done.stderr
    for check in ("record ", "inclusion ", "contract ", "anchor ", "anchor tx ", "verified"):
        assert check in done.stdout
    local = scanseal(batched.home, "proof", "verify", "0x" + batched.cids[0].hex())
    assert local.returncode == 0, local.stderr


def test_proof_of_another_record_is_refused(batched: Batched) -> None:
    other = _export(batched, batched.cids[0])
    _failed(_verify(batched, batched.cids[1], other), "the proof is for record")
    other["record"] = "0x" + batched.cids[1].hex()  # relabelled: the entry still names cids[0]
    _failed(_verify(batched, batched.cids[1], other), "record:")


def test_tampered_sibling_or_size_is_refused(batched: Batched) -> None:
    proof = _export(batched, batched.cids[0])
    sibling = json.loads(json.dumps(proof))
    node = bytearray.fromhex(sibling["proof"]["path"][0][2:])
    node[0] ^= 1
    sibling["proof"]["path"][0] = "0x" + node.hex()
    _failed(_verify(batched, batched.cids[0], sibling), "inclusion proof")
    wrong = json.loads(json.dumps(proof))
    wrong["proof"]["size"] = 3
    _failed(_verify(batched, batched.cids[0], wrong), "inclusion proof")


@pytest.mark.parametrize(
    ("which", "words"),
    [("transfer", "not a call of the contract"), ("failed", "failed (status 0)"),
     ("grant", "no BatchAnchored event")],
)  # fmt: skip
def test_anchor_tx_that_is_not_the_anchor_is_refused(
    batched: Batched, which: str, words: str
) -> None:
    proof = _export(batched, batched.cids[0])
    proof["anchor"]["tx_hash"] = batched.txs[which]
    _failed(_verify(batched, batched.cids[0], proof), words)
    proof["anchor"]["tx_hash"] = "0x" + "ab" * 32
    _failed(_verify(batched, batched.cids[0], proof), "not a transaction of this chain")


def test_a_root_never_anchored_is_refused(batched: Batched, cast: Cast) -> None:
    """A forger's own log: the inclusion path is right, but the chain never saw its root."""
    proof = _export(batched, batched.cids[0])
    entry = Entry.decode(bytes.fromhex(proof["proof"]["entry"][2:]))
    forged = Entry("record", entry.record_id, cast.stranger.address, entry.timestamp,
                   entry.reporter, cid=entry.cid, image_hash=os.urandom(32))  # fmt: skip
    tree = MerkleTree()
    for data in (forged.encode(), os.urandom(40)):
        tree.append_leaf_hash(leaf_hash(data))
    proof["proof"].update(
        entry="0x" + forged.encode().hex(),
        root="0x" + tree.root(2).hex(),
        path=["0x" + node.hex() for node in tree.inclusion_proof(0, 2)],
    )
    _failed(_verify(batched, batched.cids[0], proof), "was never anchored")
    proof["proof"]["anchor_index"] = 7
    _failed(_verify(batched, batched.cids[0], proof), "was never anchored")


def test_verify_refuses_bad_input_in_one_line(batched: Batched) -> None:
    garbage = batched.home / "garbage.json"
    garbage.write_text('{"format": "other"}', "utf-8")
    done = scanseal(
        batched.home, "proof", "verify", "0x" + batched.cids[0].hex(), "--proof", str(garbage)
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    proof = _export(batched, batched.cids[0])
    proof["contract"] = Account.create().address
    _failed(_verify(batched, batched.cids[0], proof), "contract:")
    unknown = scanseal(batched.home, "proof", "export", "0x" + new_cid().hex(), "-o", "-")
    assert unknown.returncode == 6, unknown.stderr
    assert unknown.stderr.count("\n") == 1, unknown.stderr


def test_ledger_tx_decodes_the_call_and_events(batched: Batched) -> None:
    done = scanseal(batched.home, "ledger", "tx", batched.txs["anchor"], "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["status"] == "success"
    assert shown["to"] == batched.contract
    assert shown["to_image_registry"] is True
    assert shown["gas_used"] > 0
    assert shown["call"]["function"] == "anchorBatch"
    assert shown["call"]["args"]["size"] == 2
    [event] = shown["events"]
    assert event["event"] == "BatchAnchored"
    assert event["fields"]["size"] == 2
    table = scanseal(batched.home, "ledger", "tx", batched.txs["grant"])
    assert table.returncode == 0, table.stderr
    assert "grantAccess(" in table.stdout
    assert "AccessGranted(" in table.stdout
    failed = scanseal(batched.home, "ledger", "tx", batched.txs["failed"])
    assert "failed" in failed.stdout
    assert "anchorBatch(" in failed.stdout
    missing = scanseal(batched.home, "ledger", "tx", "0x" + "cd" * 32)
    assert missing.returncode == 6
    assert missing.stderr.startswith("error: no transaction")
    bad = scanseal(batched.home, "ledger", "tx", "0x12")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1


def test_record_id_is_what_the_entry_carries(batched: Batched) -> None:
    proof = _export(batched, batched.cids[0])
    entry = Entry.decode(bytes.fromhex(proof["proof"]["entry"][2:]))
    assert entry.record_id == record_id(batched.cids[0])
    assert (
        RecordInput(entry.cid, entry.image_hash, entry.h3, entry.pixel_digest).cid
        == batched.cids[0]
    )


def test_export_beside_the_writer_cuts_nothing(batched: Batched, cast: Cast) -> None:
    """A line the gateway is still writing (no newline yet) is not the reader's to cut."""
    log = Path(batched.config.state_dir) / f"batch-{cast.admin.address}.jsonl"
    with log.open("ab") as handle:
        handle.write(b'{"entry": "00')
    before = log.read_bytes()
    _export(batched, batched.cids[0])
    audit = scanseal(batched.home, "audit", "0x" + batched.cids[0].hex(), "--json", "-")
    assert audit.returncode == 0, audit.stderr
    assert log.read_bytes() == before


def test_readers_leave_the_chain_journal_alone(batched: Batched) -> None:
    """Beside `serve`, a reader of the embedded chain must not cut the line being written."""
    if batched.config.backend != "embedded":
        pytest.skip("only the embedded chain has a journal")
    journal = Path(batched.config.state_dir) / "journal.jsonl"
    with journal.open("ab") as handle:
        handle.write(b'{"kind":"tx","raw":"02')
    before = journal.read_bytes()
    cid = "0x" + batched.cids[0].hex()
    for args in (("ledger", "admin", "list"), ("ledger", "tx", batched.txs["anchor"]),
                 ("proof", "verify", cid)):  # fmt: skip
        done = scanseal(batched.home, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert journal.read_bytes() == before, args
