"""Batched mode: records and access events in an RFC 6962 log, roots anchored on chain.

Attacks: a changed entry, a changed proof, a root that is not the anchored one, a rewritten log
file, a forged log extension. And a real crash (SIGKILL) between append and anchor.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput
from scanseal.integrity.merkle import MerkleTree, verify_consistency
from scanseal.ledger import (
    AccessType,
    BatchProof,
    Entry,
    Ledger,
    Reason,
    RecordInput,
    check_proof,
    record_id,
)
from scanseal.ledger._batched import BatchedWriter

from .conftest import ROOT, Cast, ConfigFactory, card, new_cid, populate


def _items(count: int) -> list[RecordInput]:
    return [
        RecordInput(new_cid(), os.urandom(32), os.urandom(32), os.urandom(32)) for _ in range(count)
    ]


def _batched(make_config: ConfigFactory, cast: Cast, **overrides: object) -> Ledger:
    """A registry with roles set up, opened in batched mode with the admin as operator."""
    with Ledger.open(make_config(), deployer=cast.owner) as setup:
        populate(setup, cast)
    config = make_config(mode="batched", **overrides)
    return Ledger.open(config, operator=cast.admin)


def _log_path(ledger: Ledger) -> Path:
    """Where the batched ledger's operator log lives."""
    writer = ledger._writer
    assert isinstance(writer, BatchedWriter)
    return writer.log.path


def test_anchors_every_n_entries_and_proves_each(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=4) as ledger:
        items = _items(10)
        receipts = ledger.store_records(cast.uploader, items)
        assert [r.log_index for r in receipts] == list(range(10))
        assert all(r.mode == "batched" and r.tx_hash is None for r in receipts)
        assert ledger.anchor_count(cast.admin.address) == 2
        assert ledger.pending == 2
        with pytest.raises(InvalidInput, match="not anchored yet"):
            ledger.prove(9)
        final = ledger.anchor()
        assert final is not None
        assert (final.index, final.size, ledger.pending) == (2, 10, 0)
        for item, receipt in zip(items, receipts, strict=True):
            assert receipt.log_index is not None
            entry = ledger.verify_proof(ledger.prove(receipt.log_index))
            assert (entry.kind, entry.cid, entry.image_hash) == (
                "record",
                item.cid,
                item.image_hash,
            )
            assert entry.actor == cast.uploader.address
        anchors = [ledger.get_anchor(cast.admin.address, i) for i in range(3)]
        assert [a.size for a in anchors] == [4, 8, 10]
        for old, new in itertools.pairwise(anchors):
            proof = ledger.consistency_proof(old.size, new.size)
            verify_consistency(old.size, new.size, old.root, new.root, proof)


def test_tampered_entry_proof_or_root_is_detected(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=8) as ledger:
        ledger.store_records(cast.uploader, _items(8))
        proof = ledger.prove(5)
        assert check_proof(proof).kind == "record"
        entry = Entry.decode(proof.entry)
        forged_entry = replace(entry, image_hash=os.urandom(32)).encode()
        forged_path = (bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:], *proof.path[1:])
        other_tree = MerkleTree(os.urandom(32) for _ in range(8))
        attacks = {
            "entry": replace(proof, entry=forged_entry),
            "path": replace(proof, path=forged_path),
            "index": replace(proof, index=4),
            "short path": replace(proof, path=proof.path[:-1]),
        }
        for name, attack in attacks.items():
            with pytest.raises(IntegrityError):
                ledger.verify_proof(attack)
            with pytest.raises(IntegrityError):
                check_proof(attack)  # offline, without the chain, too
            assert name
        # a self-consistent proof under a root that was never anchored
        rogue = BatchProof(
            proof.operator, 0, 0, 8, other_tree.root(), b"x", tuple(other_tree.inclusion_proof(0))
        )
        with pytest.raises(IntegrityError, match="not the root anchored on chain"):
            ledger.verify_proof(rogue)


def test_proof_survives_json_round_trip(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=3) as ledger:
        ledger.store_records(cast.uploader, _items(3))
        proof = ledger.prove(1)
        again = BatchProof.from_json(json.loads(json.dumps(proof.to_json())))
        assert again == proof
        assert ledger.verify_proof(again).kind == "record"


def test_rewritten_log_file_is_refused_on_open(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=4) as ledger:
        ledger.store_records(cast.uploader, _items(4))
        path = _log_path(ledger)
    lines = path.read_text().splitlines()
    entry = Entry.decode(bytes.fromhex(json.loads(lines[2])["entry"]))
    forged = replace(entry, image_hash=os.urandom(32))  # well-formed, but not what was anchored
    lines[2] = json.dumps({"entry": forged.encode().hex()})
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="does not match the root anchored"):
        Ledger.open(make_config(mode="batched"), operator=cast.admin)


def test_log_that_lost_entries_is_refused(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=4) as ledger:
        ledger.store_records(cast.uploader, _items(4))
        path = _log_path(ledger)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(IntegrityError, match="4 are anchored"):
        Ledger.open(make_config(mode="batched"), operator=cast.admin)


_CRASHER = """
import json, os, signal, sys
from eth_account import Account
from scanseal.ledger import Ledger, LedgerConfig, RecordInput
raw = json.loads(sys.argv[1])
config = LedgerConfig(**raw["config"])
ledger = Ledger.open(config, operator=Account.from_key(raw["operator"]))
uploader = Account.from_key(raw["uploader"])
items = [RecordInput(*(bytes.fromhex(v) for v in item)) for item in raw["items"]]
receipts = ledger.store_records(uploader, items)
print(json.dumps([r.log_index for r in receipts]), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_crash_between_append_and_anchor_loses_nothing(
    make_config: ConfigFactory, cast: Cast
) -> None:
    with Ledger.open(make_config(), deployer=cast.owner) as setup:
        populate(setup, cast)
    config = make_config(mode="batched", batch_size=1000, batch_seconds=3600)
    items = _items(5)
    raw = {
        "config": {
            "backend": config.backend,
            "url": config.url,
            "mode": "batched",
            "batch_size": 1000,
            "batch_seconds": 3600.0,
            "state_dir": str(config.state_dir),
            "funder_key": config.funder_key,
        },
        "operator": cast.admin.key.hex(),
        "uploader": cast.uploader.key.hex(),
        "items": [
            [i.cid.hex(), i.image_hash.hex(), i.h3.hex(), i.pixel_digest.hex()] for i in items
        ],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _CRASHER, json.dumps(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert json.loads(done.stdout) == [0, 1, 2, 3, 4]
    with Ledger.open(config, operator=cast.admin) as ledger:
        assert ledger.pending == 0  # anchored on open
        assert ledger.anchor_count(cast.admin.address) == 1
        for index, item in enumerate(items):
            assert ledger.verify_proof(ledger.prove(index)).cid == item.cid
            assert ledger.get_record(item.cid).source == "batch"


def test_anchors_after_batch_seconds(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=1000, batch_seconds=0.05) as ledger:
        ledger.store_records(cast.uploader, _items(1))
        assert ledger.tick() is None
        time.sleep(0.06)
        anchored = ledger.tick()
        assert anchored is not None
        assert anchored.size == 1
        assert ledger.pending == 0
        ledger.store_records(cast.uploader, _items(1))
        time.sleep(0.06)
        ledger.store_records(cast.uploader, _items(1))  # the append itself notices the deadline
        assert ledger.pending == 0
        assert ledger.anchor_count(cast.admin.address) == 2


def test_batched_records_access_and_audit(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=2) as ledger:
        item = _items(1)[0]
        ledger.store_record(cast.uploader, item.cid, item.image_hash, item.h3, item.pixel_digest)
        record = ledger.get_record(item.cid)
        assert (record.source, record.uploader) == ("batch", cast.uploader.address)
        assert ledger.has_access(item.cid, cast.uploader.address)
        assert not ledger.has_access(item.cid, cast.grantee.address)
        ledger.grant(cast.admin, item.cid, cast.grantee.address)  # grants stay on chain
        ledger.grant(cast.admin, item.cid, cast.revoked.address)
        ledger.revoke(cast.admin, item.cid, cast.revoked.address)
        assert ledger.has_access(item.cid, cast.grantee.address)
        results = [
            ledger.log_access(cast.admin, item.cid, who.address, AccessType.DOWNLOAD)
            for who in (cast.grantee, cast.revoked, cast.stranger, cast.uploader)
        ]
        assert [(r.allowed, r.reason) for r in results] == [
            (True, Reason.NONE),
            (False, Reason.REVOKED),
            (False, Reason.NO_GRANT),
            (True, Reason.NONE),
        ]
        forced = ledger.log_access(
            cast.admin, item.cid, cast.grantee.address, AccessType.VIEW, Reason.REPLAY
        )
        assert (forced.allowed, forced.reason) == (False, Reason.REPLAY)
        ledger.anchor()
        ledger.verify_record(item.cid, item.image_hash, item.h3, item.pixel_digest)
        with pytest.raises(IntegrityError, match="H3"):
            ledger.verify_record(item.cid, item.image_hash, item.image_hash, item.pixel_digest)
        trail = ledger.audit_trail(item.cid)
        actions = sorted((e.source, e.action) for e in trail)
        assert actions.count(("batch", "access")) == 5
        assert ("batch", "stored") in actions
        assert actions.count(("chain", "granted")) == 2
        assert ("chain", "revoked") in actions
        for entry in trail:
            if entry.source == "batch":
                assert entry.proof is not None
                ledger.verify_proof(entry.proof)
            else:
                assert entry.tx_hash


def test_batched_access_through_a_study_record(make_config: ConfigFactory, cast: Cast) -> None:
    """An instance read through its study record: the operator decides from the grant table
    on chain as logAccessVia does (a grant on either allows, a revoked study denies as
    revoked), and the entry is the instance's."""
    with _batched(make_config, cast, batch_size=100) as ledger:
        instance, study = _items(2)
        ledger.store_records(cast.uploader, [instance, study])
        ledger.grant(cast.admin, study.cid, cast.grantee.address)
        ledger.grant(cast.admin, study.cid, cast.revoked.address)
        ledger.revoke(cast.admin, study.cid, cast.revoked.address)
        results = [
            ledger.log_access(
                cast.admin, instance.cid, who.address, AccessType.DOWNLOAD, via=study.cid
            )
            for who in (cast.grantee, cast.revoked, cast.stranger)
        ]
        assert [(r.allowed, r.reason) for r in results] == [
            (True, Reason.NONE), (False, Reason.REVOKED), (False, Reason.NO_GRANT),
        ]  # fmt: skip
        assert not ledger.log_access(cast.admin, instance.cid, cast.grantee.address).allowed
        ledger.anchor()
        reads = [e for e in ledger.audit_trail(instance.cid) if e.action == "access"]
        assert [(e.subject, e.allowed) for e in reads] == [
            (cast.grantee.address, True), (cast.revoked.address, False),
            (cast.stranger.address, False), (cast.grantee.address, False),
        ]  # fmt: skip
        assert [e for e in ledger.audit_trail(study.cid) if e.action == "access"] == []


def test_batched_refusals(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=100) as ledger:
        with pytest.raises(AccessDenied, match="not an authorized uploader"):
            ledger.store_records(cast.stranger, _items(1))
        item = _items(1)[0]
        ledger.store_records(cast.uploader, [item])
        with pytest.raises(InvalidInput, match="already in the batched log"):
            ledger.store_records(cast.uploader, [item])
        with pytest.raises(AccessDenied, match="not the operator"):
            ledger.log_access(cast.owner, item.cid, cast.grantee.address)


def test_batched_mode_needs_an_operator(make_config: ConfigFactory, cast: Cast) -> None:
    with Ledger.open(make_config(), deployer=cast.owner):
        pass
    with pytest.raises(InvalidInput, match="needs the operator"):
        Ledger.open(make_config(mode="batched"))


def test_reader_sees_the_operators_log(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=2) as ledger:
        items = _items(2)
        ledger.store_records(cast.uploader, items)
    reader_config = make_config(mode="batched", operator=cast.admin.address)
    with Ledger.open(reader_config) as reader:
        assert reader.verify_proof(reader.prove(1)).cid == items[1].cid
        with pytest.raises(InvalidInput, match="not the operator"):
            reader.anchor()


def test_chain_checks_consistency_for_many_sizes(make_config: ConfigFactory, cast: Cast) -> None:
    """The contract's RFC 9162 verifier agrees with the Python one on every growth step."""
    with Ledger.open(make_config(), deployer=cast.owner) as ledger:
        tree = MerkleTree(os.urandom(32) for _ in range(70))
        previous = 0
        for size in (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 70):
            proof = tree.consistency_proof(previous, size) if previous else []
            ledger._tx(cast.owner, "anchorBatch", b"", [tree.root(size), size, proof], "anchor")
            previous = size
        assert ledger.get_anchor(cast.owner.address, 14).root == tree.root()
        registered = Account.create()
        ledger.register_identity(cast.owner, registered.address, card(registered))
        assert record_id(b"x") != record_id(b"y")


def test_concurrent_appends_get_distinct_leaves(make_config: ConfigFactory, cast: Cast) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with _batched(make_config, cast, batch_size=16) as ledger:
        batches = [_items(10) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda b: ledger.store_records(cast.uploader, b), batches))
        ledger.anchor()
        indexes = sorted(r.log_index for rs in results for r in rs if r.log_index is not None)
        assert indexes == list(range(40))
        proven = {ledger.verify_proof(ledger.prove(i)).cid for i in indexes}
        assert proven == {item.cid for batch in batches for item in batch}
