"""Regenerate tests/vectors/envelope.json, the envelope test vectors of docs/FORMAT.md §6.

Run once by hand (``python tests/vectors/make_envelope_vectors.py``) and commit the output; the
tests then check the committed bytes, so a change to the format cannot pass silently. The same
run prints ``render_markdown``'s text, which docs/FORMAT.md §6 carries verbatim (also checked).
Two kinds of vector:

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


def _sha256(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


def _wrapped(hex_text: str, width: int = 64) -> list[str]:
    return [hex_text[i : i + width] for i in range(0, len(hex_text), width)]


def _describe(hex_text: str) -> str:
    """Short words for the vector's patterned inputs; any other value in full."""
    data = bytes.fromhex(hex_text)
    if data == PLAINTEXT:
        return f'the 256 bytes 00 … ff twice, then "ScanSeal" ({len(data)} bytes)'
    if data == bytes(range(len(data))):
        return f"the {len(data)} bytes 00 01 02 … {len(data) - 1:02x}"
    return hex_text


def _render_payload(v: dict[str, Any]) -> list[str]:
    sealed = bytes.fromhex(v["envelope"])
    header = envelope.read_header(io.BytesIO(sealed)).encoded
    stanza = v["stanza"]
    return [
        "```",
        f"file key      {v['file_key']}",
        f"salt          {v['salt']}",
        f"nonce prefix  {v['nonce_prefix']}",
        f"segment size  {v['segment_size']}",
        f"stanza        kind {stanza['kind']}, key id {stanza['key_id']},",
        f"              body = {_describe(stanza['body'])}",
        f"plaintext     {_describe(v['plaintext'])}",
        f"SHA-256(plaintext)  {_sha256(v['plaintext'])}",
        f"header key    {v['header_mac_key']}",
        f"payload key   {v['payload_key']}",
        f"header ({len(header)} bytes, MAC last):",
        *(f"  {line}" for line in _wrapped(header.hex())),
        f"SHA-256(envelope)   {_sha256(v['envelope'])}   ({len(sealed)} bytes)",
        "```",
    ]


def _render_open(vectors: list[dict[str, Any]]) -> list[str]:
    rows = ["| name | kind | SHA-256 of the envelope | expected |", "|---|---|---|---|"]
    for v in vectors:
        expect = f"plaintext SHA-256 `{v['plaintext_sha256']}`" if v["expect"] == "ok" else (
            f"`{v['expect']}`"
        )  # fmt: skip
        rows.append(f"| {v['name']} | `{v['kind']}` | `{_sha256(v['envelope'])}` | {expect} |")
    return rows


def render_markdown(vectors: dict[str, Any]) -> str:
    """The vectors as docs/FORMAT.md §6 shows them: payload values, then the open table."""
    lines = [f"Payload vector ({vectors['payload'][0]['name']}):", ""]
    lines += _render_payload(vectors["payload"][0])
    lines += ["", "Open vectors (private keys and envelopes in the JSON file):", ""]
    lines += _render_open(vectors["open"])
    return "\n".join(lines) + "\n"


def main() -> None:
    vectors = {"payload": [_payload_vector()], "open": _open_vectors()}
    OUT.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {OUT} ({len(vectors['open'])} open vectors); for docs/FORMAT.md §6:\n")
    print(render_markdown(vectors))


if __name__ == "__main__":
    main()
