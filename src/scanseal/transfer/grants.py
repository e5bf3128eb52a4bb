"""Grants: the owner of a record re-wraps its file key for one more recipient.

A grant is a small signed object. It carries a new envelope header (docs/FORMAT.md §4.4) with a
single stanza, the grantee's, over the salt and nonce prefix of the original header, so it opens
the unchanged payload. The original envelope, which the manifest binds byte for byte, is never
rewritten: the grantee splices the grant's header in front of the original payload while
opening. The owner signs the grant with its Ethereum key (EIP-191 over the canonical JSON), so a
gateway or a network that alters a grant is caught before any key is unwrapped.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from typing import Final

from eth_utils.address import is_address, to_checksum_address

from scanseal._json import Reader, b64encode, canonical_json, parse_object
from scanseal.crypto import envelope
from scanseal.crypto.envelope import Header
from scanseal.crypto.identity import Identity, IdentityCard
from scanseal.crypto.signing import verify_signature
from scanseal.crypto.stanzas import DEFAULT_KIND
from scanseal.errors import IntegrityError

GRANT_VERSION: Final = 1
MAX_GRANT: Final = 64 * 1024
"""A grant object's largest size: its header holds one stanza (about 1.6 KiB in base64)."""
_WHAT: Final = "grant"


@dataclass(frozen=True)
class Grant:
    """The owner's statement "``grantee`` may open ``record``", with the key to do it."""

    record: str
    owner: str
    grantee: str
    grantee_card_sha256: bytes
    header: bytes
    issued_at: int
    signature: str = ""

    def body(self) -> dict[str, object]:
        """Everything but the signature, as JSON values."""
        return {
            "scanseal_grant": GRANT_VERSION,
            "record": self.record,
            "owner": self.owner,
            "grantee": self.grantee,
            "grantee_card_sha256": self.grantee_card_sha256.hex(),
            "header": b64encode(self.header),
            "issued_at": self.issued_at,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.body())

    def to_bytes(self) -> bytes:
        """Canonical JSON, signature included: the exact bytes stored and sent."""
        return canonical_json({**self.body(), "signature": self.signature})

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> Grant:
        """Strict parse; the signature is checked by :meth:`verify`, not here."""
        top = Reader(parse_object(raw, _WHAT, max_size=MAX_GRANT), _WHAT)
        top.only(
            "scanseal_grant", "record", "owner", "grantee", "grantee_card_sha256", "header",
            "issued_at", "signature",
        )  # fmt: skip
        if top.integer("scanseal_grant") != GRANT_VERSION:
            top.fail("scanseal_grant", f"must be {GRANT_VERSION}")
        for key in ("owner", "grantee"):
            if not is_address(top.text(key)):
                top.fail(key, "must be an Ethereum address")
        card_hash = top.text("grantee_card_sha256")
        if len(card_hash) != 64 or any(c not in "0123456789abcdef" for c in card_hash):
            top.fail("grantee_card_sha256", "must be 64 lowercase hex digits")
        return cls(
            record=top.text("record"),
            owner=top.text("owner"),
            grantee=top.text("grantee"),
            grantee_card_sha256=bytes.fromhex(card_hash),
            header=top.b64("header"),
            issued_at=top.integer("issued_at"),
            signature=top.text("signature"),
        )

    def verify(self, owner: str) -> Header:
        """Check the signature is by ``owner``; return the parsed header it carries."""
        if to_checksum_address(self.owner) != to_checksum_address(owner):
            raise IntegrityError(f"grant is signed for owner {self.owner}, not {owner}")
        verify_signature(self.signed_bytes(), self.signature, owner)
        return parse_header(self.header)


def parse_header(raw: bytes) -> Header:
    """A header that must be exactly ``raw``: no trailing bytes."""
    header = envelope.read_header(io.BytesIO(raw))
    if header.encoded != raw:
        raise IntegrityError("grant header has trailing bytes")
    return header


def issue_grant(record: str, original: Header, owner: Identity, grantee: IdentityCard) -> Grant:
    """A grant of ``record`` (whose envelope header is ``original``) for ``grantee``: the owner
    unwraps the file key with its own keys and re-wraps it, signed and dated now."""
    file_key = envelope.unlock(original, owner.unwrap_keys)
    return make_grant(record, original, file_key, owner, grantee, int(time.time()))


def make_grant(
    record: str,
    original: Header,
    file_key: bytes,
    owner: Identity,
    grantee: IdentityCard,
    issued_at: int,
    *,
    kind: str = DEFAULT_KIND,
) -> Grant:
    """Re-wrap ``file_key`` for ``grantee`` over ``original``'s payload parameters and sign."""
    header = envelope.rewrap(original, file_key, [grantee.recipient(kind).wrap(file_key)])
    unsigned = Grant(
        record=record,
        owner=owner.address,
        grantee=grantee.address,
        grantee_card_sha256=grantee.card_hash,
        header=header.encoded,
        issued_at=issued_at,
    )
    return replace(unsigned, signature=owner.sign(unsigned.signed_bytes()))


def check_same_payload(original: Header, granted: Header) -> None:
    """A grant header must describe the same payload: segment size, salt and nonce prefix."""
    same = (
        original.segment_size == granted.segment_size
        and original.salt == granted.salt
        and original.nonce_prefix == granted.nonce_prefix
    )
    if not same:
        raise IntegrityError("grant header does not belong to this envelope")
