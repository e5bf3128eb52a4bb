"""The record operations on the embedded chain, run by a site with its own node and uploader
account: register, grant, revoke, open, verify, audit (the gateway runs the same ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import AccessDenied, IntegrityError, NotARecipient
from scanseal.ledger import Ledger, LedgerConfig
from scanseal.storage import BlobStore, EmbeddedStore
from scanseal.transfer import (
    Grant,
    LedgerHashes,
    Records,
    SealedFile,
    cid_bytes,
    grant_stored,
    open_checked,
    open_record,
    publish_manifest,
    seal_file,
    with_self,
)


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


def register(source: Path, lee: Identity, ito: Identity, book: Records) -> tuple[str, SealedFile]:
    """Seal ``source`` for lee (and ito), store it and register it as ito."""
    sealed = seal_file(
        source, with_self([lee.card], ito), ito, source.with_suffix(".sseal"), store=book.store
    )
    cid = publish_manifest(sealed, book.store)
    book.register(cid, sealed.manifest)
    return cid, sealed


def as_(person: Identity, ledger: Ledger, store: BlobStore) -> Records:
    return Records(ledger, store, person.account)


def test_register_grant_revoke_open(world, people, tmp_path: Path) -> None:
    ledger, store, _ = world
    ito, lee, novak = people["ito"], people["lee"], people["novak"]
    source = make_png(tmp_path / "scan.png", rows=64, cols=64)
    book = as_(ito, ledger, store)
    cid, sealed = register(source, lee, ito, book)
    assert [r.address for r in sealed.manifest.recipients] == [lee.address, ito.address]
    opened = open_record(cid, lee, tmp_path / "lee.png", records=as_(lee, ledger, store))
    assert opened.path.read_bytes() == source.read_bytes()

    with pytest.raises(AccessDenied):  # not granted yet: refused by the ledger, and logged
        open_record(cid, novak, tmp_path / "n0.png", records=as_(novak, ledger, store))
    granted = grant_stored(cid, ito, novak.card, store)
    assert book.grant(cid_bytes(cid), novak.address) is not None
    assert book.grant(cid_bytes(cid), novak.address) is None  # granted already: no transaction
    assert Grant.from_bytes(granted.to_bytes()) == granted
    with pytest.raises(NotARecipient):  # granted on chain, but the key comes with the grant
        open_record(cid, novak, tmp_path / "n1.png", records=as_(novak, ledger, store))
    opened = open_record(
        cid, novak, tmp_path / "n2.png", records=as_(novak, ledger, store), grant=granted
    )
    assert opened.path.read_bytes() == source.read_bytes()

    assert book.revoke(cid_bytes(cid), novak.address) is not None
    assert book.revoke(cid_bytes(cid), novak.address) is None  # a repeat sends nothing
    with pytest.raises(AccessDenied):
        open_record(
            cid, novak, tmp_path / "n3.png", records=as_(novak, ledger, store), grant=granted
        )
    report = book.verify_record(cid)
    assert any("ledger" in check for check in report.checks)
    assert book.register(cid, sealed.manifest) == book.registered(cid, sealed.manifest)
    trail = book.audit(cid_bytes(cid))
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
    cid, sealed = register(source, lee, ito, as_(ito, ledger, store))
    with pytest.raises(AccessDenied):  # only the owner may re-wrap
        grant_stored(cid, lee, mallory.card, store)
    real = grant_stored(cid, ito, lee.card, store)
    forged = Grant(
        real.record, real.owner, real.grantee, real.grantee_card_sha256, real.header,
        real.issued_at, lee.sign(real.signed_bytes()),
    )  # fmt: skip
    hashes = LedgerHashes.of(ledger.get_record(cid_bytes(cid)))
    with pytest.raises(IntegrityError):
        open_checked(
            sealed.envelope, sealed.manifest, lee, tmp_path / "o.png", hashes, grant=forged
        )
    wrong = LedgerHashes(hashes.h1, hashes.h3, bytes(32))
    with pytest.raises(IntegrityError, match="ledger"):
        open_checked(sealed.envelope, sealed.manifest, lee, tmp_path / "o.png", wrong)
    assert not (tmp_path / "o.png").exists()
