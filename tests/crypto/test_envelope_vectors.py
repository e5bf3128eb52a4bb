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
