"""The audit trail says what happened, in the order it happened: a refused grant is no read,
batched entries fall between the chain's events where they were written, times carry a zone."""

from __future__ import annotations

import json
import os

from scanseal.ledger import AccessType, Ledger, Reason, RecordInput, utc_iso

from .conftest import Cast, World
from .test_batched import _batched


def _item() -> RecordInput:
    return RecordInput(os.urandom(36), os.urandom(32), os.urandom(32), os.urandom(32))


def test_batched_trail_is_in_chain_order(make_config, cast: Cast) -> None:
    with _batched(make_config, cast, batch_size=100) as ledger:
        item = _item()
        ledger.store_record(cast.uploader, item.cid, item.image_hash, item.h3, item.pixel_digest)
        denied = ledger.log_access(cast.admin, item.cid, cast.grantee.address, AccessType.DOWNLOAD)
        ledger.grant(cast.admin, item.cid, cast.grantee.address)
        allowed = ledger.log_access(cast.admin, item.cid, cast.grantee.address, AccessType.DOWNLOAD)
        ledger.revoke(cast.admin, item.cid, cast.grantee.address)
        after = ledger.log_access(cast.admin, item.cid, cast.grantee.address, AccessType.DOWNLOAD)
        assert (denied.allowed, allowed.allowed, after.allowed) == (False, True, False)
        ledger.anchor()
        trail = ledger.audit_trail(item.cid)
    assert [(e.action, e.allowed, e.source) for e in trail] == [
        ("stored", None, "batch"),
        ("access", False, "batch"),
        ("granted", None, "chain"),
        ("access", True, "batch"),
        ("revoked", None, "chain"),
        ("access", False, "batch"),
    ]


def _log_restarted_without_positions(ledger: Ledger) -> None:
    """Strip the positions from the operator's log, as an older version wrote it."""
    path = ledger._writer.log.path  # type: ignore[attr-defined]
    lines = path.read_text().splitlines()
    bare = [json.dumps({"entry": json.loads(line)["entry"]}) + "\n" for line in lines]
    path.write_text("".join(bare))


def test_a_log_without_positions_still_lists_stored_first(make_config, cast: Cast) -> None:
    item = _item()
    with _batched(make_config, cast, batch_size=100) as ledger:
        ledger.store_record(cast.uploader, item.cid, item.image_hash, item.h3, item.pixel_digest)
        ledger.grant(cast.admin, item.cid, cast.grantee.address)
        ledger.anchor()
        _log_restarted_without_positions(ledger)
    with Ledger.open(make_config(mode="batched"), operator=cast.admin) as ledger:
        trail = ledger.audit_trail(item.cid)
    assert trail[0].action == "stored"
    assert trail[0].position is None


def test_refused_grant_and_revoke_attempts_read_as_such(world: World) -> None:
    cast = world.cast
    stranger = cast.stranger.address
    for kind in (AccessType.GRANT, AccessType.REVOKE, AccessType.AUDIT):
        world.ledger.log_access(cast.admin, world.cid, stranger, kind, Reason.NOT_PERMITTED)
    world.ledger.log_access(
        cast.admin, world.cid, stranger, AccessType.DOWNLOAD, Reason.BAD_SIGNATURE
    )
    attempts = [e for e in world.ledger.audit_trail(world.cid) if e.subject == stranger]
    assert [(e.action, e.access_type, e.outcome, e.reason) for e in attempts] == [
        ("granted", "grant", "denied", "not-permitted"),
        ("revoked", "revoke", "denied", "not-permitted"),
        ("access", "audit", "denied", "not-permitted"),
        ("access", "download", "unauthenticated", "bad-signature"),
    ]
    assert [e.subject_verified for e in attempts] == [True, True, True, False]
    assert "download" not in {e.access_type for e in attempts[:3]}


def test_times_are_iso_utc_with_the_zone(world: World) -> None:
    assert utc_iso(1_796_292_000) == "2026-12-03T10:00:00Z"
    line = world.ledger.audit_trail(world.cid)[0].to_dict()
    assert line["time"] == utc_iso(line["timestamp"])
    assert line["time"].endswith("Z")
