"""The encrypted keystore file: scrypt, AES-256-GCM, and an atomic, no-clobber write.

This module knows the envelope of a keystore file (docs/KEYS.md) but not what an identity is:
it seals opaque secret bytes under a passphrase, with a caller-supplied public object (the
identity card) bound as associated data, and opens them again. Keeping the two apart lets the
file format be read and reviewed on its own.
"""

from __future__ import annotations

import hmac
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from scanseal._disk import staged_files
from scanseal._json import JsonObject, Reader, b64encode, canonical_json, parse_object
from scanseal.errors import IntegrityError, InvalidInput, NotFound, WrongPassphrase

FORMAT_VERSION: Final = 1
DEFAULT_SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SALT_SIZE: Final = 16
NONCE_SIZE: Final = 12
CHECK_SIZE: Final = 16
KEY_SIZE: Final = 32

# Bounds on what a file may ask for. A keystore is untrusted input until it is opened: without
# these, a planted file could make an unlock allocate gigabytes or run for hours.
MIN_SCRYPT_N: Final = 2**10
MAX_SCRYPT_N: Final = 2**20
MAX_SCRYPT_R: Final = 32
MAX_SCRYPT_P: Final = 16
MAX_SCRYPT_MEMORY: Final = 256 * 2**20  # bytes: 128 · n · r
MAX_SCRYPT_WORK: Final = 2**22  # n · r · p, 16 times the default
MAX_FILE_SIZE: Final = 1 << 20

_KDF_NAME: Final = "scrypt"
_CIPHER_NAME: Final = "aes-256-gcm"
_FILE_FIELDS: Final = ("scanseal_keystore", "card", "kdf", "cipher")


@dataclass(frozen=True)
class ScryptParams:
    """The passphrase KDF's parameters, stored in the file so a future default can change."""

    salt: bytes
    n: int
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def fresh(cls, n: int) -> ScryptParams:
        params = cls(os.urandom(SALT_SIZE), n)
        params.check_bounds()
        return params

    def check_bounds(self) -> None:
        """Raise InvalidInput for parameters outside what ScanSeal will ever spend."""
        field, problem = _scrypt_problem(self)
        if problem:
            raise InvalidInput(f"scrypt parameter {field} refused: {problem}")

    def to_object(self) -> JsonObject:
        return {
            "name": _KDF_NAME,
            "salt": b64encode(self.salt),
            "n": self.n,
            "r": self.r,
            "p": self.p,
        }

    def derive(self, passphrase: str) -> tuple[bytes, bytes]:
        """(AES key, passphrase check): one scrypt call, split in two."""
        normalized = unicodedata.normalize("NFC", passphrase).encode("utf-8")
        kdf = Scrypt(salt=self.salt, length=KEY_SIZE + CHECK_SIZE, n=self.n, r=self.r, p=self.p)
        out = kdf.derive(normalized)
        return out[:KEY_SIZE], out[KEY_SIZE:]


@dataclass(frozen=True)
class KeyFile:
    """A parsed (not yet opened) keystore file."""

    card: JsonObject
    kdf: ScryptParams
    check: bytes
    nonce: bytes
    ciphertext: bytes

    def to_text(self) -> str:
        """Pretty JSON, the public card first so a person can read who the file is for."""
        document: dict[str, Any] = {
            "scanseal_keystore": FORMAT_VERSION,
            "card": self.card,
            "kdf": {**self.kdf.to_object(), "check": b64encode(self.check)},
            "cipher": {
                "name": _CIPHER_NAME,
                "nonce": b64encode(self.nonce),
                "ciphertext": b64encode(self.ciphertext),
            },
        }
        return json.dumps(document, indent=2) + "\n"


def seal(secrets: bytes, card: JsonObject, passphrase: str, n: int) -> KeyFile:
    """Encrypt ``secrets`` under ``passphrase``, binding ``card`` (canonical form) as AAD."""
    params = ScryptParams.fresh(n)
    key, check = params.derive(passphrase)
    nonce = os.urandom(NONCE_SIZE)
    ciphertext = AESGCM(key).encrypt(nonce, secrets, _aad(card, params, check))
    return KeyFile(card, params, check, nonce, ciphertext)


def open_secrets(keyfile: KeyFile, card: JsonObject, passphrase: str) -> bytes:
    """Decrypt; a wrong passphrase and a modified file are told apart by the stored check."""
    key, check = keyfile.kdf.derive(passphrase)
    if not hmac.compare_digest(check, keyfile.check):
        raise WrongPassphrase("wrong passphrase")
    try:
        return AESGCM(key).decrypt(
            keyfile.nonce, keyfile.ciphertext, _aad(card, keyfile.kdf, check)
        )
    except InvalidTag:
        raise IntegrityError("keystore was modified: its secrets do not authenticate") from None


def parse(text: str, where: str) -> KeyFile:
    """Check the structure of a keystore file (not the card inside: that is the caller's)."""
    reader = Reader(parse_object(text, where), where)
    reader.only(*_FILE_FIELDS)
    version = reader.integer("scanseal_keystore")
    if version != FORMAT_VERSION:
        reader.fail("scanseal_keystore", f"is {version}; this ScanSeal reads {FORMAT_VERSION}")
    card = reader.mapping("card")  # validated by the caller; only its type is checked here
    params, check = _parse_kdf(reader.child("kdf"))
    nonce, ciphertext = _parse_cipher(reader.child("cipher"))
    return KeyFile(card, params, check, nonce, ciphertext)


def read_text(path: Path, what: str) -> str:
    """Read a small UTF-8 file; missing is NotFound, anything else unreadable is InvalidInput."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise NotFound(f"no {what} at {path}") from None
    except OSError as error:
        raise InvalidInput(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_SIZE:
        raise InvalidInput(f"{what} {path} is larger than {MAX_FILE_SIZE} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} {path} is not UTF-8 text") from None


def write_new(path: Path, text: str) -> None:
    """Write ``path`` with mode 0600, atomically, refusing to replace an existing file.

    The bytes go to a temporary file in the same directory, are fsynced, and are then hard-linked
    into place: a crash leaves either no file or the whole file, never half a keystore, and a
    concurrent ``create`` of the same name fails instead of silently overwriting a key.
    """
    staged = staged_files(path, overwrite=False, durable=True, suffix=".tmp", parent_mode=0o700)
    try:
        with staged as (temp,), temp.open("wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text.encode("utf-8"))
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or error}") from None


def replace(path: Path, text: str, previous: str) -> None:
    """Put ``text`` in place of the keystore ``path`` holds, atomically, mode 0600: for a new
    passphrase or new keys of the same identity.

    ``previous`` is what the caller read and unlocked: a file that changed since (another
    ``passwd`` or ``rotate`` meanwhile) is refused rather than overwritten. The new bytes are
    written and fsynced beside the file and renamed over it, so the path names the old file or
    the new one, never a mix, and no copy under the old passphrase is left in the directory.
    """
    staged = staged_files(path, overwrite=True, durable=True, suffix=".tmp", parent_mode=0o700)
    try:
        with staged as (temp,):
            with temp.open("wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(text.encode("utf-8"))
            if read_text(path, "keystore") != previous:
                raise InvalidInput(f"{path} changed while it was being rewritten; try again")
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or error}") from None


def _aad(card: JsonObject, params: ScryptParams, check: bytes) -> bytes:
    """Everything in the file except the ``cipher`` member, canonical: tampering there fails."""
    kdf = {**params.to_object(), "check": b64encode(check)}
    return canonical_json({"scanseal_keystore": FORMAT_VERSION, "card": card, "kdf": kdf})


def _parse_kdf(reader: Reader) -> tuple[ScryptParams, bytes]:
    reader.only("name", "salt", "n", "r", "p", "check")
    if reader.text("name") != _KDF_NAME:
        reader.fail("name", f"must be {_KDF_NAME!r}")
    salt = reader.b64("salt")
    if len(salt) != SALT_SIZE:
        reader.fail("salt", f"must be {SALT_SIZE} bytes")
    params = ScryptParams(salt, reader.integer("n"), reader.integer("r"), reader.integer("p"))
    field, problem = _scrypt_problem(params)
    if problem:
        reader.fail(field, f"is refused: {problem}")
    check = reader.b64("check")
    if len(check) != CHECK_SIZE:
        reader.fail("check", f"must be {CHECK_SIZE} bytes")
    return params, check


def _parse_cipher(reader: Reader) -> tuple[bytes, bytes]:
    reader.only("name", "nonce", "ciphertext")
    if reader.text("name") != _CIPHER_NAME:
        reader.fail("name", f"must be {_CIPHER_NAME!r}")
    nonce = reader.b64("nonce")
    if len(nonce) != NONCE_SIZE:
        reader.fail("nonce", f"must be {NONCE_SIZE} bytes")
    ciphertext = reader.b64("ciphertext")
    if len(ciphertext) <= 16:
        reader.fail("ciphertext", "is too short to hold an authentication tag")
    return nonce, ciphertext


def _scrypt_problem(params: ScryptParams) -> tuple[str, str]:
    """(field, reason) for parameters outside the bounds, or ("", "") when they are fine."""
    n, r, p = params.n, params.r, params.p
    if n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1):
        return "n", f"n={n} must be a power of two in [{MIN_SCRYPT_N}, {MAX_SCRYPT_N}]"
    if not 1 <= r <= MAX_SCRYPT_R:
        return "r", f"r={r} must be in [1, {MAX_SCRYPT_R}]"
    if not 1 <= p <= MAX_SCRYPT_P:
        return "p", f"p={p} must be in [1, {MAX_SCRYPT_P}]"
    if 128 * n * r > MAX_SCRYPT_MEMORY:
        return "r", f"n={n}, r={r} would need more than {MAX_SCRYPT_MEMORY >> 20} MiB"
    if n * r * p > MAX_SCRYPT_WORK:
        return "p", f"n·r·p={n * r * p} exceeds {MAX_SCRYPT_WORK}"
    return "", ""
