"""Turn the contract's custom errors into ScanSeal's exception classes with a readable reason."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from scanseal.errors import (
    AccessDenied,
    IntegrityError,
    InvalidInput,
    LedgerUnavailable,
    NotFound,
    ScanSealError,
)
from scanseal.ledger._artifact import load_artifact

_INVALID_ARGUMENTS = {
    1: "the zero address is not an account",
    2: "an identity-card hash cannot be zero",
    3: "a CID must be 2 to 128 bytes",
    4: "image hash and H3 must be nonzero",
    5: "malformed consistency proof",
    6: "reason codes 1 to 15 are the contract's own; reporters use 0 or 16 and up",
    7: "the owner is always an admin",
    8: "address 0x…01 marks a record handed to nobody; it cannot control one",
    9: "the uploader's signature over the record is malformed",
    10: "an anchor may claim at most 2**40 entries",
    11: "a batch of grants names 1 to 256 records, one grantee each",
    12: "an access through another record names a record other than itself",
}


def _checksum(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()[:16] + "…"
    return str(value)


_MESSAGES: dict[str, tuple[type[ScanSealError], Callable[[list[Any]], str]]] = {
    "NotOwner": (AccessDenied, lambda a: f"{a[0]} is not the contract owner"),
    "NotPendingOwner": (AccessDenied, lambda a: f"{a[0]} is not the proposed owner"),
    "NotAdmin": (AccessDenied, lambda a: f"{a[0]} is not an admin"),
    "NotUploader": (AccessDenied, lambda a: f"{a[0]} is not an authorized uploader"),
    "NotRecordController": (
        AccessDenied,
        lambda a: f"{a[1]} is neither the controller of record {_short(a[0])} nor an admin",
    ),
    "NotAccessReporter": (
        AccessDenied,
        lambda a: f"{a[0]} may not report access attempts for {a[1]}",
    ),
    "UnknownIdentity": (NotFound, lambda a: f"{a[0]} has no registered identity"),
    "UnknownRecord": (NotFound, lambda a: f"record {_short(a[0])} is not on the ledger"),
    "UnknownAnchor": (NotFound, lambda a: f"operator {a[0]} has no anchor #{a[1]}"),
    "UnknownAccessLog": (
        NotFound,
        lambda a: f"record {_short(a[0])} has no access log entry #{a[1]}",
    ),
    "CardInUse": (
        InvalidInput,
        lambda a: f"identity-card hash {_short(a[0])} is already registered to {a[1]}",
    ),
    "RecordReserved": (
        InvalidInput,
        lambda a: f"record {_short(a[0])} was granted on by an admin (it lives in a batch)",
    ),
    "RecordExists": (InvalidInput, lambda a: f"record {_short(a[0])} is already stored"),
    "AlreadyGranted": (
        InvalidInput,
        lambda a: f"{a[1]} already has access to record {_short(a[0])}",
    ),
    "NotGranted": (InvalidInput, lambda a: f"{a[1]} has no grant on record {_short(a[0])}"),
    "InvalidArgument": (
        InvalidInput,
        lambda a: _INVALID_ARGUMENTS.get(int(a[0]), f"invalid argument {a[0]}"),
    ),
    "AnchorNotGrowing": (
        InvalidInput,
        lambda a: f"anchor of size {a[1]} does not grow the log beyond size {a[0]}",
    ),
    "InconsistentAnchor": (
        IntegrityError,
        lambda a: f"root of size {a[1]} is not an extension of the anchored size {a[0]}",
    ),
}


@cache
def _selectors() -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {}
    for item in load_artifact().abi:
        if item.get("type") != "error":
            continue
        types = [str(arg["type"]) for arg in item["inputs"]]
        signature = f"{item['name']}({','.join(types)})"
        table[keccak(text=signature)[:4]] = (str(item["name"]), types)
    return table


def error_from_revert(data: bytes | None, action: str) -> ScanSealError:
    """The exception for revert `data` (a custom error, a reason string, or nothing). A
    revert the contract does not explain is LedgerUnavailable (503, exit 5): the chain did not
    take the transaction, and nothing the caller sent was wrong in a way this build can name."""
    if data and data[:4] in _selectors():
        name, types = _selectors()[data[:4]]
        args = [_checksum(v) for v in abi_decode(types, data[4:])]
        kind, message = _MESSAGES.get(name, (ScanSealError, lambda _a: name))
        error: ScanSealError = kind(f"{action}: {message(args)}")
        return error
    if data and data[:4] == keccak(text="Error(string)")[:4]:
        (reason,) = abi_decode(["string"], data[4:])
        return LedgerUnavailable(f"{action}: reverted: {reason}")
    # no reason the contract gives: out of gas, or a node that cannot replay the call
    return LedgerUnavailable(
        f"{action}: the transaction reverted without a reason (out of gas, or a node that "
        "cannot replay it); see the transaction on the chain"
    )
