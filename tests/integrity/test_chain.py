"""The hash chain against committed vectors, and every single-byte tamper it must catch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanseal.errors import IntegrityError, InvalidInput
from scanseal.integrity.chain import (
    HashChain,
    encode_timestamp,
    hash_chain,
    sha256_file,
    verify_chain,
)

from .write_vectors import CHAIN_FILE, chain_vectors, render

METADATA = b'{"Modality":"CT","PatientID":"ANON0001","StudyInstanceUID":"1.2.3.4"}'
TIMESTAMP = 1767225600


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(CHAIN_FILE.read_text(encoding="utf-8"))["cases"]
    return cases


def _flip(data: bytes, position: int) -> bytes:
    altered = bytearray(data)
    altered[position] ^= 0x01
    return bytes(altered)


def test_committed_vector_file_matches_definition() -> None:
    assert CHAIN_FILE.read_text(encoding="utf-8") == render(chain_vectors())


def test_documented_vector() -> None:
    """The vector printed in docs/INTEGRITY.md."""
    chain = hash_chain(
        hashlib.sha256(b"ScanSeal hash chain vector 1\n").digest(), METADATA, TIMESTAMP
    )
    assert chain.h1.hex() == "3460a9fec44f9f7da12c81eeb0220cdee776f81b5b5746e34a7f028c45171b98"
    assert chain.h2.hex() == "ba038e56db7596c14e14751e3b23ed89f0fac4aa2cf7b57cd94b425a330ca78f"
    assert chain.h3.hex() == "a3925241ed6188638079aef63d4650338af38364ce9454c34b6cfc19fb290ace"


@pytest.mark.parametrize("case", _cases(), ids=lambda c: str(c["timestamp"]))
def test_vectors(case: dict[str, Any], tmp_path: Path) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(bytes.fromhex(case["file_hex"]))
    metadata = bytes.fromhex(case["metadata_hex"])
    h1 = sha256_file(image)
    chain = hash_chain(h1, metadata, case["timestamp"])
    expected = {k: case[k] for k in ("h1", "h2", "h3", "timestamp")}
    assert chain.to_dict() == expected
    assert HashChain.from_dict(expected) == chain
    verify_chain(chain, h1, metadata)


def test_timestamp_encoding() -> None:
    assert encode_timestamp(0) == bytes(8)
    assert encode_timestamp(TIMESTAMP) == bytes.fromhex("000000006955b900")
    assert encode_timestamp((1 << 64) - 1) == b"\xff" * 8


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1 << 20])
def test_sha256_file_streams_in_any_chunk_size(tmp_path: Path, chunk_size: int) -> None:
    data = bytes(range(256)) * 1000 + b"tail"
    image = tmp_path / "image.bin"
    image.write_bytes(data)
    assert sha256_file(image, chunk_size) == hashlib.sha256(data).digest()


def test_sha256_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        sha256_file(tmp_path / "missing.dcm")
    with pytest.raises(InvalidInput, match="cannot read"):
        sha256_file(tmp_path)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(InvalidInput):
        sha256_file(tmp_path / "f", chunk_size=0)


@given(st.binary(min_size=1, max_size=64), st.data())
def test_any_file_byte_change_changes_h3_and_fails_h1(data: bytes, draw: st.DataObject) -> None:
    position = draw.draw(st.integers(0, len(data) - 1))
    chain = hash_chain(hashlib.sha256(data).digest(), METADATA, TIMESTAMP)
    tampered_h1 = hashlib.sha256(_flip(data, position)).digest()
    assert hash_chain(tampered_h1, METADATA, TIMESTAMP).h3 != chain.h3
    with pytest.raises(IntegrityError, match="link H1"):
        verify_chain(chain, tampered_h1, METADATA)


@given(st.integers(0, len(METADATA) - 1))
def test_any_metadata_byte_change_changes_h3_and_fails_h2(position: int) -> None:
    h1 = hashlib.sha256(b"image").digest()
    chain = hash_chain(h1, METADATA, TIMESTAMP)
    tampered = _flip(METADATA, position)
    assert hash_chain(h1, tampered, TIMESTAMP).h3 != chain.h3
    with pytest.raises(IntegrityError, match="link H2"):
        verify_chain(chain, h1, tampered)


@given(st.integers(0, (1 << 64) - 1), st.integers(0, 63))
def test_any_timestamp_change_changes_h3_and_fails_h3(timestamp: int, bit: int) -> None:
    h1 = hashlib.sha256(b"image").digest()
    chain = hash_chain(h1, METADATA, timestamp)
    moved = HashChain(chain.h1, chain.h2, chain.h3, timestamp ^ (1 << bit))
    assert hash_chain(h1, METADATA, moved.timestamp).h3 != chain.h3
    with pytest.raises(IntegrityError, match="link H3"):
        verify_chain(moved, h1, METADATA)


@pytest.mark.parametrize(("field", "link"), [("h1", "H1"), ("h2", "H2"), ("h3", "H3")])
@pytest.mark.parametrize("position", [0, 17, 31])
def test_a_changed_recorded_link_is_named(field: str, link: str, position: int) -> None:
    h1 = hashlib.sha256(b"image").digest()
    recorded = hash_chain(h1, METADATA, TIMESTAMP).to_dict()
    recorded[field] = _flip(bytes.fromhex(str(recorded[field])), position).hex()
    with pytest.raises(IntegrityError, match=f"link {link}"):
        verify_chain(HashChain.from_dict(recorded), h1, METADATA)


def test_metadata_cannot_slide_into_the_file_hash() -> None:
    """H1 has a fixed length, so moving bytes between H1's input and the metadata is caught."""
    h1 = hashlib.sha256(b"image").digest()
    a = hash_chain(h1, METADATA, TIMESTAMP)
    b = hash_chain(hashlib.sha256(b"image" + METADATA[:1]).digest(), METADATA[1:], TIMESTAMP)
    assert a.h3 != b.h3


@pytest.mark.parametrize(
    ("h1", "metadata", "timestamp"),
    [
        (b"\x00" * 31, b"", 0),
        (b"\x00" * 33, b"", 0),
        ("00" * 32, b"", 0),
        (b"\x00" * 32, "{}", 0),
        (b"\x00" * 32, b"", -1),
        (b"\x00" * 32, b"", 1 << 64),
        (b"\x00" * 32, b"", True),
        (b"\x00" * 32, b"", 1.0),
    ],
)
def test_hash_chain_rejects_bad_input(h1: Any, metadata: Any, timestamp: Any) -> None:
    with pytest.raises(InvalidInput):
        hash_chain(h1, metadata, timestamp)


def test_verify_chain_rejects_bad_input() -> None:
    chain = hash_chain(b"\x00" * 32, b"", 0)
    with pytest.raises(InvalidInput):
        verify_chain(chain, b"\x00" * 31, b"")
    with pytest.raises(InvalidInput):
        verify_chain(chain, b"\x00" * 32, "")  # type: ignore[arg-type]


def test_chain_is_frozen_and_checked() -> None:
    chain = hash_chain(b"\x00" * 32, b"", 0)
    with pytest.raises(AttributeError):
        chain.h3 = b"\x00" * 32  # type: ignore[misc]
    with pytest.raises(InvalidInput):
        HashChain(chain.h1, chain.h2, b"\x00", 0)
    with pytest.raises(InvalidInput):
        HashChain(chain.h1, chain.h2, chain.h3, -5)


def _good_dict() -> dict[str, object]:
    return dict(hash_chain(b"\x00" * 32, b"", 0).to_dict())


@pytest.mark.parametrize(
    "change",
    [
        {"h1": "AB" * 32},
        {"h1": "ab" * 31},
        {"h2": "zz" * 32},
        {"h3": b"\x00" * 32},
        {"h3": None},
        {"timestamp": "0"},
        {"timestamp": -1},
        {"timestamp": False},
        {"extra": 1},
    ],
)
def test_from_dict_is_strict(change: dict[str, object]) -> None:
    d = _good_dict() | change
    with pytest.raises(InvalidInput):
        HashChain.from_dict(d)


def test_from_dict_needs_every_key() -> None:
    d = _good_dict()
    del d["h2"]
    with pytest.raises(InvalidInput):
        HashChain.from_dict(d)


def test_docs_carry_the_committed_vectors() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "INTEGRITY.md").read_text("utf-8")
    for case in _cases():
        for key in ("h1", "h2", "h3"):
            assert case[key] in doc
