"""The manifest: the signed statement that binds an envelope to an image and its uploader.

A manifest names the envelope (its SHA-256, size and, once stored, its CID), carries the paper's
hash chain H1–H3 and the pixel digest of the plaintext image, the image metadata encrypted under
the envelope's file key (patient data never travels in the clear), the recipient list, and the
uploader's Ethereum signature over the canonical JSON of all of it. docs/FORMAT.md §5 is the
normative layout.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scanseal._json import MAX_DOCUMENT, Reader, b64encode, canonical_json, parse_object
from scanseal.crypto.envelope import derive_key
from scanseal.crypto.signing import verify_signature
from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity import HashChain

FORMAT_VERSION: Final = 1
_METADATA_NONCE: Final = bytes(12)
_METADATA_AAD: Final = b"scanseal/v1 metadata"
_WHAT: Final = "manifest"


@dataclass(frozen=True)
class Recipient:
    """Who an envelope is sealed for: the card's name and address, and the stanza's key id."""

    name: str
    address: str
    kind: str
    key_id: bytes

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "kind": self.kind,
            "key_id": self.key_id.hex(),
        }


@dataclass(frozen=True)
class Uploader:
    name: str
    address: str
    card_sha256: bytes


@dataclass(frozen=True)
class Manifest:
    """One sealed image. Build it unsigned, then :meth:`signed_by` returns the signed copy."""

    envelope_sha256: bytes
    envelope_size: int
    image_format: str
    image_size: int
    chain: HashChain
    pixel_digest: bytes
    metadata_ciphertext: bytes
    recipients: tuple[Recipient, ...]
    uploader: Uploader
    cid: str | None = None
    screen: dict[str, Any] | None = None
    signature: str = field(default="")

    def to_dict(self, *, signed: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scanseal_manifest": FORMAT_VERSION,
            "cid": self.cid,
            "envelope": {"sha256": self.envelope_sha256.hex(), "size": self.envelope_size},
            "image": {
                "format": self.image_format,
                "size": self.image_size,
                **self.chain.to_dict(),
                "pixel_digest": self.pixel_digest.hex(),
            },
            "metadata": b64encode(self.metadata_ciphertext),
            "recipients": [r.to_dict() for r in self.recipients],
            "uploader": {
                "name": self.uploader.name,
                "address": self.uploader.address,
                "card_sha256": self.uploader.card_sha256.hex(),
            },
            "screen": self.screen,
        }
        if signed:
            body["signature"] = self.signature
        return body

    def signed_bytes(self) -> bytes:
        """The exact bytes the uploader signs: canonical JSON of everything but the signature."""
        return canonical_json(self.to_dict(signed=False))

    def signed_by(self, sign: Callable[[bytes], str]) -> Manifest:
        """A copy carrying ``sign(signed_bytes())``; ``sign`` is an unlocked identity's sign."""
        return replace(self, signature=sign(self.signed_bytes()))

    def verify_signature(self) -> None:
        """IntegrityError unless the uploader named inside signed exactly these bytes."""
        if not self.signature:
            raise IntegrityError("manifest is not signed")
        _signed_by(self.signed_bytes(), self.signature, self.uploader.address)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            with path.open("rb") as handle:  # past the reader's bound is refused unread
                text = handle.read(MAX_DOCUMENT + 1)
        except OSError as error:
            raise InvalidInput(f"cannot read manifest {path}: {error.strerror}") from None
        return cls.from_json(text)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Strict parse: unknown, missing or mistyped fields are InvalidInput naming the field."""
        top = Reader(parse_object(text, _WHAT), _WHAT)
        top.only(
            "scanseal_manifest", "cid", "envelope", "image", "metadata", "recipients",
            "uploader", "screen", "signature",
        )  # fmt: skip
        if top.integer("scanseal_manifest") != FORMAT_VERSION:
            top.fail("scanseal_manifest", f"must be {FORMAT_VERSION}")
        envelope, image, uploader = top.child("envelope"), top.child("image"), top.child("uploader")
        envelope.only("sha256", "size")
        image.only("format", "size", "h1", "h2", "h3", "timestamp", "pixel_digest")
        uploader.only("name", "address", "card_sha256")
        chain_fields = {k: image.text(k) for k in ("h1", "h2", "h3")}
        return cls(
            envelope_sha256=_hex32(envelope, "sha256"),
            envelope_size=envelope.integer("size"),
            image_format=image.text("format"),
            image_size=image.integer("size"),
            chain=HashChain.from_dict({**chain_fields, "timestamp": image.integer("timestamp")}),
            pixel_digest=_hex32(image, "pixel_digest"),
            metadata_ciphertext=top.b64("metadata"),
            recipients=_recipients(top),
            uploader=Uploader(
                uploader.text("name"), uploader.text("address"), _hex32(uploader, "card_sha256")
            ),
            cid=_optional_text(top, "cid"),
            screen=_optional_object(top, "screen"),
            signature=top.text("signature"),
        )


@functools.lru_cache(maxsize=64)
def _signed_by(message: bytes, signature: str, address: str) -> None:
    """:func:`verify_signature`, remembered for the last few manifests that passed (a refusal
    raises and is never remembered): a fetch reads one manifest's verdict and opens it with the
    same bytes, and each would otherwise recover the same key again."""
    verify_signature(message, signature, address)


def _hex32(reader: Reader, key: str) -> bytes:
    value = reader.text(key)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        reader.fail(key, "is not hexadecimal")
    if len(raw) != 32 or value != raw.hex():
        reader.fail(key, "must be 64 lowercase hex digits")
    return raw


def _optional_text(reader: Reader, key: str) -> str | None:
    return None if _raw(reader, key) is None else reader.text(key)


def _optional_object(reader: Reader, key: str) -> dict[str, Any] | None:
    value = _raw(reader, key)
    if value is not None and not isinstance(value, dict):
        reader.fail(key, "must be an object or null")
    return value


def _raw(reader: Reader, key: str) -> Any:
    return reader.value(key)


def _recipients(top: Reader) -> tuple[Recipient, ...]:
    raw = _raw(top, "recipients")
    if not isinstance(raw, list) or not raw:
        top.fail("recipients", "must be a non-empty list")
    result = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            top.fail(f"recipients[{index}]", "must be an object")
        entry = Reader(item, _WHAT, f"recipients[{index}].")
        entry.only("name", "address", "kind", "key_id")
        key_id = entry.text("key_id")
        if len(key_id) != 32 or any(c not in "0123456789abcdef" for c in key_id):
            entry.fail("key_id", "must be 32 lowercase hex digits")
        result.append(
            Recipient(
                entry.text("name"), entry.text("address"), entry.text("kind"), bytes.fromhex(key_id)
            )
        )
    return tuple(result)


def encrypt_metadata(file_key: bytes, salt: bytes, canonical_metadata: bytes) -> bytes:
    """Encrypt the canonical metadata under the envelope's metadata subkey.

    The subkey is unique to one envelope (HKDF over a random salt) and encrypts exactly one
    message, which is why a fixed nonce is safe here.
    """
    aead = AESGCM(derive_key(file_key, salt, "metadata"))
    return aead.encrypt(_METADATA_NONCE, canonical_metadata, _METADATA_AAD)


def decrypt_metadata(file_key: bytes, salt: bytes, ciphertext: bytes) -> bytes:
    aead = AESGCM(derive_key(file_key, salt, "metadata"))
    try:
        return aead.decrypt(_METADATA_NONCE, ciphertext, _METADATA_AAD)
    except InvalidTag:
        raise IntegrityError("manifest metadata failed authentication") from None
