"""Pieces of a gateway request that need no gateway: a record's binary CID, who a request
claims to be, whether it is within its time window, the reason a refusal is logged with, whole
stored objects, receipts as JSON."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Mapping
from typing import Any

from scanseal.errors import IntegrityError, InvalidInput, ReplayDetected, ScanSealError
from scanseal.ledger import Reason, Receipt
from scanseal.protocol.signed import Request, parse_request
from scanseal.storage import CID, BlobStore

ZERO_ADDRESS = "0x" + "00" * 20
_READ_PIECE = 1 << 20


def tag(error: ScanSealError, reason: int) -> ScanSealError:
    """Mark ``error`` with the ledger reason its refusal is logged with."""
    error.ledger_reason = reason  # type: ignore[attr-defined]
    return error


def check_window(request: Request, max_lifetime: int, clock_skew: int) -> None:
    """Refuse (as a replay) a request that lives longer than ``max_lifetime`` seconds, is
    issued more than ``clock_skew`` seconds in the future, or has expired."""
    now = int(time.time())
    if request.expires_at - request.issued_at > max_lifetime:
        problem = f"request lives longer than {max_lifetime} s"
    elif request.issued_at > now + clock_skew:
        problem = "request is issued in the future"
    elif now > request.expires_at:
        problem = "request has expired"
    else:
        return
    raise tag(ReplayDetected(problem), Reason.REPLAY)


def refusal_reason() -> Reason:
    """The ledger reason of the refusal being handled: its tag (a bad signature, a replay),
    else ``not-permitted`` (an authenticated requester that may not do this)."""
    return Reason(getattr(sys.exc_info()[1], "ledger_reason", Reason.NOT_PERMITTED))


@functools.lru_cache(maxsize=4096)
def record_bytes(record: str) -> bytes:
    """The binary CID of a record (cached: parsing a CID costs more than the rest of a lookup)."""
    try:
        return CID.parse(record).to_bytes()
    except ScanSealError:
        raise InvalidInput(f"{record!r} is not a record CID") from None


def claimed_requester(headers: Mapping[str, str | None]) -> str:
    """Who a (possibly invalid) request claims to be, for the ledger's log of the attempt."""
    try:
        return parse_request(headers.get("request")).requester
    except Exception:  # on the way to logging a refusal: nothing may stop it
        return ZERO_ADDRESS


def read_all(store: BlobStore, cid: str) -> bytes:
    """A whole stored object, read in large pieces (``read()`` without a size would go through
    RawIOBase.readall, 8 KiB at a time)."""
    parts = []
    with store.get(cid) as stream:
        while part := stream.read(_READ_PIECE):
            parts.append(part)
    return b"".join(parts)


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A ledger receipt as the gateway answers it."""
    return {
        "mode": receipt.mode,
        "record_id": "0x" + receipt.record_id.hex(),
        "tx_hash": receipt.tx_hash,
        "log_index": receipt.log_index,
    }


def upload_fields(meta: Mapping[str, Any]) -> tuple[bytes, bool]:
    """An upload body's manifest bytes, and whether its recipients' grant is deferred to its
    study record (``"grants": "study"``, docs/PROTOCOL.md; covered by the request signature
    like the rest of the body). Any other field, or another value, is refused."""
    if sorted(meta) not in (["manifest"], ["grants", "manifest"]):
        raise IntegrityError("bundle fields must be manifest and, optionally, grants")
    manifest, grants = meta["manifest"], meta.get("grants")
    if not isinstance(manifest, str):
        raise IntegrityError("bundle field 'manifest' is missing or not a string")
    if grants not in (None, "study"):
        raise InvalidInput('the grants field, when present, must be "study"')
    return manifest.encode("utf-8"), grants == "study"
