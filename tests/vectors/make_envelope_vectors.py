"""Regenerate tests/vectors/envelope.json, the envelope test vectors of docs/FORMAT.md §6.

Run once by hand (``python tests/vectors/make_envelope_vectors.py``) and commit the output; the
tests then check the committed bytes, so a change to the format cannot pass silently. Two kinds
of vector:

* ``payload``: fully deterministic (fixed file key, salt, nonce prefix and stanza bytes): the
  exact envelope an implementation must produce.
* ``open``: a recipient private key and a sealed envelope, with the expected outcome (the
  plaintext's SHA-256, or the error class). Key wrapping is randomized, so these are
  decrypt-side vectors, as in age's test kit.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from scanseal.crypto import envelope
from scanseal.crypto.stanzas import RECIPIENT_KINDS, Stanza, TransportKey

OUT = Path(__file__).with_name("envelope.json")
PLAINTEXT = bytes(range(256)) * 2 + b"ScanSeal"  # 520 bytes: 9 segments of 64 minus a tail


def _payload_vector() -> dict[str, Any]:
    file_key = bytes(range(32))
    salt = bytes(range(32, 64))
    prefix = bytes(range(64, 71))
    stanza = Stanza("x25519", bytes(16), bytes(range(80)))
    header = envelope.build_header(
        file_key, [stanza], segment_size=64, salt=salt, nonce_prefix=prefix
    )
    out = io.BytesIO(header.encoded)
    out.seek(0, io.SEEK_END)
    envelope.encrypt_payload(io.BytesIO(PLAINTEXT), out, file_key, header)
    return {
        "name": "payload: fixed key, salt, prefix and stanza; 520 bytes in 64-byte segments",
        "file_key": file_key.hex(),
        "salt": salt.hex(),
        "nonce_prefix": prefix.hex(),
        "segment_size": 64,
        "stanza": {"kind": stanza.kind, "key_id": stanza.key_id.hex(), "body": stanza.body.hex()},
        "plaintext": PLAINTEXT.hex(),
        "header_mac_key": envelope.derive_key(file_key, salt, "header").hex(),
        "payload_key": envelope.derive_key(file_key, salt, "payload").hex(),
        "envelope": out.getvalue().hex(),
    }


def _open_vector(
    name: str, identity: TransportKey, sealed: bytes, expect: str, plaintext: bytes = b""
) -> dict[str, Any]:
    vector: dict[str, Any] = {
        "name": name,
        "kind": identity.kind,
        "private_key": identity.private_bytes().hex(),
        "envelope": sealed.hex(),
        "expect": expect,
    }
    if expect == "ok":
        vector["plaintext_sha256"] = hashlib.sha256(plaintext).hexdigest()
    return vector


def _seal(data: bytes, keys: list[TransportKey], segment: int = 64) -> bytes:
    out = io.BytesIO()
    envelope.seal(io.BytesIO(data), out, [k.recipient() for k in keys], segment_size=segment)
    return out.getvalue()


def _open_vectors() -> list[dict[str, Any]]:
    keys = {kind: TransportKey.generate(kind) for kind in RECIPIENT_KINDS}
    stranger = TransportKey.generate("x25519")
    vectors = [
        _open_vector(f"{kind}: one recipient", key, _seal(PLAINTEXT, [key]), "ok", PLAINTEXT)
        for kind, key in keys.items()
    ]
    everyone = _seal(PLAINTEXT, list(keys.values()))
    vectors += [
        _open_vector(f"three recipients, opened as {k}", key, everyone, "ok", PLAINTEXT)
        for k, key in keys.items()
    ]
    x = keys["x25519"]
    vectors.append(_open_vector("empty plaintext", x, _seal(b"", [x]), "ok", b""))
    exact = PLAINTEXT[:512]
    vectors.append(_open_vector("exact multiple of the segment", x, _seal(exact, [x]), "ok", exact))
    sealed = _seal(PLAINTEXT, [x])
    header_len = len(envelope.read_header(io.BytesIO(sealed)).encoded)
    flipped_mac = bytearray(sealed)
    flipped_mac[header_len - 1] ^= 1
    swapped = bytearray(sealed)
    step = 64 + envelope.TAG_SIZE
    first = slice(header_len, header_len + step)
    second = slice(header_len + step, header_len + 2 * step)
    swapped[first], swapped[second] = sealed[second], sealed[first]
    vectors += [
        _open_vector("header MAC changed", x, bytes(flipped_mac), "IntegrityError"),
        _open_vector("segments 0 and 1 swapped", x, bytes(swapped), "IntegrityError"),
        _open_vector("last segment dropped", x, sealed[: -(520 % 64 + 16)], "IntegrityError"),
        _open_vector("one byte appended", x, sealed + b"\x00", "IntegrityError"),
        _open_vector("bad magic", x, b"SCANSEAm" + sealed[8:], "IntegrityError"),
        _open_vector("opened by a stranger", stranger, sealed, "NotARecipient"),
    ]
    return vectors


def main() -> None:
    vectors = {"payload": [_payload_vector()], "open": _open_vectors()}
    OUT.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {OUT} ({len(vectors['open'])} open vectors)")


if __name__ == "__main__":
    main()
