"""CID construction: golden vectors from real tools, and the codec's edge cases."""

from __future__ import annotations

import gc
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID as MultiformatsCid  # noqa: N811 - beside ScanSeal's CID

from scanseal.errors import InvalidInput
from scanseal.storage import CID, cid_of
from scanseal.storage._builder import DagBuilder
from storage.storage_golden import CHUNK, load, vector_stream


class _Stream(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self._pieces = vector_stream(size)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # short reads on purpose, like a pipe
        if not self._rest:
            self._rest = next(self._pieces, b"")
        piece, self._rest = self._rest[: min(n, 100_000)], self._rest[min(n, 100_000) :]
        return piece


@pytest.mark.parametrize("vector", load(), ids=lambda v: str(v["name"]))
def test_golden_cids_match_js_ipfs_and_the_npm_importer(vector):
    assert cid_of(_Stream(int(vector["size"]))) == vector["cid"]  # type: ignore[arg-type]


def test_golden_vectors_cover_the_layout_edges():
    sizes = {int(v["size"]) for v in load()}  # type: ignore[call-overload]
    assert {0, 1, CHUNK, CHUNK + 1, 174 * CHUNK, 174 * CHUNK + 1, 5 << 20} <= sizes


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3 * CHUNK // 2), st.lists(st.integers(1, 70_000), min_size=1))
def test_the_cid_does_not_depend_on_how_the_stream_is_sliced(data, cuts):
    builder = DagBuilder()
    pos = 0
    for cut in cuts * (len(data) // max(1, sum(cuts)) + 1):
        builder.feed(data[pos : pos + cut])
        pos += cut
        if pos >= len(data):
            break
    assert str(builder.finish()) == cid_of(io.BytesIO(data))


def test_cid_text_round_trips_and_v0_is_accepted():
    text = "bafybeidrpuubzkdnzjzz6bz7imvbermny6xduifgiihg6j7wbjvkmcgkta"
    cid = CID.parse(text)
    assert str(cid) == text
    v0 = CID(0, cid.codec, cid.digest)
    assert str(v0).startswith("Qm")
    assert CID.parse(str(v0)) == v0


def test_other_multibase_spellings_name_the_same_cid():
    cid = CID.of_block(0x55, b"ScanSeal")  # raw
    for base in ("base58btc", "base16", "base32upper"):
        assert CID.parse(MultiformatsCid(base, 1, "raw", ("sha2-256", cid.digest)).encode()) == cid


@given(st.binary(min_size=32, max_size=32), st.sampled_from([0x55, 0x70]))
def test_the_base32_text_is_the_one_multiformats_writes_and_reads(digest, codec):
    cid = CID(1, codec, digest)
    name = {0x55: "raw", 0x70: "dag-pb"}[codec]
    theirs = MultiformatsCid("base32", 1, name, ("sha2-256", digest))
    assert str(cid) == str(theirs)
    assert CID.parse(str(theirs)) == cid


def test_cid_text_leaves_nothing_for_the_garbage_collector():
    """Writing and reading CIDv1 text makes no reference cycles: each cycle multiformats left
    (a caught TypeError's frames) kept the caller's buffers alive until the next collection,
    which a gateway runs rarely."""
    cids = [CID(1, 0x55, os.urandom(32)) for _ in range(50)]
    gc.collect()
    gc.disable()
    try:
        for cid in cids:
            assert CID.parse(str(cid)) == cid
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nonsense",
        "bafy",
        "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQ",  # base58btc, digest cut short
        "bafkr4ihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",  # blake3, not sha2-256
    ],
)
def test_malformed_or_unsupported_cids_are_refused(text):
    with pytest.raises(InvalidInput):
        CID.parse(text)
