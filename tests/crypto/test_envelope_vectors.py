"""The committed test vectors of docs/FORMAT.md §6, checked byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from scanseal import errors
from scanseal.crypto import envelope
from scanseal.crypto.stanzas import Stanza, TransportKey

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "envelope.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["payload"], ids=lambda v: v["name"])
def test_payload_vector_is_reproduced_exactly(vector: dict[str, Any]) -> None:
    file_key, salt = bytes.fromhex(vector["file_key"]), bytes.fromhex(vector["salt"])
    s = vector["stanza"]
    stanza = Stanza(s["kind"], bytes.fromhex(s["key_id"]), bytes.fromhex(s["body"]))
    header = envelope.build_header(
        file_key,
        [stanza],
        segment_size=vector["segment_size"],
        salt=salt,
        nonce_prefix=bytes.fromhex(vector["nonce_prefix"]),
    )
    out = io.BytesIO()
    out.write(header.encoded)
    envelope.encrypt_payload(io.BytesIO(bytes.fromhex(vector["plaintext"])), out, file_key, header)
    assert out.getvalue().hex() == vector["envelope"]
    assert envelope.derive_key(file_key, salt, "header").hex() == vector["header_mac_key"]
    assert envelope.derive_key(file_key, salt, "payload").hex() == vector["payload_key"]
    plain = io.BytesIO()
    sealed = io.BytesIO(bytes.fromhex(vector["envelope"]))
    parsed = envelope.read_header(sealed)
    envelope.decrypt_payload(sealed, plain, file_key, parsed)
    assert plain.getvalue().hex() == vector["plaintext"]


@pytest.mark.parametrize("vector", VECTORS["open"], ids=lambda v: v["name"])
def test_open_vector(vector: dict[str, Any]) -> None:
    identity = TransportKey.from_private_bytes(vector["kind"], bytes.fromhex(vector["private_key"]))
    src, out = io.BytesIO(bytes.fromhex(vector["envelope"])), io.BytesIO()
    if vector["expect"] == "ok":
        envelope.open_envelope(src, out, [identity])
        assert hashlib.sha256(out.getvalue()).hexdigest() == vector["plaintext_sha256"]
    else:
        with pytest.raises(getattr(errors, vector["expect"])):
            envelope.open_envelope(src, out, [identity])


FORMAT_MD = Path(__file__).parents[2] / "docs" / "FORMAT.md"


def _doc_section_6() -> str:
    doc = FORMAT_MD.read_text("utf-8")
    return doc[doc.index("## 6. Test vectors") : doc.index("## 7. Study manifest")]


def test_format_md_carries_the_payload_vector() -> None:
    """§6 shows the payload vector's inputs, derived keys, header bytes and envelope digest."""
    doc, vector = _doc_section_6(), VECTORS["payload"][0]
    for key in ("file_key", "salt", "nonce_prefix", "header_mac_key", "payload_key"):
        assert f"  {vector[key]}\n" in doc, key
    sealed = bytes.fromhex(vector["envelope"])
    plaintext = bytes.fromhex(vector["plaintext"])
    assert f"SHA-256(plaintext)  {hashlib.sha256(plaintext).hexdigest()}\n" in doc
    assert f"SHA-256(envelope)   {hashlib.sha256(sealed).hexdigest()}" in doc
    header_lines = doc.split(" bytes, MAC last):\n")[1].split("\nSHA-256(envelope)")[0]
    header_hex = "".join(line.strip() for line in header_lines.splitlines())
    assert header_hex == envelope.read_header(io.BytesIO(sealed)).encoded.hex()
    assert vector["envelope"].startswith(header_hex)


def test_format_md_lists_every_open_vector() -> None:
    doc = _doc_section_6()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(VECTORS["open"])
    for row, vector in zip(rows, VECTORS["open"], strict=True):
        digest = hashlib.sha256(bytes.fromhex(vector["envelope"])).hexdigest()
        expect = vector.get("plaintext_sha256", vector["expect"])
        assert row.startswith(f"| {vector['name']} | `{vector['kind']}` | `{digest}` |"), row
        assert row.endswith(f"`{expect}` |"), row


def test_format_md_shows_the_generator_output_verbatim() -> None:
    from vectors.make_envelope_vectors import render_markdown

    assert render_markdown(VECTORS) in _doc_section_6()
