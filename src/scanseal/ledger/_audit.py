"""Audit entries for a record, assembled from the contract's events and from batched log
entries (both kinds read the same to an auditor), and the event lookup that finds a record's
``ImageStored`` transaction."""

from __future__ import annotations

from typing import Any, Literal

from eth_utils.address import to_checksum_address

from scanseal.ledger import _abi
from scanseal.ledger._batch import Entry
from scanseal.ledger._chain import Chain
from scanseal.ledger.models import AccessType, AuditEntry, BatchProof, Reason

_AUDITED_EVENTS = ("ImageStored", "AccessGranted", "AccessRevoked", "AccessAttempt")


def chain_trail(chain: Chain, address: str, first_block: int, rid: bytes) -> list[AuditEntry]:
    """The record's events on chain: filtered by its recordId topic, from the contract's
    deployment block `first_block` (none can be older)."""
    topics = ["0x" + _abi.event_topic(name).hex() for name in _AUDITED_EVENTS]
    logs = chain.w3.eth.get_logs(
        {
            "address": to_checksum_address(address),
            "fromBlock": first_block,
            "toBlock": "latest",
            "topics": [topics, "0x" + rid.hex()],
        }
    )
    trail: list[AuditEntry] = []
    stamps: dict[int, int] = {}
    for log in logs:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is None:
            continue
        block = int(log["blockNumber"])
        if block not in stamps:
            stamps[block] = int(chain.w3.eth.get_block(block)["timestamp"])
        tx_hash = "0x" + bytes(log["transactionHash"]).hex()
        trail.append(audit_from_event(*decoded, stamps[block], tx_hash))
    return trail


def stored_tx(chain: Chain, address: str, first_block: int, rid: bytes) -> str | None:
    """The hash of the transaction whose ``ImageStored`` event committed the record, if any."""
    topics = ["0x" + _abi.event_topic("ImageStored").hex(), "0x" + rid.hex()]
    head = chain.head()[0]
    logs = chain.w3.eth.get_logs(
        {
            "address": to_checksum_address(address),
            "fromBlock": first_block,
            "toBlock": head,
            "topics": topics,
        }
    )
    return "0x" + bytes(logs[0]["transactionHash"]).hex() if logs else None


def admin_accounts(chain: Chain, address: str, first_block: int) -> list[str]:
    """The accounts whose latest ``AdminChanged`` event made them a department admin, in the
    order they first became one (the owner is an admin without any event)."""
    logs = chain.w3.eth.get_logs(
        {
            "address": to_checksum_address(address),
            "fromBlock": first_block,
            "toBlock": "latest",
            "topics": ["0x" + _abi.event_topic("AdminChanged").hex()],
        }
    )
    enabled: dict[str, bool] = {}
    for log in logs:
        decoded = _abi.decode_log(list(log["topics"]), bytes(log["data"]))
        if decoded is not None:
            enabled[str(decoded[1]["account"])] = bool(decoded[1]["enabled"])
    return [account for account, on in enabled.items() if on]


def audit_from_event(name: str, f: dict[str, Any], stamp: int, tx_hash: str) -> AuditEntry:
    """One decoded contract event as an audit entry."""
    if name == "ImageStored":
        return AuditEntry(stamp, "stored", f["uploader"], tx_hash=tx_hash)
    if name in ("AccessGranted", "AccessRevoked"):
        action: Literal["granted", "revoked"] = "granted" if name == "AccessGranted" else "revoked"
        return AuditEntry(stamp, action, f["by"], subject=f["grantee"], tx_hash=tx_hash)
    return AuditEntry(
        stamp,
        "access",
        f["reporter"],
        subject=f["accessor"],
        access_type=_access_label(f["accessType"]),
        allowed=bool(f["allowed"]),
        reason=Reason.label(f["reason"]),
        tx_hash=tx_hash,
    )


def audit_from_entry(entry: Entry, proof: BatchProof | None) -> AuditEntry:
    """One batched log entry as an audit entry, with its inclusion proof once anchored."""
    if entry.kind == "record":
        return AuditEntry(entry.timestamp, "stored", entry.actor, proof=proof, source="batch")
    return AuditEntry(
        entry.timestamp,
        "access",
        entry.reporter,
        subject=entry.actor,
        access_type=_access_label(entry.access_type),
        allowed=entry.allowed,
        reason=Reason.label(entry.reason),
        proof=proof,
        source="batch",
    )


def _access_label(code: int) -> str:
    try:
        return AccessType(code).name.lower()
    except ValueError:
        return f"type-{code}"
