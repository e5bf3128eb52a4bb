"""Audit entries for a record, assembled from the contract's events and from batched log
entries (both kinds read the same to an auditor), and the event lookup that finds a record's
``ImageStored`` transaction.

Each entry says what happened: a stored record, a grant, a revocation, an access attempt, or an
administrative change of the record (its controller). A refused attempt to grant, revoke or read
the trail is reported through the access log (the contract's one event for a refusal) with
access type GRANT, REVOKE or AUDIT, and reads as the action it attempted, denied."""

from __future__ import annotations

from typing import Any, Literal

from scanseal.ledger import _abi
from scanseal.ledger._batch import Entry
from scanseal.ledger._chain import Chain
from scanseal.ledger.models import AccessType, AuditEntry, BatchProof, Reason

_AUDITED_EVENTS = (
    "ImageStored",
    "AccessGranted",
    "AccessRevoked",
    "AccessAttempt",
    "ControllerChanged",
)
_ATTEMPTED: dict[int, Literal["granted", "revoked"]] = {
    AccessType.GRANT: "granted",
    AccessType.REVOKE: "revoked",
}
_CHAIN, _BATCH = 0, 1
"""Second element of a position: a batched entry written at head N follows block N's events."""


def chain_trail(chain: Chain, address: str, first_block: int, rid: bytes) -> list[AuditEntry]:
    """The record's events on chain: filtered by its recordId topic, from the contract's
    deployment block `first_block` (none can be older)."""
    return [entry for _rid, entry in chain_events(chain, address, first_block, rid)]


def chain_events(
    chain: Chain, address: str, from_block: int, rid: bytes | None = None
) -> list[tuple[bytes, AuditEntry]]:
    """Every record event from block `from_block` on, each with its recordId: of one record
    (`rid`) or of all of them (what an index of the whole ledger scans for new blocks)."""
    topics: list[Any] = [["0x" + _abi.event_topic(name).hex() for name in _AUDITED_EVENTS]]
    if rid is not None:
        topics.append("0x" + rid.hex())
    logs = chain.logs(address, topics, from_block)
    events: list[tuple[bytes, AuditEntry]] = []
    stamps: dict[int, int] = {}
    for log in logs:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is None:
            continue
        block = int(log["blockNumber"])
        if block not in stamps:
            stamps[block] = _timestamp(chain, block)
        tx_hash = "0x" + bytes(log["transactionHash"]).hex()
        position = (block, _CHAIN, int(log["logIndex"]))
        entry = audit_from_event(*decoded, stamps[block], tx_hash, position)
        events.append((bytes(log["topics"][1]), entry))
    return events


_ADMIN_EVENTS = (
    "OwnershipTransferStarted",
    "OwnershipTransferred",
    "AdminChanged",
    "UploaderChanged",
    "IdentityRegistered",
)


def admin_trail(chain: Chain, address: str, first_block: int) -> list[AuditEntry]:
    """The registry's administrative changes, in chain order: ownership, admins, uploaders
    and identities (each an ``admin`` entry whose ``detail`` says what changed)."""
    topics = ["0x" + _abi.event_topic(name).hex() for name in _ADMIN_EVENTS]
    logs = chain.logs(address, [topics], first_block)
    trail: list[AuditEntry] = []
    stamps: dict[int, int] = {}
    for log in logs:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is None:
            continue
        block = int(log["blockNumber"])
        if block not in stamps:
            stamps[block] = _timestamp(chain, block)
        actor, subject, detail = _admin_change(*decoded)
        trail.append(
            AuditEntry(
                stamps[block], "admin", actor, subject=subject, detail=detail,
                tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                position=(block, _CHAIN, int(log["logIndex"])),
            )
        )  # fmt: skip
    return trail


def _admin_change(name: str, f: dict[str, Any]) -> tuple[str, str, str]:
    """(who changed it, whom it concerns, what changed) for one administrative event."""
    if name == "OwnershipTransferStarted":
        return f["owner"], f["pendingOwner"], "ownership proposed"
    if name == "OwnershipTransferred":
        return f["previousOwner"], f["newOwner"], "ownership transferred"
    if name == "AdminChanged":
        return f["by"], f["account"], "admin enabled" if f["enabled"] else "admin removed"
    if name == "UploaderChanged":
        return (
            f["by"],
            f["account"],
            ("uploader authorized" if f["authorized"] else "uploader deauthorized"),
        )
    card = "0x" + bytes(f["cardHash"]).hex()
    replaced = any(bytes(f["previousCardHash"]))
    return f["by"], f["account"], f"identity {'changed' if replaced else 'registered'}: {card}"


def _timestamp(chain: Chain, block: int) -> int:
    """The timestamp of block ``block``."""
    return int(chain.read(lambda: chain.w3.eth.get_block(block))["timestamp"])


def stored_tx(chain: Chain, address: str, first_block: int, rid: bytes) -> str | None:
    """The hash of the transaction whose ``ImageStored`` event committed the record, if any."""
    topics = ["0x" + _abi.event_topic("ImageStored").hex(), "0x" + rid.hex()]
    head = chain.head()[0]
    logs = chain.logs(address, topics, first_block, head)
    return "0x" + bytes(logs[0]["transactionHash"]).hex() if logs else None


def admin_accounts(chain: Chain, address: str, first_block: int) -> list[str]:
    """The accounts whose latest ``AdminChanged`` event made them a department admin, in the
    order they first became one (the owner is an admin without any event)."""
    logs = chain.logs(address, ["0x" + _abi.event_topic("AdminChanged").hex()], first_block)
    enabled: dict[str, bool] = {}
    for log in logs:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is not None:
            enabled[str(decoded[1]["account"])] = bool(decoded[1]["enabled"])
    return [account for account, on in enabled.items() if on]


def audit_from_event(
    name: str,
    f: dict[str, Any],
    stamp: int,
    tx_hash: str,
    position: tuple[int, int, int] | None = None,
) -> AuditEntry:
    """One decoded contract event as an audit entry."""
    if name == "ImageStored":
        return AuditEntry(stamp, "stored", f["uploader"], tx_hash=tx_hash, position=position)
    if name in ("AccessGranted", "AccessRevoked"):
        action: Literal["granted", "revoked"] = "granted" if name == "AccessGranted" else "revoked"
        return AuditEntry(
            stamp, action, f["by"], subject=f["grantee"], tx_hash=tx_hash, position=position
        )
    if name == "ControllerChanged":
        detail = f"controller {f['previous']} -> {f['controller']}"
        return AuditEntry(
            stamp, "admin", f["by"], subject=f["controller"], detail=detail, tx_hash=tx_hash,
            position=position,
        )  # fmt: skip
    return AuditEntry(
        stamp,
        _ATTEMPTED.get(int(f["accessType"]), "access"),
        f["reporter"],
        subject=f["accessor"],
        access_type=_access_label(f["accessType"]),
        allowed=bool(f["allowed"]),
        reason=Reason.label(f["reason"]),
        tx_hash=tx_hash,
        position=position,
    )


def audit_from_entry(
    entry: Entry, proof: BatchProof | None, index: int, block: int | None
) -> AuditEntry:
    """One batched log entry (at ``index``, written when the chain's head was ``block``) as an
    audit entry, with its inclusion proof once anchored."""
    position = None if block is None else (block, _BATCH, index)
    if entry.kind == "record":
        return AuditEntry(
            entry.timestamp, "stored", entry.actor, proof=proof, source="batch", position=position
        )
    return AuditEntry(
        entry.timestamp,
        _ATTEMPTED.get(entry.access_type, "access"),
        entry.reporter,
        subject=entry.actor,
        access_type=_access_label(entry.access_type),
        allowed=entry.allowed,
        reason=Reason.label(entry.reason),
        proof=proof,
        source="batch",
        position=position,
    )


def in_chain_order(trail: list[AuditEntry]) -> list[AuditEntry]:
    """The entries in the order they happened: by chain position when every entry has one (a
    batched entry follows the block its writer had seen, so a record's entry precedes the
    grants that follow it), else by time, a batched entry first among equal times."""
    if all(entry.position is not None for entry in trail):
        return sorted(trail, key=lambda entry: entry.position or (0, 0, 0))
    return sorted(trail, key=lambda entry: (entry.timestamp, entry.source != "batch"))


def _access_label(code: int) -> str:
    try:
        return AccessType(code).name.lower()
    except ValueError:
        return f"type-{code}"
