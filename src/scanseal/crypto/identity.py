"""Identities: who may receive envelopes, who signed them, and where their keys are kept.

An identity is one Ethereum (secp256k1) account, which signs uploads and acts on the ledger,
plus one transport key per recipient kind, which unwraps envelopes. Its public side is an
:class:`IdentityCard`, signed by the account so that a card passed around by e-mail or a shared
drive cannot have a key swapped in on the way. Its private side lives in a :class:`Keystore`,
one passphrase-encrypted file per identity (docs/KEYS.md).

An ``IdentityCard`` checks its own signature when it is made, whatever the source, so holding
one means holding an authentic card.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from eth_utils.address import is_checksum_address

from scanseal._json import JsonObject, Reader, b64encode, canonical_json, parse_object
from scanseal.config import scanseal_home
from scanseal.crypto import _keyfile, _secrets
from scanseal.crypto._secrets import RetiredKeys
from scanseal.crypto.signing import EthereumKey, Signer, sign_message, verify_signature
from scanseal.crypto.stanzas import RECIPIENT_KINDS, RecipientKey, TransportKey
from scanseal.errors import IntegrityError, InvalidInput, NotFound, ScanSealError

if TYPE_CHECKING:  # eth-account is slow to import: loaded where a key is made or read
    from eth_account.signers.local import LocalAccount

CARD_FORMAT: Final = 1
DEFAULT_SCRYPT_N: Final = _keyfile.DEFAULT_SCRYPT_N
MAX_CARD_SIZE: Final = 64 * 1024

# A name is also a file name: lowercase ASCII only (no confusables, no case-folding surprises
# across file systems), and never starting with a dot so no identity is a hidden file.
_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CREATED_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_CREATED_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_SIGNATURE_RE: Final = re.compile(r"0x[0-9a-f]{130}")
_CARD_FIELDS: Final = ("scanseal_card", "name", "address", "created", "keys", "signature")
FINGERPRINT_BYTES: Final = 16
"""How much of the card hash a fingerprint shows: 128 bits, 32 hex digits."""


def fingerprint(card_hash: bytes) -> str:
    """The short, spoken form of a card hash: its first 16 bytes as lowercase hex in eight
    groups of four separated by spaces (``b8b6 bbb5 2e3d 7544 415a 24dc a1c4 9cdd``).

    Two people compare it over the phone before trusting a card sent by e-mail; being a prefix
    of the card hash, it can also be checked by eye against the hash on the ledger."""
    digits = card_hash[:FINGERPRINT_BYTES].hex()
    if len(digits) != 2 * FINGERPRINT_BYTES:
        raise InvalidInput(f"a card hash has at least {FINGERPRINT_BYTES} bytes")
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid identity name, else raise InvalidInput."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid identity name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a-z or 0-9"
        )
    return name


@dataclass(frozen=True)
class IdentityCard:
    """The public identity card senders use to address a recipient.

    ``signature`` is EIP-191 by ``address`` over :meth:`canonical_bytes`; a card whose signature
    does not verify cannot be constructed (IntegrityError).
    """

    name: str
    address: str
    keys: Mapping[str, RecipientKey]
    created: str
    signature: str

    def __post_init__(self) -> None:
        _check_card_fields(self)
        ordered = {kind: self.keys[kind] for kind in RECIPIENT_KINDS}
        object.__setattr__(self, "keys", MappingProxyType(ordered))
        verify_signature(self.canonical_bytes(), self.signature, self.address)

    def __hash__(self) -> int:
        return hash(self.card_hash)

    def canonical_bytes(self) -> bytes:
        """What the signature covers: canonical JSON of every field but the signature."""
        return canonical_json(_unsigned_object(self.name, self.address, self.keys, self.created))

    @property
    def card_hash(self) -> bytes:
        """SHA-256 of the canonical card *with* its signature: the value registered on chain."""
        return hashlib.sha256(canonical_json(self._signed_object())).digest()

    @property
    def fingerprint(self) -> str:
        """The card hash's short form for reading aloud (:func:`fingerprint`, docs/KEYS.md)."""
        return fingerprint(self.card_hash)

    def recipient(self, kind: str) -> RecipientKey:
        """The recipient key of ``kind``, for wrapping an envelope's file key to this identity."""
        key = self.keys.get(kind)
        if key is None:
            raise InvalidInput(
                f"unknown recipient key kind {kind!r}; expected one of {RECIPIENT_KINDS}"
            )
        return key

    def to_json(self) -> str:
        """Pretty JSON for people and files; :meth:`from_json` reads it back exactly."""
        return json.dumps(self._signed_object(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> IdentityCard:
        """Parse strictly: malformed → InvalidInput naming the field; forged → IntegrityError."""
        if len(text) > MAX_CARD_SIZE:
            raise InvalidInput(f"identity card is larger than {MAX_CARD_SIZE} characters")
        return cls._from_object(parse_object(text, "identity card"), "identity card")

    @classmethod
    def load(cls, path: Path) -> IdentityCard:
        """Read and verify a card file; every error names ``path``."""
        try:
            text = _keyfile.read_text(path, "identity card")
            return cls.from_json(text)
        except ScanSealError as error:
            kind = InvalidInput if not isinstance(error, IntegrityError) else IntegrityError
            message = error.reason if str(path) in error.reason else f"{path}: {error.reason}"
            raise kind(message) from None

    def _signed_object(self) -> JsonObject:
        unsigned = _unsigned_object(self.name, self.address, self.keys, self.created)
        return {**_readable_order(unsigned), "signature": self.signature}

    @classmethod
    def _from_object(cls, obj: JsonObject, where: str) -> IdentityCard:
        reader = Reader(obj, where)
        reader.only(*_CARD_FIELDS)
        version = reader.integer("scanseal_card")
        if version != CARD_FORMAT:
            reader.fail("scanseal_card", f"is {version}; this ScanSeal reads {CARD_FORMAT}")
        keys = _parse_keys(reader.child("keys"))
        signature = reader.text("signature")
        if not _SIGNATURE_RE.fullmatch(signature):
            reader.fail("signature", "must be 0x and 130 lowercase hex digits")
        fields = {name: reader.text(name) for name in ("name", "address", "created")}
        try:
            return cls(keys=keys, signature=signature, **fields)
        except ScanSealError as error:  # say which card: one file may hold several
            raise type(error)(f"{where}: {error.reason}") from None


class Identity:
    """The private side of an identity, unlocked: signs, and unwraps envelopes addressed to it.

    ``retired`` are the transport keys of the cards earlier rotations replaced (newest first):
    no longer on the card, still tried when an envelope is opened (:attr:`unwrap_keys`).
    """

    __slots__ = ("_account", "_card", "_retired", "_signer", "_transport_keys")

    def __init__(
        self,
        account: Signer,
        transport_keys: Mapping[str, TransportKey],
        card: IdentityCard,
        retired: Sequence[RetiredKeys] = (),
    ) -> None:
        """Bind private keys to their card; a key that does not match the card is refused.
        ``account`` is the Ethereum key, as an :class:`EthereumKey` or an eth-account
        ``LocalAccount``."""
        _check_keys_match_card(account, transport_keys, card)
        self._signer = account if isinstance(account, EthereumKey) else EthereumKey(account.key)
        self._account: LocalAccount | None = None  # built on first use (:attr:`account`)
        self._transport_keys = MappingProxyType({k: transport_keys[k] for k in RECIPIENT_KINDS})
        self._card = card
        self._retired = tuple(retired)

    @classmethod
    def generate(cls, name: str) -> Identity:
        """Fresh keys of every kind and a newly signed card dated now."""
        validate_name(name)
        from eth_account import Account  # slow to import: only when a key is made

        account = EthereumKey(bytes(Account.create().key))
        keys = {kind: TransportKey.generate(kind) for kind in RECIPIENT_KINDS}
        return cls(account, keys, _issue_card(name, account, keys, _utc_now()))

    @property
    def name(self) -> str:
        return self._card.name

    @property
    def address(self) -> str:
        return self._card.address

    @property
    def account(self) -> LocalAccount:
        """The Ethereum key as an eth-account account, for ledger transactions (eth-account is
        imported on first use: signing needs only :attr:`signer`)."""
        if self._account is None:
            from eth_account import Account  # slow to import: only for a chain transaction

            self._account = Account.from_key(self._signer.key)
        return self._account

    @property
    def signer(self) -> EthereumKey:
        """The Ethereum key that signs manifests, cards, grants and gateway requests."""
        return self._signer

    @property
    def transport_keys(self) -> Mapping[str, TransportKey]:
        return self._transport_keys

    @property
    def card(self) -> IdentityCard:
        return self._card

    @property
    def retired(self) -> tuple[RetiredKeys, ...]:
        """The transport keys of earlier cards, newest first (empty until a rotation)."""
        return self._retired

    @property
    def unwrap_keys(self) -> tuple[TransportKey, ...]:
        """Every key an envelope sealed to this identity may name: the card's, then retired."""
        older = (entry.keys[kind] for entry in self._retired for kind in RECIPIENT_KINDS)
        return (*self._transport_keys.values(), *older)

    def rotated(self) -> Identity:
        """The same account (and so the same member on the ledger) with fresh transport keys and
        a new card dated now (always after this card); this card's keys move to the front of
        :attr:`retired`."""
        if len(self._retired) >= _secrets.MAX_RETIRED:
            raise InvalidInput(
                f"identity {self.name!r} has been rotated {len(self._retired)} times, the most "
                "a keystore keeps; create a new identity instead"
            )
        keys = {kind: TransportKey.generate(kind) for kind in RECIPIENT_KINDS}
        card = _issue_card(self.name, self._signer, keys, _later_than(self._card.created))
        retired = (RetiredKeys(self._card.card_hash, self._transport_keys), *self._retired)
        return Identity(self._signer, keys, card, retired)

    def sign(self, message: bytes) -> str:
        """EIP-191 signature over ``message`` by this identity's Ethereum key."""
        return sign_message(self._signer, message)

    def __repr__(self) -> str:  # never the keys
        return f"Identity(name={self.name!r}, address={self.address})"


class Keystore:
    """A directory of passphrase-encrypted identities, one ``NAME.json`` file each (docs/KEYS.md).

    ``scrypt_n`` sets the cost of *new* files only; loading honours what each file says, within
    fixed bounds. Lowering it is for tests: the default is what protects a stolen file.
    """

    def __init__(self, root: Path | None = None, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        self._root = root if root is not None else scanseal_home() / "keys"
        _keyfile.ScryptParams(b"", scrypt_n).check_bounds()
        self._scrypt_n = scrypt_n

    @property
    def root(self) -> Path:
        return self._root

    def path(self, name: str) -> Path:
        """The file that holds (or would hold) identity ``name``."""
        return self._root / f"{validate_name(name)}.json"

    def create(self, name: str, passphrase: str) -> Identity:
        """Generate and store a new identity; an existing name is refused, never replaced."""
        path = self.path(name)
        _check_passphrase(passphrase)
        if path.exists():
            raise InvalidInput(f"identity {name!r} already exists at {path}")
        identity = Identity.generate(name)
        _keyfile.write_new(path, self._sealed(identity, passphrase))
        return identity

    def replace(self, identity: Identity, passphrase: str) -> None:
        """Store ``identity`` in place of its keystore file, sealed under ``passphrase`` with a
        fresh salt: a new passphrase (``keys passwd``) or new transport keys (``keys rotate``).

        Only the account the file holds may replace it (another would destroy that key), and
        the file is rewritten atomically (``_keyfile.replace``): afterwards the old passphrase
        opens nothing in the keystore directory."""
        path = self.path(identity.name)
        _check_passphrase(passphrase)
        previous, _, held = self._read(identity.name, path)
        if held.address != identity.address:
            raise InvalidInput(
                f"{path} holds account {held.address}, not {identity.address}; not replacing it"
            )
        _keyfile.replace(path, self._sealed(identity, passphrase), previous)

    def load(self, name: str, passphrase: str) -> Identity:
        """Unlock ``name``: NotFound, WrongPassphrase, or IntegrityError for a tampered file."""
        path = self.path(name)
        _, keyfile, card = self._read(name, path)
        try:
            secrets = _keyfile.open_secrets(keyfile, card._signed_object(), passphrase)
        except IntegrityError as error:
            raise IntegrityError(f"keystore {path}: {error.reason}") from None
        except ScanSealError as error:
            raise type(error)(f"{error.reason} for identity {name!r}") from None
        return _identity(secrets, card, f"keystore {path}")

    def card(self, name: str) -> IdentityCard:
        """The public card of ``name``, verified; needs no passphrase."""
        return self._read(name, self.path(name))[2]

    def names(self) -> list[str]:
        """Every identity name in the keystore, sorted."""
        if not self._root.is_dir():
            return []
        stems = (path.stem for path in self._root.glob("*.json") if path.is_file())
        return sorted(stem for stem in stems if _NAME_RE.fullmatch(stem))

    def _sealed(self, identity: Identity, passphrase: str) -> str:
        """The keystore file's text for ``identity`` under ``passphrase``, at this store's cost."""
        card = identity.card._signed_object()
        return _keyfile.seal(_encode_secrets(identity), card, passphrase, self._scrypt_n).to_text()

    def _read(self, name: str, path: Path) -> tuple[str, _keyfile.KeyFile, IdentityCard]:
        """The file's text, parsed envelope and verified card."""
        where = f"keystore {path}"
        try:
            text = _keyfile.read_text(path, "keystore")
        except NotFound:
            raise NotFound(f"no identity named {name!r} in {self._root}") from None
        keyfile = _keyfile.parse(text, where)
        card = IdentityCard._from_object(keyfile.card, f"{where}: card")
        if card.name != name:
            raise IntegrityError(f"{where} holds identity {card.name!r}, not {name!r}")
        return text, keyfile, card


def _check_passphrase(passphrase: str) -> None:
    if not isinstance(passphrase, str) or not passphrase:
        raise InvalidInput("the passphrase must not be empty")


def _unsigned_object(
    name: str, address: str, keys: Mapping[str, RecipientKey], created: str
) -> JsonObject:
    encoded = {kind: b64encode(keys[kind].public_bytes) for kind in RECIPIENT_KINDS}
    return {
        "scanseal_card": CARD_FORMAT,
        "name": name,
        "address": address,
        "created": created,
        "keys": encoded,
    }


def _readable_order(obj: JsonObject) -> JsonObject:
    """Field order for people: format marker, who, when, then the long keys."""
    return {field: obj[field] for field in _CARD_FIELDS if field in obj}


def _issue_card(
    name: str, account: Signer, keys: Mapping[str, TransportKey], created: str
) -> IdentityCard:
    public = {kind: key.recipient() for kind, key in keys.items()}
    address = str(account.address)
    signature = sign_message(
        account, canonical_json(_unsigned_object(name, address, public, created))
    )
    return IdentityCard(name, address, public, created, signature)


def _utc_now() -> str:
    return datetime.now(UTC).strftime(_CREATED_FORMAT)


def _later_than(created: str) -> str:
    """Now, or one second after ``created`` if that is not yet past: a rotated card is always
    dated after the card it replaces, so a gateway can tell a replacement from a rollback."""
    previous = datetime.strptime(created, _CREATED_FORMAT).replace(tzinfo=UTC)
    return max(datetime.now(UTC), previous + timedelta(seconds=1)).strftime(_CREATED_FORMAT)


def _check_card_fields(card: IdentityCard) -> None:
    for field in ("name", "address", "created", "signature"):
        if not isinstance(getattr(card, field), str):
            raise InvalidInput(f"field '{field}' must be a string")
    try:
        validate_name(card.name)
    except InvalidInput as error:
        raise InvalidInput(f"field 'name': {error.reason}") from None
    if not is_checksum_address(card.address):
        raise InvalidInput("field 'address' must be a checksummed (EIP-55) Ethereum address")
    if not _valid_created(card.created):
        raise InvalidInput("field 'created' must be a UTC time like 2026-01-31T12:00:00Z")
    _check_key_map(card.keys)


def _valid_created(created: str) -> bool:
    if not _CREATED_RE.fullmatch(created):
        return False
    try:
        datetime.strptime(created, _CREATED_FORMAT)
    except ValueError:
        return False
    return True


def _check_key_map(keys: Mapping[str, Any]) -> None:
    if not isinstance(keys, Mapping):
        raise InvalidInput("field 'keys' must map each recipient kind to its key")
    for kind in keys:
        if kind not in RECIPIENT_KINDS:
            raise InvalidInput(f"field 'keys.{kind}' is not a known recipient key kind")
    for kind in RECIPIENT_KINDS:
        key = keys.get(kind)
        if not isinstance(key, RecipientKey) or key.kind != kind:
            raise InvalidInput(f"field 'keys.{kind}' must be a {kind} recipient key")


def _parse_keys(reader: Reader) -> dict[str, RecipientKey]:
    for kind in reader.fields():
        if kind not in RECIPIENT_KINDS:
            reader.fail(kind, "is not a known recipient key kind")
    keys: dict[str, RecipientKey] = {}
    for kind in RECIPIENT_KINDS:
        raw = reader.b64(kind)
        try:
            keys[kind] = RecipientKey(kind, raw)
        except InvalidInput as error:
            reader.fail(kind, f"is not a usable key ({error.reason})")
    return keys


def _check_keys_match_card(
    account: Signer, transport_keys: Mapping[str, TransportKey], card: IdentityCard
) -> None:
    if str(account.address) != card.address:
        raise IntegrityError(f"Ethereum key is for {account.address}, card says {card.address}")
    if set(transport_keys) != set(RECIPIENT_KINDS):
        raise InvalidInput(
            f"an identity needs exactly one transport key of each kind {RECIPIENT_KINDS}"
        )
    for kind in RECIPIENT_KINDS:
        key = transport_keys[kind]
        if key.kind != kind or key.recipient() != card.keys[kind]:
            raise IntegrityError(f"{kind} transport key does not match the card")


def _encode_secrets(identity: Identity) -> bytes:
    return _secrets.encode(identity.signer, identity.transport_keys, identity.retired)


def _identity(secrets: bytes, card: IdentityCard, where: str) -> Identity:
    decoded = _secrets.decode(secrets, where)
    try:
        return Identity(decoded.account, decoded.transport, card, decoded.retired)
    except IntegrityError as error:
        raise IntegrityError(f"{where}: {error.reason}") from None


__all__ = [
    "CARD_FORMAT",
    "DEFAULT_SCRYPT_N",
    "FINGERPRINT_BYTES",
    "Identity",
    "IdentityCard",
    "Keystore",
    "RetiredKeys",
    "fingerprint",
    "validate_name",
]
