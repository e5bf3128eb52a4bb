"""The ledger workflows on the embedded chain: register, grant, revoke, open, verify, audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import AccessDenied, IntegrityError, NotARecipient
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.storage import EmbeddedStore
from scanseal.transfer import records
from scanseal.transfer.grants import Grant


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("admin", "ito", "lee", "novak", "mallory")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, people):
    root = tmp_path_factory.mktemp("world")
    admin = people["admin"].account
    ledger = Ledger.open(LedgerConfig(state_dir=root / "chain"), deployer=admin)
    for name in ("admin", "ito", "lee", "novak"):
        ledger.register_identity(admin, people[name].address, people[name].card.card_hash)
    ledger.authorize_uploader(admin, people["ito"].address)
    store = EmbeddedStore(root / "blocks")
    yield ledger, store, root
    store.close()
    ledger.close()


def test_register_grant_revoke_open(world, people, tmp_path: Path) -> None:
    ledger, store, _ = world
    ito, lee, novak = people["ito"], people["lee"], people["novak"]
    source = make_png(tmp_path / "scan.png", rows=64, cols=64)
    receipt = records.register(
        source, [lee.card], ito, tmp_path / "scan.sseal", store=store, ledger=ledger
    )
    cid = receipt.manifest_cid
    assert [r.address for r in receipt.sealed.manifest.recipients] == [lee.address, ito.address]
    opened = records.open_record(cid, lee, tmp_path / "lee.png", store=store, ledger=ledger)
    assert opened.path.read_bytes() == source.read_bytes()

    with pytest.raises(AccessDenied):  # not granted yet: refused by the ledger, and logged
        records.open_record(cid, novak, tmp_path / "n0.png", store=store, ledger=ledger)
    granted = records.grant(cid, ito, novak.card, store=store, ledger=ledger)
    assert Grant.from_bytes(granted.grant.to_bytes()) == granted.grant
    with pytest.raises(NotARecipient):  # granted on chain, but the key comes with the grant
        records.open_record(cid, novak, tmp_path / "n1.png", store=store, ledger=ledger)
    opened = records.open_record(
        cid, novak, tmp_path / "n2.png", store=store, ledger=ledger, grant=granted.grant
    )
    assert opened.path.read_bytes() == source.read_bytes()

    records.revoke(cid, ito, novak.address, ledger=ledger)
    with pytest.raises(AccessDenied):
        records.open_record(
            cid, novak, tmp_path / "n3.png", store=store, ledger=ledger, grant=granted.grant
        )
    report = records.verify_record(cid, store=store, ledger=ledger)
    assert any("ledger" in check for check in report.checks)
    trail = records.audit(cid, ledger)
    actions = [(e.action, e.allowed, e.reason) for e in trail]
    assert actions.count(("access", False, "no-grant")) == 1
    assert ("access", False, "revoked") in actions
    assert [e.action for e in trail].count("granted") == 2
    assert not (tmp_path / "n0.png").exists()
    assert not (tmp_path / "n3.png").exists()


def test_forged_grant_is_refused(world, people, tmp_path: Path) -> None:
    ledger, store, _ = world
    ito, lee, mallory = people["ito"], people["lee"], people["mallory"]
    source = make_png(tmp_path / "scan.png", rows=32, cols=32)
    receipt = records.register(
        source, [lee.card], ito, tmp_path / "scan.sseal", store=store, ledger=ledger
    )
    with pytest.raises(AccessDenied):  # only the owner may re-wrap
        records.issue_grant(receipt.manifest_cid, lee, mallory.card, store)
    real = records.issue_grant(receipt.manifest_cid, ito, lee.card, store)
    forged = Grant(
        real.record, real.owner, real.grantee, real.grantee_card_sha256, real.header,
        real.issued_at, lee.sign(real.signed_bytes()),
    )  # fmt: skip
    hashes = records.LedgerHashes.of(ledger.get_record(records.cid_bytes(receipt.manifest_cid)))
    with pytest.raises(IntegrityError):
        records.open_checked(
            receipt.sealed.envelope, receipt.sealed.manifest, lee, tmp_path / "o.png", hashes,
            grant=forged,
        )  # fmt: skip
    wrong = records.LedgerHashes(hashes.h1, hashes.h3, bytes(32))
    with pytest.raises(IntegrityError, match="ledger"):
        records.open_checked(
            receipt.sealed.envelope, receipt.sealed.manifest, lee, tmp_path / "o.png", wrong
        )
    assert not (tmp_path / "o.png").exists()
