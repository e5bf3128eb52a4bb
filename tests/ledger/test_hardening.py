"""The contract's answers to the findings of its review, each attack refused and the honest path
kept, on the embedded EVM and on anvil (`make_config` in tests/conftest.py).

Each test sends the attack as a raw transaction where the Python facade would refuse it first,
so what is proven is the contract's own rule. docs/LEDGER.md ("Threat model") names the test
behind each line of the role table.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound
from scanseal.ledger import (
    AccessType,
    GrantState,
    Ledger,
    Reason,
    Receipt,
    RecordInput,
    record_id,
)
from scanseal.ledger._batched import BatchedWriter
from scanseal.ledger._mirror import AccessMirror

from .conftest import Cast, ConfigFactory, World, card, new_cid
from .test_batched import _batched, _items

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _raw(world: World, caller: LocalAccount, function: str, *args: Any) -> None:
    """A transaction straight to the contract, past the facade's own checks."""
    world.ledger._tx(caller, function, b"", list(args), function)


# ------------------------------------------------------------------ finding 3: the access log


def test_access_log_refuses_strangers_and_unknown_records(world: World) -> None:
    cast, rid = world.cast, record_id(world.cid)
    nobody = Account.create()
    world.ledger.chain.ensure_funded(nobody.address)
    for accessor in (nobody.address, cast.grantee.address):  # its own attempt, or another's
        with pytest.raises(AccessDenied, match=re.escape(f"{nobody.address} may not report")):
            _raw(world, nobody, "logAccess", rid, accessor, 0, 0)
    with pytest.raises(AccessDenied, match="may not report"):  # also for a record never stored
        _raw(world, nobody, "logAccess", record_id(new_cid()), nobody.address, 0, 0)
    # a registered identity reports only its own attempts, on records the chain knows of for it
    member = Account.create()
    world.ledger.register_identity(cast.admin, member.address, card(member))
    world.ledger.chain.ensure_funded(member.address)
    with pytest.raises(NotFound, match="not on the ledger"):
        _raw(world, member, "logAccess", record_id(new_cid()), member.address, 0, 0)
    with pytest.raises(AccessDenied, match="may not report"):
        _raw(world, member, "logAccess", rid, cast.grantee.address, 0, 0)
    assert world.ledger.access_log(world.cid) == []


@pytest.mark.parametrize("code", [1, 2, 15])
def test_reporters_cannot_use_the_contracts_reason_codes(world: World, code: int) -> None:
    cast, rid = world.cast, record_id(world.cid)
    for reporter, accessor in ((cast.admin, cast.stranger), (cast.grantee, cast.grantee)):
        with pytest.raises(InvalidInput, match="the contract's own"):
            _raw(world, reporter, "logAccess", rid, accessor.address, 0, code)
        if code in (Reason.NO_GRANT, Reason.REVOKED):  # and the facade says so first
            with pytest.raises(InvalidInput, match="the contract's own"):
                world.ledger.log_access(reporter, world.cid, accessor.address, reason=Reason(code))
    assert world.ledger.access_log(world.cid) == []


def test_the_reporter_is_stored_and_the_honest_reports_work(world: World) -> None:
    cast = world.cast
    mine = world.ledger.log_access(cast.grantee, world.cid, cast.grantee.address)
    gateway = world.ledger.log_access(cast.admin, world.cid, cast.grantee.address)
    denied = world.ledger.log_access(
        cast.admin, world.cid, cast.grantee.address, AccessType.DOWNLOAD, Reason.REPLAY
    )
    revoked = world.ledger.log_access(cast.revoked, world.cid, cast.revoked.address)
    elsewhere = new_cid()  # a gateway reports on records the chain does not hold (batched)
    assert not world.ledger.log_access(cast.admin, elsewhere, cast.grantee.address).allowed
    assert [(r.allowed, r.reason) for r in (mine, gateway, denied, revoked)] == [
        (True, Reason.NONE),
        (True, Reason.NONE),
        (False, Reason.REPLAY),
        (False, Reason.REVOKED),
    ]
    log = world.ledger.access_log(world.cid)
    assert [(e.accessor, e.reporter) for e in log] == [
        (cast.grantee.address, cast.grantee.address),
        (cast.grantee.address, cast.admin.address),
        (cast.grantee.address, cast.admin.address),
        (cast.revoked.address, cast.revoked.address),
    ]
    assert [e.actor for e in world.ledger.audit_trail(world.cid) if e.action == "access"] == [
        cast.grantee.address,
        cast.admin.address,
        cast.admin.address,
        cast.revoked.address,
    ]


def test_batched_access_entries_take_only_reporter_codes(
    make_config: ConfigFactory, cast: Cast
) -> None:
    """The operator writes every access entry of its log, with the same reason rule."""
    with _batched(make_config, cast) as ledger:
        item = _items(1)[0]
        ledger.store_records(cast.uploader, [item])
        with pytest.raises(InvalidInput, match="the contract's own"):
            ledger.log_access(cast.admin, item.cid, cast.grantee.address, reason=Reason.REVOKED)
        result = ledger.log_access(cast.admin, item.cid, cast.uploader.address)
        assert (result.allowed, result.reason) == (True, Reason.NONE)
        assert ledger.pending == 2


# ------------------------------------------------------------------ finding 4: ownership


def test_a_mistyped_owner_never_takes_the_contract(world: World) -> None:
    owner, ledger = world.cast.owner, world.ledger
    typo = "0x" + "de" * 20  # nobody holds its key
    ledger.transfer_ownership(owner, typo)
    pending = ledger.pending_owner()
    assert ledger.owner() == owner.address
    assert pending is not None
    assert pending.lower() == typo
    ledger.set_admin(owner, world.cast.stranger.address)  # still the owner, with all its powers
    ledger.transfer_ownership(owner, owner.address)  # withdrawn
    assert ledger.pending_owner() is None
    heir = world.cast.grantee
    ledger.transfer_ownership(owner, typo)
    ledger.transfer_ownership(owner, heir.address)  # the right address replaces the typo
    with pytest.raises(AccessDenied, match="is not the proposed owner"):
        ledger.accept_ownership(world.cast.admin)
    ledger.accept_ownership(heir)
    assert (ledger.owner(), ledger.pending_owner()) == (heir.address, None)
    assert ledger.is_admin(heir.address)
    assert not ledger.is_admin(owner.address)


# ------------------------------------------------------------------ finding 6: honest events


def _events(world: World, receipt: Receipt) -> list[tuple[str, dict[str, Any]]]:
    return world.ledger._contract.receipt_events(receipt)


def test_the_owner_cannot_be_set_or_unset_as_admin(world: World) -> None:
    owner = world.cast.owner
    for enabled in (False, True):
        with pytest.raises(InvalidInput, match="the owner is always an admin"):
            world.ledger.set_admin(owner, owner.address, enabled)
    assert world.ledger.is_admin(owner.address)


def test_calls_that_change_nothing_emit_nothing(world: World) -> None:
    cast, ledger = world.cast, world.ledger
    assert _events(world, ledger.set_admin(cast.owner, cast.admin.address)) == []
    assert _events(world, ledger.set_admin(cast.owner, cast.stranger.address, False)) == []
    assert _events(world, ledger.authorize_uploader(cast.admin, cast.uploader.address)) == []
    assert _events(world, ledger.deauthorize_uploader(cast.admin, cast.grantee.address)) == []
    same = ledger.register_identity(cast.admin, cast.grantee.address, card(cast.grantee))
    assert _events(world, same) == []
    assert _events(world, ledger.transfer_ownership(cast.owner, cast.owner.address)) == []
    # the honest changes still say what they did, once
    (changed,) = _events(world, ledger.set_admin(cast.owner, cast.stranger.address))
    assert changed == (
        "AdminChanged",
        {"account": cast.stranger.address, "enabled": True, "by": cast.owner.address},
    )
    (changed,) = _events(world, ledger.deauthorize_uploader(cast.admin, cast.uploader.address))
    assert changed[0] == "UploaderChanged"
    assert changed[1]["authorized"] is False


def test_identities_change_only_by_the_owner_evented_with_the_old_hash(world: World) -> None:
    cast, ledger = world.cast, world.ledger
    with pytest.raises(AccessDenied, match=re.escape(f"{cast.admin.address} is not the contract")):
        ledger.register_identity(cast.admin, cast.grantee.address, b"\x07" * 32)
    with pytest.raises(AccessDenied, match="is not the contract owner"):  # the owner's own, too
        ledger.register_identity(cast.admin, cast.owner.address, b"\x08" * 32)
    assert ledger.identity_of(cast.grantee.address) == card(cast.grantee)
    assert ledger.identity_of(cast.owner.address) is None
    (event,) = _events(
        world, ledger.register_identity(cast.owner, cast.grantee.address, b"\x07" * 32)
    )
    assert event == (
        "IdentityRegistered",
        {
            "account": cast.grantee.address,
            "cardHash": b"\x07" * 32,
            "previousCardHash": card(cast.grantee),
            "by": cast.owner.address,
        },
    )
    ledger.register_identity(cast.owner, cast.owner.address, b"\x08" * 32)
    assert ledger.identity_of(cast.owner.address) == b"\x08" * 32
    # the grantee's old card is free again, for a new account
    newcomer = Account.create()
    ledger.register_identity(cast.admin, newcomer.address, card(cast.grantee))
    assert ledger.identity_of(newcomer.address) == card(cast.grantee)


def test_one_card_hash_is_one_account(world: World) -> None:
    cast, ledger = world.cast, world.ledger
    with pytest.raises(InvalidInput, match=f"already registered to {cast.grantee.address}"):
        ledger.register_identity(cast.admin, cast.stranger.address, card(cast.grantee))
    with pytest.raises(InvalidInput, match="already registered"):  # the owner is bound too
        ledger.register_identity(cast.owner, cast.uploader.address, card(cast.grantee))
    assert ledger.identity_of(cast.stranger.address) is None
    assert ledger.identity_of(cast.uploader.address) == card(cast.uploader)


def test_reading_past_the_end_of_an_access_log_names_the_error(world: World) -> None:
    rid = record_id(world.cid)
    world.ledger.log_access(world.cast.admin, world.cid, world.cast.grantee.address)
    assert world.ledger._contract.view("accessLogAt", rid, 0)[0][0] == world.cast.grantee.address
    for index in (1, 2**255):
        with pytest.raises(NotFound, match=f"no access log entry #{index}"):
            world.ledger._contract.view("accessLogAt", rid, index)


# ------------------------------------------------------------------ finding 2: controllers


def _contract_has_access(world: World, cid: bytes, account: str) -> bool:
    return bool(world.ledger._contract.view("hasAccess", record_id(cid), account)[0])


def test_a_deauthorized_uploader_loses_control_of_its_records(world: World) -> None:
    cast, ledger, cid = world.cast, world.ledger, world.cid
    newcomer = Account.create()
    ledger.register_identity(cast.admin, newcomer.address, card(newcomer))
    ledger.revoke(cast.admin, cid, cast.grantee.address)  # an admin's decision
    ledger.deauthorize_uploader(cast.admin, cast.uploader.address)
    attacks = [
        lambda: ledger.grant(cast.uploader, cid, cast.grantee.address),  # undo the admin
        lambda: ledger.grant(cast.uploader, cid, newcomer.address),
        lambda: ledger.grant(cast.uploader, cid, cast.revoked.address),
        lambda: ledger.set_controller(cast.uploader, cid, newcomer.address),
    ]
    for attack in attacks:
        with pytest.raises(AccessDenied, match="is neither the controller"):
            attack()
    ledger.grant(cast.admin, cid, newcomer.address)
    with pytest.raises(AccessDenied, match="is neither the controller"):
        ledger.revoke(cast.uploader, cid, newcomer.address)  # nor revoke an admin's grant
    assert ledger.has_access(cid, newcomer.address)
    assert not ledger.has_access(cid, cast.grantee.address)
    # its own access is the controller's: an admin takes it away by handing the record over
    assert ledger.has_access(cid, cast.uploader.address)
    (event,) = _events(world, ledger.set_controller(cast.admin, cid, None))
    assert event == (
        "ControllerChanged",
        {
            "recordId": record_id(cid),
            "previous": cast.uploader.address,
            "controller": "0x" + "00" * 20,
            "by": cast.admin.address,
        },
    )
    assert ledger.controller_of(cid) is None
    assert not ledger.has_access(cid, cast.uploader.address)
    assert not _contract_has_access(world, cid, cast.uploader.address)
    ledger.authorize_uploader(cast.admin, cast.uploader.address)  # authorized again: still not
    with pytest.raises(AccessDenied, match="is neither the controller"):
        ledger.grant(cast.uploader, cid, cast.grantee.address)


def test_records_are_handed_over_and_the_mirror_follows(world: World, tmp_path: Path) -> None:
    cast, ledger, cid = world.cast, world.ledger, world.cid
    heir = Account.create()
    ledger.register_identity(cast.admin, heir.address, card(heir))
    ledger.authorize_uploader(cast.admin, heir.address)
    ledger.set_controller(cast.uploader, cid, heir.address)  # the honest hand-over
    assert _events(world, ledger.set_controller(cast.admin, cid, heir.address)) == []  # no-op
    ledger.grant(heir, cid, cast.revoked.address)
    ledger.revoke(heir, cid, cast.grantee.address)
    with pytest.raises(AccessDenied, match="is neither the controller"):
        ledger.grant(cast.uploader, cid, cast.grantee.address)
    people = [cast.uploader, heir, cast.grantee, cast.revoked, cast.admin, cast.stranger]
    expected = {p.address: _contract_has_access(world, cid, p.address) for p in people}
    assert expected == {
        cast.uploader.address: False,
        heir.address: True,
        cast.grantee.address: False,
        cast.revoked.address: True,
        cast.admin.address: False,
        cast.stranger.address: False,
    }
    assert {a: ledger.has_access(cid, a) for a in expected} == expected
    # a mirror rebuilt from the events, and one restarted from a checkpoint, agree too
    checkpoint = tmp_path / "mirror.sqlite3"
    for _ in range(2):
        mirror = AccessMirror(ledger.chain, ledger.address, 0, checkpoint)
        assert {a: mirror.has_access(record_id(cid), a) for a in expected} == expected
        assert mirror.on_chain(record_id(cid))
        mirror.close()


# ------------------------------------------------------------------ finding 1: record squatting


def _item(cid: bytes | None = None) -> RecordInput:
    return RecordInput(cid or new_cid(), os.urandom(32), os.urandom(32), os.urandom(32))


def test_a_copied_store_image_stores_the_honest_uploaders_record(world: World) -> None:
    cast, ledger = world.cast, world.ledger
    rival = cast.grantee  # an authorized uploader too
    ledger.authorize_uploader(cast.admin, rival.address)
    item = _item()
    digest = ledger._contract.view(
        "recordDigest", item.cid, item.image_hash, item.h3, item.pixel_digest
    )
    assert digest == (ledger._contract.record_digest(item),)
    honest = ledger._contract.store_args(cast.uploader, item)
    _raw(world, rival, "storeImage", *honest)  # the copy, mined first
    record = ledger.get_record(item.cid)
    assert (record.uploader, record.image_hash) == (cast.uploader.address, item.image_hash)
    assert ledger.controller_of(item.cid) == cast.uploader.address
    assert not ledger.has_access(item.cid, rival.address)
    with pytest.raises(InvalidInput, match="already stored"):  # the original, mined second
        ledger.store_records(cast.uploader, [item])
    ledger.grant(cast.uploader, item.cid, cast.revoked.address)  # the record is the uploader's
    with pytest.raises(AccessDenied, match="is neither the controller"):
        ledger.revoke(rival, item.cid, cast.revoked.address)


def test_store_image_refuses_forged_and_malleated_signatures(world: World) -> None:
    cast, ledger = world.cast, world.ledger
    item = _item()
    cid, h1, h3, pixel, signature = ledger._contract.store_args(cast.uploader, item)
    forged = os.urandom(32)  # the honest signature with other hashes: another (random) signer
    with pytest.raises(AccessDenied, match="is not an authorized uploader"):
        _raw(world, cast.admin, "storeImage", cid, forged, h3, pixel, signature)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = r + (SECP256K1_ORDER - s).to_bytes(32, "big") + bytes([55 - v])
    for bad in (twin, signature[:64], signature + b"\x00", signature[:64] + b"\x1d"):
        with pytest.raises(InvalidInput, match="signature over the record is malformed"):
            _raw(world, cast.admin, "storeImage", cid, h1, h3, pixel, bad)
    stranger_signed = ledger._contract.store_args(cast.stranger, item)
    with pytest.raises(AccessDenied, match=f"{cast.stranger.address} is not an authorized"):
        _raw(world, cast.uploader, "storeImage", *stranger_signed)  # sent by an uploader
    with pytest.raises(NotFound):
        ledger.get_record(cid)
    _raw(world, cast.admin, "storeImage", cid, h1, h3, pixel, signature)  # relayed: fine
    assert ledger.get_record(cid).uploader == cast.uploader.address


def test_batched_records_cannot_be_squatted(make_config: ConfigFactory, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=2) as ledger:
        rival = cast.grantee
        ledger.authorize_uploader(cast.admin, rival.address)
        granted, bare = _item(), _item()
        ledger.store_records(cast.uploader, [granted, bare])  # anchored: batch_size 2
        ledger.grant(cast.admin, granted.cid, cast.revoked.address)  # as a gateway does
        assert ledger._contract.view("isReserved", record_id(granted.cid)) == (True,)
        squat = ledger._contract.store_args(rival, _item(granted.cid))
        with pytest.raises(InvalidInput, match="was granted on by an admin"):
            ledger._tx(rival, "storeImage", b"", squat, "store record")
        assert (
            ledger.verify_record(
                granted.cid, granted.image_hash, granted.h3, granted.pixel_digest
            ).source
            == "batch"
        )
        assert ledger.has_access(granted.cid, cast.revoked.address)
        assert ledger.controller_of(granted.cid) is None
        # a batch record nobody granted on yet: the chain record never shadows the entry
        squat = ledger._contract.store_args(rival, _item(bare.cid))
        ledger._tx(rival, "storeImage", b"", squat, "store record")
        with pytest.raises(IntegrityError, match="contradict each other"):
            ledger.get_record(bare.cid)
        with pytest.raises(IntegrityError, match="contradict each other"):
            ledger.verify_record(bare.cid, bare.image_hash, bare.h3, bare.pixel_digest)
        # and the operator appends no entry for a record already stored on chain
        on_chain = _item()
        stored = ledger._contract.store_args(rival, on_chain)
        ledger._tx(rival, "storeImage", b"", stored, "store record")
        with pytest.raises(InvalidInput, match="already stored on chain"):
            ledger.store_records(cast.uploader, [on_chain])


# ------------------------------------------------------------------ finding 5: anchored sizes


def test_an_anchor_claims_at_most_max_log_size(world: World) -> None:
    admin, root = world.cast.admin, os.urandom(32)  # a one-entry log: the root is any hash
    for size in (2**64 - 1, 2**40 + 1):
        with pytest.raises(InvalidInput, match="at most 2\\*\\*40 entries"):
            _raw(world, admin, "anchorBatch", root, size, [])
    assert world.ledger.anchor_count(admin.address) == 0
    _raw(world, admin, "anchorBatch", root, 1, [])
    assert world.ledger.get_anchor(admin.address, 0).size == 1


def test_a_size_that_is_not_the_roots_is_caught_off_chain(
    make_config: ConfigFactory, cast: Cast
) -> None:
    """The chain takes the operator's word for the size of its first anchor; every ledger that
    opens the log (the operator's, a reader's) compares the root at that size with the file."""
    config = make_config(mode="batched", batch_size=10**6)
    with _batched(make_config, cast, batch_size=10**6) as ledger:
        ledger.store_records(cast.uploader, _items(4))
        writer = ledger._writer
        assert isinstance(writer, BatchedWriter)
        three = writer.log.tree.root(3)
        ledger._tx(cast.admin, "anchorBatch", b"", [three, 4, []], "anchor batch")  # mis-sized
    with pytest.raises(IntegrityError, match="does not match the root anchored on chain"):
        Ledger.open(config, operator=cast.admin)


# ------------------------------------------------------------------ all of it, at random


class _Model:
    """What the hardened rules say the contract must do, kept beside it."""

    def __init__(self, world: World, rival: LocalAccount) -> None:
        cast = world.cast
        self.admins = {cast.owner.address, cast.admin.address}
        self.identified = {a.address for a in (cast.uploader, rival, cast.grantee, cast.revoked)}
        self.uploaders = {cast.uploader.address, rival.address}
        self.candidates = [cast.uploader.address, rival.address]  # authorized, deauthorized
        self.controller: dict[bytes, str | None] = {world.cid: cast.uploader.address}
        self.grants = {
            (world.cid, cast.grantee.address): GrantState.ACTIVE,
            (world.cid, cast.revoked.address): GrantState.REVOKED,
        }

    def controls(self, who: str, cid: bytes) -> bool:
        return who in self.admins or (self.controller[cid] == who and who in self.uploaders)

    def has_access(self, cid: bytes, who: str) -> bool:
        return self.controller[cid] == who or self.grants.get((cid, who)) == GrantState.ACTIVE


def _succeeds(call: Callable[..., object], *args: Any) -> bool:
    try:
        call(*args)
    except (AccessDenied, InvalidInput, NotFound):
        return False
    return True


def _random_step(
    world: World, model: _Model, who: LocalAccount, chooser: random.Random, targets: list[str]
) -> None:
    """One random transaction; it must succeed exactly when the model says it may."""
    ledger, me = world.ledger, who.address
    cid, target = chooser.choice(list(model.controller)), chooser.choice(targets)
    kind = chooser.choice(["store", "grant", "revoke", "hand", "upload-role", "log"])
    if kind == "store":
        item = _item()
        ok = me in model.uploaders
        assert _succeeds(ledger.store_records, who, [item]) is ok
        if ok:
            model.controller[item.cid] = me
    elif kind == "grant":
        ok = model.controls(me, cid) and target in model.identified
        ok = ok and model.grants.get((cid, target)) != GrantState.ACTIVE
        assert _succeeds(ledger.grant, who, cid, target) is ok, (me, kind)
        if ok:
            model.grants[(cid, target)] = GrantState.ACTIVE
    elif kind == "revoke":
        ok = model.controls(me, cid) and model.grants.get((cid, target)) == GrantState.ACTIVE
        assert _succeeds(ledger.revoke, who, cid, target) is ok, (me, kind)
        if ok:
            model.grants[(cid, target)] = GrantState.REVOKED
    elif kind == "hand":
        heir = chooser.choice([target, None])
        ok = model.controls(me, cid) and (heir is None or heir in model.identified)
        assert _succeeds(ledger.set_controller, who, cid, heir) is ok, (me, kind)
        if ok:
            model.controller[cid] = heir
    elif kind == "upload-role":
        subject = chooser.choice(model.candidates)
        ok = me in model.admins
        if subject in model.uploaders:
            assert _succeeds(ledger.deauthorize_uploader, who, subject) is ok, (me, kind)
            model.uploaders -= {subject} if ok else set()
        else:
            assert _succeeds(ledger.authorize_uploader, who, subject) is ok, (me, kind)
            model.uploaders |= {subject} if ok else set()
    else:
        accessor = chooser.choice([me, target])
        ok = me in model.admins or (accessor == me and me in model.identified)
        assert _succeeds(ledger.log_access, who, cid, accessor) is ok, (me, kind)
        if ok:
            last = ledger.access_log(cid)[-1]
            assert (last.accessor, last.reporter) == (accessor, me)
            assert last.authorized is model.has_access(cid, accessor)


def test_random_histories_keep_every_rule(world: World) -> None:
    """Random actors try every transaction; each succeeds exactly when the model says so, and
    the mirrored access table always equals the model's (and the contract's)."""
    cast, ledger = world.cast, world.ledger
    rival = Account.create()
    ledger.register_identity(cast.admin, rival.address, card(rival))
    ledger.authorize_uploader(cast.admin, rival.address)
    model = _Model(world, rival)
    actors = [cast.owner, cast.admin, cast.uploader, rival, cast.grantee, cast.stranger]
    for actor in actors:
        ledger.chain.ensure_funded(actor.address)
    targets = [a.address for a in (cast.uploader, rival, cast.grantee, cast.revoked, cast.stranger)]
    chooser = random.Random(23)
    for _step in range(200):
        _random_step(world, model, chooser.choice(actors), chooser, targets)
        for record in model.controller:
            for account in targets:
                expected = model.has_access(record, account)
                assert ledger.has_access(record, account) is expected, (record, account)
    for record in model.controller:
        for account in targets:
            assert _contract_has_access(world, record, account) is model.has_access(record, account)
