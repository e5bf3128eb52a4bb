"""Checking an owner's signed grant object before the gateway holds it (one record's grant
and each instance of a study grant go through it)."""

from __future__ import annotations

import io

from eth_utils.address import is_address

from scanseal.crypto import envelope
from scanseal.errors import InvalidInput
from scanseal.service.state import StoredRecord
from scanseal.storage import BlobStore
from scanseal.transfer import Grant, check_same_payload


def accept_grant(store: BlobStore, stored: StoredRecord, body: bytes) -> tuple[Grant, str]:
    """Check an owner's signed grant of ``stored`` (its record, its owner's signature, the same
    payload key as the envelope) and store it; the grant and its CID."""
    issued = Grant.from_bytes(body)
    if issued.record != stored.manifest_cid or not is_address(issued.grantee):
        raise InvalidInput("grant names another record or a malformed grantee")
    granted_header = issued.verify(stored.owner)
    with store.get(stored.envelope_cid) as stream:
        check_same_payload(envelope.read_header(stream), granted_header)
    return issued, store.put(io.BytesIO(issued.to_bytes()))
