"""Recipient stanzas: how one envelope's file key is wrapped for each named recipient.

Three kinds, one per row of docs/FORMAT.md §3:

* ``rsa-oaep-2048``: RSA-2048 with OAEP and SHA-256, the key exchange of the paper ScanSeal
  follows. Kept for interoperability; not post-quantum.
* ``x25519``: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
* ``mlkem768-x25519``: the same HPKE suite over the hybrid ML-KEM-768 + X25519 KEM, so a
  recording of today's traffic stays sealed against a future quantum computer. The default.

Each stanza names the recipient key it is for by a 16-byte key id, so a wrong key is a crisp
"not a recipient" error instead of a trial decryption of every stanza. All primitives are pyca
cryptography's; this module only fixes the encodings and the domain-separation labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, padding, rsa, x25519

from scanseal.errors import IntegrityError, InvalidInput

RSA_OAEP_2048: Final = "rsa-oaep-2048"
X25519: Final = "x25519"
MLKEM768_X25519: Final = "mlkem768-x25519"

#: Every kind this version understands, the preferred (post-quantum) one first.
RECIPIENT_KINDS: Final[tuple[str, ...]] = (MLKEM768_X25519, X25519, RSA_OAEP_2048)
DEFAULT_KIND: Final = MLKEM768_X25519

FILE_KEY_SIZE: Final = 32
KEY_ID_SIZE: Final = 16

_LABEL_PREFIX: Final = b"scanseal/v1 "
_MLKEM_PUBLIC_SIZE: Final = 1184
_MLKEM_SEED_SIZE: Final = 64
_X25519_SIZE: Final = 32
_RSA_BITS: Final = 2048
_RSA_EXPONENT: Final = 65537


def _label(kind: str) -> bytes:
    return _LABEL_PREFIX + kind.encode("ascii")


def _hpke_suite(kind: str) -> hpke.Suite:
    kem = hpke.KEM.MLKEM768_X25519 if kind == MLKEM768_X25519 else hpke.KEM.X25519
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def _rsa_oaep(kind: str) -> padding.OAEP:
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=_label(kind)
    )


def _require_kind(kind: str) -> None:
    if kind not in RECIPIENT_KINDS:
        raise InvalidInput(
            f"unknown recipient key kind {kind!r}; expected one of {RECIPIENT_KINDS}"
        )


def compute_key_id(kind: str, public_bytes: bytes) -> bytes:
    """The 16-byte id a stanza uses to name its recipient key (docs/FORMAT.md §3.1)."""
    digest = hashlib.sha256(b"scanseal/v1 key-id\x00" + kind.encode("ascii") + b"\x00")
    digest.update(public_bytes)
    return digest.digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class Stanza:
    """One recipient's wrapped copy of the file key, as it appears in an envelope header."""

    kind: str
    key_id: bytes
    body: bytes


@dataclass(frozen=True)
class RecipientKey:
    """The public half of a transport key: what a sender needs to address a recipient.

    ``public_bytes`` is the canonical encoding (docs/FORMAT.md §3.1): DER SubjectPublicKeyInfo
    for RSA, the 32 raw bytes for X25519, and the 1184-byte ML-KEM-768 encapsulation key
    followed by the 32-byte X25519 key for the hybrid.
    """

    kind: str
    public_bytes: bytes

    def __post_init__(self) -> None:
        _require_kind(self.kind)
        self._load()  # a recipient key that cannot be used is rejected when it is made

    @property
    def key_id(self) -> bytes:
        return compute_key_id(self.kind, self.public_bytes)

    def wrap(self, file_key: bytes) -> Stanza:
        """Encrypt ``file_key`` to this recipient (randomized: two wraps differ)."""
        if len(file_key) != FILE_KEY_SIZE:
            raise InvalidInput(f"file key must be {FILE_KEY_SIZE} bytes")
        public = self._load()
        if isinstance(public, rsa.RSAPublicKey):
            body = public.encrypt(file_key, _rsa_oaep(self.kind))
        else:
            body = _hpke_suite(self.kind).encrypt(file_key, public, info=_label(self.kind))
        return Stanza(self.kind, self.key_id, body)

    def _load(self) -> rsa.RSAPublicKey | x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
        try:
            if self.kind == RSA_OAEP_2048:
                return _load_rsa_public(self.public_bytes)
            if self.kind == X25519:
                return x25519.X25519PublicKey.from_public_bytes(self.public_bytes)
            return _load_hybrid_public(self.public_bytes)
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"malformed {self.kind} public key: {error}") from None


def _load_rsa_public(der: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm:  # well-formed DER naming an algorithm nobody implements
        raise ValueError("not an RSA key (unknown key algorithm)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    if key.key_size != _RSA_BITS or key.public_numbers().e != _RSA_EXPONENT:
        raise ValueError(f"expected RSA-{_RSA_BITS} with e={_RSA_EXPONENT}")
    return key


def _load_hybrid_public(raw: bytes) -> hpke.MLKEM768X25519PublicKey:
    if len(raw) != _MLKEM_PUBLIC_SIZE + _X25519_SIZE:
        raise ValueError(f"expected {_MLKEM_PUBLIC_SIZE + _X25519_SIZE} bytes, got {len(raw)}")
    kem = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC_SIZE])
    dh = x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC_SIZE:])
    return hpke.MLKEM768X25519PublicKey(kem, dh)


def _load_der_private(der: bytes) -> object:
    try:
        return serialization.load_der_private_key(der, password=None)
    except UnsupportedAlgorithm:
        raise ValueError("not an RSA key (unknown key algorithm)") from None


class TransportKey:
    """The private half of a transport key: unwraps stanzas addressed to it.

    Private encodings (docs/FORMAT.md §3.1): PKCS#8 DER for RSA, the 32 raw bytes for X25519,
    and the 64-byte ML-KEM-768 seed followed by the 32-byte X25519 key for the hybrid. They are
    only ever stored inside an encrypted keystore.
    """

    __slots__ = ("_kind", "_mlkem", "_rsa", "_x25519")

    def __init__(
        self,
        kind: str,
        *,
        rsa_key: rsa.RSAPrivateKey | None = None,
        x25519_key: x25519.X25519PrivateKey | None = None,
        mlkem_key: mlkem.MLKEM768PrivateKey | None = None,
    ) -> None:
        _require_kind(kind)
        self._kind = kind
        self._rsa = rsa_key
        self._x25519 = x25519_key
        self._mlkem = mlkem_key

    @classmethod
    def generate(cls, kind: str) -> TransportKey:
        _require_kind(kind)
        if kind == RSA_OAEP_2048:
            return cls(kind, rsa_key=rsa.generate_private_key(_RSA_EXPONENT, _RSA_BITS))
        mlkem_key = mlkem.MLKEM768PrivateKey.generate() if kind == MLKEM768_X25519 else None
        return cls(kind, x25519_key=x25519.X25519PrivateKey.generate(), mlkem_key=mlkem_key)

    @classmethod
    def from_private_bytes(cls, kind: str, raw: bytes) -> TransportKey:
        _require_kind(kind)
        try:
            if kind == RSA_OAEP_2048:
                key = _load_der_private(raw)
                if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != _RSA_BITS:
                    raise ValueError("not an RSA-2048 private key")
                return cls(kind, rsa_key=key)
            if kind == X25519:
                return cls(kind, x25519_key=x25519.X25519PrivateKey.from_private_bytes(raw))
            if len(raw) != _MLKEM_SEED_SIZE + _X25519_SIZE:
                raise ValueError(f"expected {_MLKEM_SEED_SIZE + _X25519_SIZE} bytes")
            return cls(
                kind,
                mlkem_key=mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:_MLKEM_SEED_SIZE]),
                x25519_key=x25519.X25519PrivateKey.from_private_bytes(raw[_MLKEM_SEED_SIZE:]),
            )
        except (ValueError, TypeError) as error:
            raise InvalidInput(f"malformed {kind} private key: {error}") from None

    @property
    def kind(self) -> str:
        return self._kind

    def private_bytes(self) -> bytes:
        if self._rsa is not None:
            return self._rsa.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        raw = self._x25519_key().private_bytes_raw()
        return raw if self._mlkem is None else self._mlkem.private_bytes_raw() + raw

    def recipient(self) -> RecipientKey:
        """The public half, as senders address it."""
        if self._rsa is not None:
            der = self._rsa.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return RecipientKey(self._kind, der)
        raw = self._x25519_key().public_key().public_bytes_raw()
        if self._mlkem is not None:
            raw = self._mlkem.public_key().public_bytes_raw() + raw
        return RecipientKey(self._kind, raw)

    @property
    def key_id(self) -> bytes:
        return self.recipient().key_id

    def unwrap(self, stanza: Stanza) -> bytes:
        """Recover the file key from a stanza addressed to this key.

        Raises IntegrityError when the stanza names this key but does not decrypt: its body was
        changed, or it was forged for this key id.
        """
        if stanza.kind != self._kind or stanza.key_id != self.key_id:
            raise InvalidInput("stanza is not addressed to this key")
        try:
            file_key = self._decrypt(stanza.body)
        except (InvalidTag, ValueError):
            raise IntegrityError(f"{self._kind} recipient stanza does not decrypt") from None
        if len(file_key) != FILE_KEY_SIZE:
            raise IntegrityError(f"{self._kind} recipient stanza holds a malformed file key")
        return file_key

    def _decrypt(self, body: bytes) -> bytes:
        if self._rsa is not None:
            return self._rsa.decrypt(body, _rsa_oaep(self._kind))
        suite = _hpke_suite(self._kind)
        if self._mlkem is not None:
            hybrid = hpke.MLKEM768X25519PrivateKey(self._mlkem, self._x25519_key())
            return suite.decrypt(body, hybrid, info=_label(self._kind))
        return suite.decrypt(body, self._x25519_key(), info=_label(self._kind))

    def _x25519_key(self) -> x25519.X25519PrivateKey:
        assert self._x25519 is not None  # every non-RSA kind carries an X25519 key
        return self._x25519
