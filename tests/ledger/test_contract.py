"""Every contract function, called by every kind of caller, on the embedded EVM and on anvil.

Each allowed path succeeds and each refusal surfaces in Python as the ScanSeal error a caller can
act on (AccessDenied, NotFound, InvalidInput, IntegrityError), never as a raw revert.
"""

from __future__ import annotations

import os

import pytest
from eth_account.signers.local import LocalAccount

from scanseal.errors import AccessDenied, IntegrityError, InvalidInput, NotFound
from scanseal.ledger import AccessType, Reason, record_id

from .conftest import World, card, new_cid

ROLES = ["owner", "admin", "uploader", "grantee", "revoked", "stranger"]


def _who(world: World, role: str) -> LocalAccount:
    account: LocalAccount = getattr(world.cast, role)
    return account


@pytest.mark.parametrize("role", ROLES)
def test_set_admin_only_owner(world: World, role: str) -> None:
    target = world.cast.stranger.address
    if role == "owner":
        world.ledger.set_admin(world.cast.owner, target)
        assert world.ledger.is_admin(target)
        world.ledger.set_admin(world.cast.owner, target, enabled=False)
        assert not world.ledger.is_admin(target)
    else:
        with pytest.raises(AccessDenied, match="not the contract owner"):
            world.ledger.set_admin(_who(world, role), target)


@pytest.mark.parametrize("role", ROLES)
def test_register_identity_only_admins(world: World, role: str) -> None:
    target = world.cast.stranger
    if role in ("owner", "admin"):
        world.ledger.register_identity(_who(world, role), target.address, card(target))
        assert world.ledger.identity_of(target.address) == card(target)
    else:
        with pytest.raises(AccessDenied, match="not an admin"):
            world.ledger.register_identity(_who(world, role), target.address, card(target))
        assert world.ledger.identity_of(target.address) is None


def test_register_identity_rejects_zero_hash(world: World) -> None:
    with pytest.raises(InvalidInput, match="cannot be zero"):
        world.ledger.register_identity(world.cast.admin, world.cast.stranger.address, bytes(32))


@pytest.mark.parametrize("role", ROLES)
def test_authorize_uploader_only_admins(world: World, role: str) -> None:
    target = world.cast.grantee.address
    if role in ("owner", "admin"):
        world.ledger.authorize_uploader(_who(world, role), target)
        assert world.ledger.is_uploader(target)
    else:
        with pytest.raises(AccessDenied):
            world.ledger.authorize_uploader(_who(world, role), target)
        assert not world.ledger.is_uploader(target)


def test_uploader_needs_a_registered_identity(world: World) -> None:
    with pytest.raises(NotFound, match="no registered identity"):
        world.ledger.authorize_uploader(world.cast.admin, world.cast.stranger.address)


@pytest.mark.parametrize("role", ROLES)
def test_store_record_only_uploaders(world: World, role: str) -> None:
    cid, hashes = new_cid(), (os.urandom(32), os.urandom(32), os.urandom(32))
    if role == "uploader":
        receipt = world.ledger.store_record(_who(world, role), cid, *hashes)
        assert receipt.record_id == record_id(cid)
        assert receipt.gas_used
        record = world.ledger.get_record(cid)
        assert (record.cid, record.image_hash, record.h3, record.pixel_digest) == (cid, *hashes)
        assert record.uploader == world.cast.uploader.address
    else:
        with pytest.raises(AccessDenied, match="not an authorized uploader"):
            world.ledger.store_record(_who(world, role), cid, *hashes)
        with pytest.raises(NotFound):
            world.ledger.get_record(cid)


def test_store_record_refuses_duplicates_and_bad_hashes(world: World) -> None:
    with pytest.raises(InvalidInput, match="already stored"):
        world.ledger.store_record(world.cast.uploader, world.cid, *world.hashes)
    with pytest.raises(InvalidInput, match="nonzero"):
        world.ledger.store_record(world.cast.uploader, new_cid(), bytes(32), *world.hashes[1:])


def test_deauthorized_uploader_cannot_store(world: World) -> None:
    world.ledger.deauthorize_uploader(world.cast.admin, world.cast.uploader.address)
    with pytest.raises(AccessDenied):
        world.ledger.store_record(world.cast.uploader, new_cid(), *world.hashes)


@pytest.mark.parametrize("role", ROLES)
def test_grant_by_uploader_or_admin(world: World, role: str) -> None:
    target = world.cast.stranger
    world.ledger.register_identity(world.cast.admin, target.address, card(target))
    if role in ("owner", "admin", "uploader"):
        world.ledger.grant(_who(world, role), world.cid, target.address)
        assert world.ledger.has_access(world.cid, target.address)
    else:
        with pytest.raises(AccessDenied, match="neither the uploader"):
            world.ledger.grant(_who(world, role), world.cid, target.address)
        assert not world.ledger.has_access(world.cid, target.address)


def test_grant_refusals(world: World) -> None:
    with pytest.raises(NotFound, match="no registered identity"):
        world.ledger.grant(world.cast.uploader, world.cid, world.cast.stranger.address)
    with pytest.raises(InvalidInput, match="already has access"):
        world.ledger.grant(world.cast.uploader, world.cid, world.cast.grantee.address)
    # only an admin may grant on a record that is not on chain (it may live in a batch)
    with pytest.raises(AccessDenied):
        world.ledger.grant(world.cast.uploader, new_cid(), world.cast.grantee.address)
    world.ledger.grant(world.cast.admin, new_cid(), world.cast.grantee.address)


@pytest.mark.parametrize("role", ROLES)
def test_revoke_by_uploader_or_admin(world: World, role: str) -> None:
    grantee = world.cast.grantee.address
    if role in ("owner", "admin", "uploader"):
        world.ledger.revoke(_who(world, role), world.cid, grantee)
        assert not world.ledger.has_access(world.cid, grantee)
        world.ledger.grant(_who(world, role), world.cid, grantee)  # a revoked grant can return
        assert world.ledger.has_access(world.cid, grantee)
    else:
        with pytest.raises(AccessDenied):
            world.ledger.revoke(_who(world, role), world.cid, grantee)
        assert world.ledger.has_access(world.cid, grantee)


def test_revoke_without_grant(world: World) -> None:
    with pytest.raises(InvalidInput, match="no grant"):
        world.ledger.revoke(world.cast.uploader, world.cid, world.cast.revoked.address)


def test_has_access_for_every_role(world: World) -> None:
    expected = {
        "owner": False,
        "admin": False,
        "uploader": True,
        "grantee": True,
        "revoked": False,
        "stranger": False,
    }
    for role, allowed in expected.items():
        assert world.ledger.has_access(world.cid, _who(world, role).address) is allowed, role


@pytest.mark.parametrize(
    ("role", "allowed", "reason"),
    [
        ("uploader", True, Reason.NONE),
        ("grantee", True, Reason.NONE),
        ("revoked", False, Reason.REVOKED),
        ("stranger", False, Reason.NO_GRANT),
        ("admin", False, Reason.NO_GRANT),
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
    assert logged.access_type == AccessType.DOWNLOAD


def test_gateway_reason_turns_access_into_denial(world: World) -> None:
    grantee = world.cast.grantee.address
    result = world.ledger.log_access(
        world.cast.admin, world.cid, grantee, AccessType.VIEW, Reason.BAD_SIGNATURE
    )
    assert (result.allowed, result.reason) == (False, Reason.BAD_SIGNATURE)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_report_an_access(world: World, role: str) -> None:
    caller = _who(world, role)
    # anyone may report their own attempt; only admins report someone else's
    own = world.ledger.log_access(caller, world.cid, caller.address)
    assert own.allowed is (role in ("uploader", "grantee"))
    other = world.cast.grantee.address
    if role in ("owner", "admin", "grantee"):
        assert world.ledger.log_access(caller, world.cid, other).allowed
    else:
        with pytest.raises(AccessDenied, match="may not report"):
            world.ledger.log_access(caller, world.cid, other)


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


def test_transfer_ownership(world: World) -> None:
    with pytest.raises(AccessDenied):
        world.ledger.transfer_ownership(world.cast.admin, world.cast.admin.address)
    world.ledger.transfer_ownership(world.cast.owner, world.cast.admin.address)
    assert world.ledger.owner() == world.cast.admin.address
    with pytest.raises(AccessDenied):
        world.ledger.set_admin(world.cast.owner, world.cast.stranger.address)


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


def test_anchor_batch_roles_and_refusals(world: World) -> None:
    from scanseal.integrity.merkle import MerkleTree

    tree = MerkleTree()
    for i in range(5):
        tree.append(b"entry %d" % i)
    ledger, admin = world.ledger, world.cast.admin
    with pytest.raises(AccessDenied, match="not an admin"):
        ledger._tx(world.cast.uploader, "anchorBatch", b"", [tree.root(3), 3, []], "anchor")
    ledger._tx(admin, "anchorBatch", b"", [tree.root(3), 3, []], "anchor")
    with pytest.raises(InvalidInput, match="does not grow"):
        ledger._tx(admin, "anchorBatch", b"", [tree.root(3), 3, []], "anchor")
    forged = MerkleTree(tree.root(1) for _ in range(5))  # a different log of the same size
    with pytest.raises(IntegrityError, match="not an extension"):
        ledger._tx(
            admin, "anchorBatch", b"", [forged.root(), 5, forged.consistency_proof(3)], "anchor"
        )
    ledger._tx(admin, "anchorBatch", b"", [tree.root(), 5, tree.consistency_proof(3)], "anchor")
    anchor = ledger.get_anchor(admin.address, 1)
    assert (anchor.root, anchor.size) == (tree.root(), 5)
    with pytest.raises(NotFound, match="no anchor #2"):
        ledger.get_anchor(admin.address, 2)
