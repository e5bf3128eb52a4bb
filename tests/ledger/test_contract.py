"""Every contract function, called by every kind of caller, on the embedded EVM and on anvil.

Each allowed path succeeds and each refusal surfaces in Python as the ScanSeal error a caller can
act on (AccessDenied naming the caller and the missing role, NotFound, InvalidInput,
IntegrityError), never as a raw revert. `test_every_function_has_a_test_for_every_role` keeps the
list honest against the ABI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound
from scanseal.integrity.merkle import MerkleTree
from scanseal.ledger import AccessType, Reason, _abi, record_id
from scanseal.ledger._artifact import load_artifact
from scanseal.ledger._chain import RevertError

from .conftest import World, card, new_cid

ROLES = ["owner", "admin", "uploader", "grantee", "revoked", "stranger"]
ADMINS = ("owner", "admin")  # isAdmin is true for the owner too
CONTROLLERS = ("owner", "admin", "uploader")  # of the world's record, which the uploader stored

# The contract's custom errors as AccessDenied messages (scanseal.ledger._revert), after the caller
NOT_OWNER = "is not the contract owner"
NOT_PENDING = "is not the proposed owner"
NOT_ADMIN = "is not an admin"
NOT_UPLOADER = "is not an authorized uploader"
NOT_CONTROLLER = "is neither the controller of record"
NOT_REPORTER = "may not report access attempts for"


def _who(world: World, role: str) -> LocalAccount:
    account: LocalAccount = getattr(world.cast, role)
    return account


def _refused(caller: LocalAccount, why: str) -> pytest.RaisesExc[AccessDenied]:
    """The refusal must be the precise custom error, and name the caller that was refused."""
    return pytest.raises(AccessDenied, match=re.escape(f"{caller.address} {why}"))


def _anchor(world: World, caller: LocalAccount, root: bytes, size: int, proof: list[bytes]) -> None:
    """anchorBatch sent directly (the Ledger only anchors from its own batched log)."""
    world.ledger._tx(caller, "anchorBatch", b"", [root, size, proof], "anchor batch")


# ------------------------------------------------------------------ roles and identities


@pytest.mark.parametrize("role", ROLES)
def test_transfer_ownership_only_owner(world: World, role: str) -> None:
    caller, heir = _who(world, role), world.cast.stranger
    if role == "owner":
        world.ledger.transfer_ownership(caller, heir.address)
        assert world.ledger.owner() == caller.address
        assert world.ledger.pending_owner() == heir.address
        world.ledger.accept_ownership(heir)
        assert (world.ledger.owner(), world.ledger.pending_owner()) == (heir.address, None)
        with _refused(caller, NOT_OWNER):  # the old owner has given its powers away
            world.ledger.set_admin(caller, world.cast.grantee.address)
        world.ledger.set_admin(heir, world.cast.grantee.address)
        assert world.ledger.is_admin(world.cast.grantee.address)
    else:
        with _refused(caller, NOT_OWNER):
            world.ledger.transfer_ownership(caller, caller.address)
        assert world.ledger.owner() == world.cast.owner.address
        assert world.ledger.pending_owner() is None


@pytest.mark.parametrize("role", ROLES)
def test_accept_ownership_only_the_proposed_owner(world: World, role: str) -> None:
    caller, owner = _who(world, role), world.cast.owner
    world.ledger.transfer_ownership(owner, world.cast.stranger.address)
    if role == "stranger":
        world.ledger.accept_ownership(caller)
        assert (world.ledger.owner(), world.ledger.pending_owner()) == (caller.address, None)
        with _refused(caller, NOT_PENDING):  # one acceptance per proposal
            world.ledger.accept_ownership(caller)
    else:
        with _refused(caller, NOT_PENDING):
            world.ledger.accept_ownership(caller)
        assert world.ledger.owner() == owner.address
        assert world.ledger.pending_owner() == world.cast.stranger.address


def test_transfer_ownership_refuses_the_zero_address(world: World) -> None:
    with pytest.raises(InvalidInput, match="zero address"):
        world.ledger.transfer_ownership(world.cast.owner, "0x" + "00" * 20)
    assert world.ledger.owner() == world.cast.owner.address


@pytest.mark.parametrize("role", ROLES)
def test_set_admin_only_owner(world: World, role: str) -> None:
    caller, target = _who(world, role), world.cast.stranger.address
    if role == "owner":
        world.ledger.set_admin(caller, target)
        assert world.ledger.is_admin(target)
        world.ledger.set_admin(caller, target, enabled=False)
        assert not world.ledger.is_admin(target)
    else:
        with _refused(caller, NOT_OWNER):
            world.ledger.set_admin(caller, target)
        assert not world.ledger.is_admin(target)


@pytest.mark.parametrize("role", ROLES)
def test_register_identity_only_admins(world: World, role: str) -> None:
    caller, target = _who(world, role), world.cast.stranger
    if role in ADMINS:
        world.ledger.register_identity(caller, target.address, card(target))
        assert world.ledger.identity_of(target.address) == card(target)
    else:
        with _refused(caller, NOT_ADMIN):
            world.ledger.register_identity(caller, target.address, card(target))
        assert world.ledger.identity_of(target.address) is None


def test_register_identity_rejects_zero_hash(world: World) -> None:
    with pytest.raises(InvalidInput, match="cannot be zero"):
        world.ledger.register_identity(world.cast.admin, world.cast.stranger.address, bytes(32))


@pytest.mark.parametrize("role", ROLES)
def test_authorize_uploader_only_admins(world: World, role: str) -> None:
    caller, target = _who(world, role), world.cast.grantee.address
    if role in ADMINS:
        world.ledger.authorize_uploader(caller, target)
        assert world.ledger.is_uploader(target)
    else:
        with _refused(caller, NOT_ADMIN):
            world.ledger.authorize_uploader(caller, target)
        assert not world.ledger.is_uploader(target)


def test_uploader_needs_a_registered_identity(world: World) -> None:
    with pytest.raises(NotFound, match="no registered identity"):
        world.ledger.authorize_uploader(world.cast.admin, world.cast.stranger.address)


@pytest.mark.parametrize("role", ROLES)
def test_deauthorize_uploader_only_admins(world: World, role: str) -> None:
    caller, uploader = _who(world, role), world.cast.uploader
    if role in ADMINS:
        world.ledger.deauthorize_uploader(caller, uploader.address)
        assert not world.ledger.is_uploader(uploader.address)
        with _refused(uploader, NOT_UPLOADER):
            world.ledger.store_record(uploader, new_cid(), *world.hashes)
    else:
        with _refused(caller, NOT_ADMIN):
            world.ledger.deauthorize_uploader(caller, uploader.address)
        assert world.ledger.is_uploader(uploader.address)


# ------------------------------------------------------------------ records and grants


@pytest.mark.parametrize("role", ROLES)
def test_store_record_only_uploaders(world: World, role: str) -> None:
    caller = _who(world, role)
    cid, hashes = new_cid(), (os.urandom(32), os.urandom(32), os.urandom(32))
    if role == "uploader":
        receipt = world.ledger.store_record(caller, cid, *hashes)
        assert receipt.record_id == record_id(cid)
        assert receipt.gas_used
        record = world.ledger.get_record(cid)
        assert (record.cid, record.image_hash, record.h3, record.pixel_digest) == (cid, *hashes)
        assert record.uploader == world.cast.uploader.address
    else:
        with _refused(caller, NOT_UPLOADER):
            world.ledger.store_record(caller, cid, *hashes)
        with pytest.raises(NotFound):
            world.ledger.get_record(cid)


def test_store_record_refuses_duplicates_and_bad_hashes(world: World) -> None:
    with pytest.raises(InvalidInput, match="already stored"):
        world.ledger.store_record(world.cast.uploader, world.cid, *world.hashes)
    with pytest.raises(InvalidInput, match="nonzero"):
        world.ledger.store_record(world.cast.uploader, new_cid(), bytes(32), *world.hashes[1:])


@pytest.mark.parametrize("role", ROLES)
def test_grant_by_uploader_or_admin(world: World, role: str) -> None:
    caller, target = _who(world, role), world.cast.stranger
    world.ledger.register_identity(world.cast.admin, target.address, card(target))
    if role in CONTROLLERS:
        world.ledger.grant(caller, world.cid, target.address)
        assert world.ledger.has_access(world.cid, target.address)
    else:
        with _refused(caller, NOT_CONTROLLER):
            world.ledger.grant(caller, world.cid, target.address)
        assert not world.ledger.has_access(world.cid, target.address)


def test_grant_refusals(world: World) -> None:
    with pytest.raises(NotFound, match="no registered identity"):
        world.ledger.grant(world.cast.uploader, world.cid, world.cast.stranger.address)
    with pytest.raises(InvalidInput, match="already has access"):
        world.ledger.grant(world.cast.uploader, world.cid, world.cast.grantee.address)
    # only an admin may grant on a record that is not on chain (it may live in a batch)
    with _refused(world.cast.uploader, NOT_CONTROLLER):
        world.ledger.grant(world.cast.uploader, new_cid(), world.cast.grantee.address)
    world.ledger.grant(world.cast.admin, new_cid(), world.cast.grantee.address)


@pytest.mark.parametrize("role", ROLES)
def test_grant_batch_by_uploader_or_admin(world: World, role: str) -> None:
    caller, target = _who(world, role), world.cast.stranger
    world.ledger.register_identity(world.cast.admin, target.address, card(target))
    if role in CONTROLLERS:
        world.ledger.grant_many(caller, [(world.cid, target.address)])
        assert world.ledger.has_access(world.cid, target.address)
    else:
        with _refused(caller, NOT_CONTROLLER):
            world.ledger.grant_many(caller, [(world.cid, target.address)])
        assert not world.ledger.has_access(world.cid, target.address)


def test_grant_batch_is_all_or_nothing_and_reserves_batch_records(world: World) -> None:
    ledger, cast = world.ledger, world.cast
    fresh = [new_cid(), new_cid()]  # not on chain: records of a batch, which an admin reserves
    pairs = [(fresh[0], cast.grantee.address), (fresh[1], cast.grantee.address)]
    with pytest.raises(NotFound, match="no registered identity"):  # the last pair fails
        ledger.grant_many(cast.admin, [*pairs, (fresh[0], cast.stranger.address)])
    assert not any(ledger.has_access(cid, cast.grantee.address) for cid in fresh)
    with pytest.raises(InvalidInput, match="already has access"):  # a repeated pair
        ledger.grant_many(cast.admin, [pairs[0], pairs[0]])
    with _refused(cast.uploader, NOT_CONTROLLER):  # only an admin grants on a batch record
        ledger.grant_many(cast.uploader, [(world.cid, cast.revoked.address), pairs[0]])
    assert not ledger.has_access(world.cid, cast.revoked.address)
    ledger.grant_many(cast.admin, [*pairs, (world.cid, cast.revoked.address)])
    assert all(ledger.has_access(cid, cast.grantee.address) for cid in fresh)
    assert ledger.has_access(world.cid, cast.revoked.address)  # a revoked grant returns
    assert all(ledger._contract.view("isReserved", record_id(cid)) == (True,) for cid in fresh)
    assert ledger._contract.view("isReserved", record_id(world.cid)) == (False,)  # on chain


def test_grant_batch_bounds(world: World) -> None:
    ledger, admin, grantee = world.ledger, world.cast.admin, world.cast.grantee.address
    for size in (0, 257):
        with pytest.raises(InvalidInput, match="1 to 256"):
            ledger.grant_many(admin, [(new_cid(), grantee)] * size)
    rid = record_id(new_cid())
    for rids, grantees in (([], []), ([rid], []), ([rid] * 257, [grantee] * 257)):
        with pytest.raises(InvalidInput, match="1 to 256 records, one grantee each"):
            ledger._tx(admin, "grantAccessBatch", b"", [rids, grantees], "grant access")


@pytest.mark.parametrize("role", ROLES)
def test_revoke_by_uploader_or_admin(world: World, role: str) -> None:
    caller, grantee = _who(world, role), world.cast.grantee.address
    if role in CONTROLLERS:
        world.ledger.revoke(caller, world.cid, grantee)
        assert not world.ledger.has_access(world.cid, grantee)
        world.ledger.grant(caller, world.cid, grantee)  # a revoked grant can return
        assert world.ledger.has_access(world.cid, grantee)
    else:
        with _refused(caller, NOT_CONTROLLER):
            world.ledger.revoke(caller, world.cid, grantee)
        assert world.ledger.has_access(world.cid, grantee)


@pytest.mark.parametrize("role", ROLES)
def test_set_controller_by_admins_or_the_controller(world: World, role: str) -> None:
    caller, heir, uploader = _who(world, role), world.cast.revoked, world.cast.uploader
    if role in CONTROLLERS:
        world.ledger.set_controller(caller, world.cid, heir.address)
        assert world.ledger.controller_of(world.cid) == heir.address
        assert world.ledger.has_access(world.cid, heir.address)  # the controller opens it
        assert not world.ledger.has_access(world.cid, uploader.address)
        with _refused(uploader, NOT_CONTROLLER):  # handed over: the uploader's control is gone
            world.ledger.revoke(uploader, world.cid, world.cast.grantee.address)
    else:
        with _refused(caller, NOT_CONTROLLER):
            world.ledger.set_controller(caller, world.cid, caller.address)
        assert world.ledger.controller_of(world.cid) == uploader.address


def test_set_controller_refusals(world: World) -> None:
    admin, grantee = world.cast.admin, world.cast.grantee.address
    with pytest.raises(NotFound, match="not on the ledger"):  # batched records have no controller
        world.ledger.set_controller(admin, new_cid(), grantee)
    with pytest.raises(NotFound, match="no registered identity"):
        world.ledger.set_controller(admin, world.cid, world.cast.stranger.address)
    with pytest.raises(InvalidInput, match="handed to nobody"):
        world.ledger.set_controller(admin, world.cid, "0x" + "00" * 19 + "01")
    assert world.ledger.controller_of(world.cid) == world.cast.uploader.address
    assert world.ledger.controller_of(new_cid()) is None


def test_revoke_without_grant(world: World) -> None:
    with pytest.raises(InvalidInput, match="no grant"):
        world.ledger.revoke(world.cast.uploader, world.cid, world.cast.revoked.address)


# ------------------------------------------------------------------ access log


@pytest.mark.parametrize(
    ("role", "allowed", "reason"),
    [
        ("owner", False, Reason.NO_GRANT),
        ("admin", False, Reason.NO_GRANT),
        ("uploader", True, Reason.NONE),
        ("grantee", True, Reason.NONE),
        ("revoked", False, Reason.REVOKED),
        ("stranger", False, Reason.NO_GRANT),
    ],
)
def test_log_access_decides_from_the_grant_table(
    world: World, role: str, allowed: bool, reason: Reason
) -> None:
    accessor = _who(world, role).address
    result = world.ledger.log_access(world.cast.admin, world.cid, accessor, AccessType.DOWNLOAD)
    assert (result.allowed, result.reason) == (allowed, reason)
    (logged,) = world.ledger.access_log(world.cid)
    assert (logged.accessor, logged.authorized, logged.reason) == (accessor, allowed, reason)
    assert logged.reporter == world.cast.admin.address
    assert logged.access_type == AccessType.DOWNLOAD


def test_gateway_reason_turns_access_into_denial(world: World) -> None:
    grantee = world.cast.grantee.address
    result = world.ledger.log_access(
        world.cast.admin, world.cid, grantee, AccessType.VIEW, Reason.BAD_SIGNATURE
    )
    assert (result.allowed, result.reason) == (False, Reason.BAD_SIGNATURE)


@pytest.mark.parametrize("role", ROLES)
def test_log_access_own_attempt_by_identities_others_by_admins(world: World, role: str) -> None:
    caller = _who(world, role)
    identified = role in ("uploader", "grantee", "revoked")
    if role in ADMINS or identified:
        own = world.ledger.log_access(caller, world.cid, caller.address)
        assert own.allowed is (role in ("uploader", "grantee"))
    else:  # no role and no identity: not even its own attempt
        with _refused(caller, NOT_REPORTER):
            world.ledger.log_access(caller, world.cid, caller.address)
    other = Account.create().address  # nobody's own attempt in this cast
    if role in ADMINS:
        assert world.ledger.log_access(caller, world.cid, other).reason == Reason.NO_GRANT
    else:
        with _refused(caller, NOT_REPORTER):
            world.ledger.log_access(caller, world.cid, other)
    reporters = [(e.accessor, e.reporter) for e in world.ledger.access_log(world.cid)]
    expected = [(caller.address, caller.address)] if role in ADMINS or identified else []
    assert reporters == expected + ([(other, caller.address)] if role in ADMINS else [])


@pytest.mark.parametrize("role", ROLES)
def test_log_access_via_a_containing_record_only_admins(world: World, role: str) -> None:
    """An instance reached through its study record: a grant on either allows, a revoked one
    denies as revoked, no grant on either denies; only an admin reports this way."""
    caller, cast = _who(world, role), world.cast
    instance = new_cid()  # no grant of its own: the world's record is the "study"
    if role not in ADMINS:
        with _refused(caller, NOT_ADMIN):
            world.ledger.log_access(caller, instance, cast.grantee.address, via=world.cid)
        assert world.ledger.access_log(instance) == []
        return
    outcomes = [
        world.ledger.log_access(caller, instance, who.address, AccessType.DOWNLOAD, via=world.cid)
        for who in (cast.grantee, cast.revoked, cast.stranger, cast.uploader)
    ]
    assert [(o.allowed, o.reason) for o in outcomes] == [
        (True, Reason.NONE), (False, Reason.REVOKED), (False, Reason.NO_GRANT),
        (True, Reason.NONE),  # the study's controller
    ]  # fmt: skip
    logged = [(e.accessor, e.authorized, e.reporter) for e in world.ledger.access_log(instance)]
    assert logged[0] == (cast.grantee.address, True, caller.address)
    assert world.ledger.access_log(world.cid) == []  # logged for the instance, not the study
    forced = world.ledger.log_access(caller, instance, cast.grantee.address,
                                     reason=Reason.BAD_SIGNATURE, via=world.cid)  # fmt: skip
    assert (forced.allowed, forced.reason) == (False, Reason.BAD_SIGNATURE)
    with pytest.raises(InvalidInput, match="other than itself"):
        world.ledger.log_access(caller, instance, cast.grantee.address, via=instance)
    assert world.ledger.log_access(caller, world.cid, cast.grantee.address).allowed


# ------------------------------------------------------------------ batched anchors


def _tree(size: int) -> MerkleTree:
    tree = MerkleTree()
    for i in range(size):
        tree.append(b"entry %d" % i)
    return tree


@pytest.mark.parametrize("role", ROLES)
def test_anchor_batch_only_admins(world: World, role: str) -> None:
    caller, root = _who(world, role), _tree(3).root()
    if role in ADMINS:
        _anchor(world, caller, root, 3, [])
        anchor = world.ledger.get_anchor(caller.address, 0)
        assert (anchor.root, anchor.size) == (root, 3)
    else:
        with _refused(caller, NOT_ADMIN):
            _anchor(world, caller, root, 3, [])
    assert world.ledger.anchor_count(caller.address) == (1 if role in ADMINS else 0)


def test_anchor_batch_refusals(world: World) -> None:
    tree, admin = _tree(5), world.cast.admin
    _anchor(world, admin, tree.root(3), 3, [])
    with pytest.raises(InvalidInput, match="does not grow"):
        _anchor(world, admin, tree.root(3), 3, [])
    forged = MerkleTree(tree.root(1) for _ in range(5))  # a different log of the same size
    with pytest.raises(IntegrityError, match="not an extension"):
        _anchor(world, admin, forged.root(), 5, forged.consistency_proof(3))
    _anchor(world, admin, tree.root(), 5, tree.consistency_proof(3))
    anchor = world.ledger.get_anchor(admin.address, 1)
    assert (anchor.root, anchor.size) == (tree.root(), 5)
    with pytest.raises(NotFound, match="no anchor #2"):
        world.ledger.get_anchor(admin.address, 2)


# ------------------------------------------------------------------ views

#: What the views say about each role as their subject:
#: (isAdmin, isUploader, identity registered, hasAccess to the record, grantOf the record)
STANDING = {
    "owner": (True, False, False, False, 0),
    "admin": (True, False, False, False, 0),
    "uploader": (False, True, True, True, 0),
    "grantee": (False, False, True, True, 1),
    "revoked": (False, False, True, False, 2),
    "stranger": (False, False, False, False, 0),
}

ViewArgs = Callable[[World, str], tuple[Any, ...]]
#: Every view of the ABI with arguments about the world's record and a subject account; the
#: last three read past the end and revert (UnknownRecord, UnknownAnchor, UnknownAccessLog).
VIEWS: dict[str, ViewArgs] = {
    "MAX_CID_LENGTH": lambda w, a: (),
    "MAX_PROOF_LENGTH": lambda w, a: (),
    "MAX_LOG_SIZE": lambda w, a: (),
    "REASON_NONE": lambda w, a: (),
    "REASON_NO_GRANT": lambda w, a: (),
    "REASON_REVOKED": lambda w, a: (),
    "FIRST_REPORTER_REASON": lambda w, a: (),
    "owner": lambda w, a: (),
    "pendingOwner": lambda w, a: (),
    "isAdmin": lambda w, a: (a,),
    "isUploader": lambda w, a: (a,),
    "identityOf": lambda w, a: (a,),
    "getRecord": lambda w, a: (record_id(w.cid),),
    "verifyImage": lambda w, a: (record_id(w.cid), w.hashes[0]),
    "verifyRecord": lambda w, a: (record_id(w.cid), *w.hashes),
    "grantOf": lambda w, a: (record_id(w.cid), a),
    "controllerOf": lambda w, a: (record_id(w.cid),),
    "isReserved": lambda w, a: (record_id(w.cid),),
    "recordDigest": lambda w, a: (w.cid, *w.hashes),
    "hasAccess": lambda w, a: (record_id(w.cid), a),
    "accessLogCount": lambda w, a: (record_id(w.cid),),
    "accessLogAt": lambda w, a: (record_id(w.cid), 0),
    "anchorCount": lambda w, a: (w.cast.admin.address,),
    "getAnchor": lambda w, a: (w.cast.admin.address, 0),
}
REVERTING: dict[str, ViewArgs] = {
    "getRecord": lambda w, a: (record_id(new_cid()),),
    "getAnchor": lambda w, a: (w.cast.admin.address, 1),
    "accessLogAt": lambda w, a: (record_id(w.cid), 1),
}


def _view_as(world: World, sender: str | None, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A view's decoded answer, or its revert data, as `sender` (None: no `from`) sees it."""
    ledger = world.ledger
    try:
        raw = ledger.chain.call(ledger.address, _abi.encode_call(name, *args), sender)
    except RevertError as reverted:
        return ("reverted", reverted.data)
    return _abi.decode_output(name, raw)


@pytest.mark.parametrize("role", ROLES)
def test_views_answer_every_caller_alike(world: World, role: str) -> None:
    """No view looks at msg.sender: called by any role it answers as for an anonymous call, and
    what it says about the role as its subject is that role's standing."""
    me = _who(world, role).address
    world.ledger.chain.ensure_funded(me)  # py-evm refuses even a read from an account without gas
    world.ledger.log_access(world.cast.admin, world.cid, world.cast.grantee.address)
    _anchor(world, world.cast.admin, _tree(2).root(), 2, [])
    calls = [(name, args, False) for name, args in VIEWS.items()]
    calls += [(name, args, True) for name, args in REVERTING.items()]
    for name, args, reverts in calls:
        values = args(world, me)
        seen = _view_as(world, me, name, values)
        assert seen == _view_as(world, None, name, values), name
        assert (seen[0] == "reverted") is reverts, name
    answers = {name: _view_as(world, me, name, VIEWS[name](world, me)) for name in VIEWS}
    standing = tuple(
        answers[name][0] for name in ("isAdmin", "isUploader", "identityOf", "hasAccess", "grantOf")
    )
    assert (*standing[:2], any(standing[2]), *standing[3:]) == STANDING[role]
    assert world.ledger.has_access(world.cid, me) is STANDING[role][3]  # the mirrored table agrees
    assert answers["verifyImage"] == answers["verifyRecord"] == (True,)
    assert answers["owner"] == (world.cast.owner.address,)
    assert answers["accessLogCount"] == answers["anchorCount"] == (1,)
    with pytest.raises(NotFound, match="not on the ledger"):
        world.ledger.get_record(new_cid())


def test_verify_record_and_the_papers_verify_image(world: World) -> None:
    h1, h3, pixel = world.hashes
    assert world.ledger.verify_record(world.cid, h1, h3, pixel).source == "chain"
    assert world.ledger.verify_image(world.cid, h1)
    assert not world.ledger.verify_image(world.cid, h3)
    flipped = bytes([h1[0] ^ 1]) + h1[1:]
    with pytest.raises(IntegrityError, match="H1"):
        world.ledger.verify_record(world.cid, flipped, h3, pixel)
    with pytest.raises(IntegrityError, match="H3"):
        world.ledger.verify_record(world.cid, h1, pixel, pixel)
    with pytest.raises(IntegrityError, match="pixel"):
        world.ledger.verify_record(world.cid, h1, h3, h3)
    with pytest.raises(NotFound):
        world.ledger.verify_record(new_cid(), h1, h3, pixel)


def test_audit_trail_tells_the_whole_story(world: World) -> None:
    cast = world.cast
    world.ledger.log_access(cast.admin, world.cid, cast.grantee.address, AccessType.DOWNLOAD)
    world.ledger.log_access(cast.admin, world.cid, cast.revoked.address, AccessType.VIEW)
    trail = world.ledger.audit_trail(world.cid)
    summary = [(e.action, e.actor, e.subject, e.allowed, e.reason) for e in trail]
    assert summary == [
        ("stored", cast.uploader.address, None, None, None),
        ("granted", cast.uploader.address, cast.grantee.address, None, None),
        ("granted", cast.uploader.address, cast.revoked.address, None, None),
        ("revoked", cast.uploader.address, cast.revoked.address, None, None),
        ("access", cast.admin.address, cast.grantee.address, True, "none"),
        ("access", cast.admin.address, cast.revoked.address, False, "revoked"),
    ]
    assert all(e.tx_hash and e.tx_hash.startswith("0x") for e in trail)
    assert [e.timestamp for e in trail] == sorted(e.timestamp for e in trail)


# ------------------------------------------------------------------ coverage of the ABI

#: The role-parametrized test of each state-changing function of the contract.
TRANSACTIONS: dict[str, Callable[[World, str], None]] = {
    "transferOwnership": test_transfer_ownership_only_owner,
    "acceptOwnership": test_accept_ownership_only_the_proposed_owner,
    "setAdmin": test_set_admin_only_owner,
    "registerIdentity": test_register_identity_only_admins,
    "authorizeUploader": test_authorize_uploader_only_admins,
    "deauthorizeUploader": test_deauthorize_uploader_only_admins,
    "storeImage": test_store_record_only_uploaders,
    "grantAccess": test_grant_by_uploader_or_admin,
    "grantAccessBatch": test_grant_batch_by_uploader_or_admin,
    "revokeAccess": test_revoke_by_uploader_or_admin,
    "setController": test_set_controller_by_admins_or_the_controller,
    "logAccess": test_log_access_own_attempt_by_identities_others_by_admins,
    "logAccessVia": test_log_access_via_a_containing_record_only_admins,
    "anchorBatch": test_anchor_batch_only_admins,
}


def test_every_function_has_a_test_for_every_role() -> None:
    """A function added to the contract fails here until it is tested for all six callers."""
    abi = [item for item in load_artifact().abi if item["type"] == "function"]
    views = {item["name"] for item in abi if item["stateMutability"] in ("view", "pure")}
    assert set(VIEWS) == views
    assert set(TRANSACTIONS) == {item["name"] for item in abi} - views
    for name, test in [*TRANSACTIONS.items(), ("views", test_views_answer_every_caller_alike)]:
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        assert [(m.args[0], list(m.args[1])) for m in marks] == [("role", ROLES)], name
