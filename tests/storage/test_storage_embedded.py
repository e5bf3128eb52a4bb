"""The embedded store: round trips, verification on read, pins, CAR v1."""

from __future__ import annotations

import io
import os

import pytest

from scanseal.errors import IntegrityError, InvalidInput, NotFound
from scanseal.storage import CID, EmbeddedStore, cid_of, export_car, import_car, open_store
from scanseal.storage._car import car_header

CHUNK = 256 * 1024


@pytest.fixture
def store(tmp_path):
    with EmbeddedStore(tmp_path / "blocks") as opened:
        yield opened


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_round_trip(store, size):
    data = os.urandom(size)
    cid = store.put(io.BytesIO(data))
    assert cid == cid_of(io.BytesIO(data))
    with store.get(cid) as stream:
        assert stream.read() == data
    assert store.has(cid)
    stat = store.stat(cid)
    assert (stat.size, stat.pinned) == (size, True)
    assert stat.blocks == (1 if size <= CHUNK else size // CHUNK + 2)


def test_identical_chunks_are_stored_once(store):
    cid = store.put(io.BytesIO(bytes(4 * CHUNK)))
    assert store.stat(cid).blocks == 2  # one zero leaf, one root
    with store.get(cid) as stream:
        assert stream.read() == bytes(4 * CHUNK)


def _flip_block(store, cid, at=0):
    path, offset, _length = store.block_location(cid)
    with open(path, "r+b") as pack:
        pack.seek(offset + at)
        byte = pack.read(1)
        pack.seek(offset + at)
        pack.write(bytes([byte[0] ^ 1]))


def _leaves(store, cid):
    from scanseal.storage._dagpb import decode_file_node

    root = CID.parse(cid)
    return [link.cid for link in decode_file_node(store.read_block(root), root).links]


def test_a_rotten_leaf_raises_integrity_error_naming_it(store):
    data = os.urandom(3 * CHUNK)
    cid = store.put(io.BytesIO(data))
    bad = _leaves(store, cid)[1]
    _flip_block(store, bad, at=1234)
    stream = store.get(cid)
    assert stream.read(CHUNK) == data[:CHUNK]  # bytes before the bad block are fine
    with pytest.raises(IntegrityError, match=str(bad)):
        stream.read()


def test_a_rotten_root_is_refused_before_any_byte(store):
    cid = store.put(io.BytesIO(os.urandom(2 * CHUNK)))
    _flip_block(store, CID.parse(cid), at=5)
    with pytest.raises(IntegrityError, match=cid), store.get(cid) as stream:
        stream.read(1)


def test_a_rotten_single_block_object(store):
    cid = store.put(io.BytesIO(b"hello"))
    _flip_block(store, CID.parse(cid))
    with pytest.raises(IntegrityError, match=cid), store.get(cid) as stream:
        stream.read()


def test_unknown_cid_is_not_found(store):
    with pytest.raises(NotFound):
        store.get(cid_of(io.BytesIO(b"never stored")))
    assert not store.has(cid_of(io.BytesIO(b"never stored")))


def test_pin_and_unpin(store):
    cid = store.put(io.BytesIO(b"x" * 10))
    assert store.pins() == [cid]
    store.unpin(cid)
    store.unpin(cid)  # idempotent
    assert store.pins() == []
    store.pin(cid)
    assert store.pins() == [cid]
    with pytest.raises(NotFound):
        store.pin(cid_of(io.BytesIO(b"absent")))


def test_store_survives_reopening(tmp_path):
    with EmbeddedStore(tmp_path / "b") as first:
        cid = first.put(io.BytesIO(b"persist" * 100_000))
    with EmbeddedStore(tmp_path / "b") as second, second.get(cid) as stream:
        assert stream.read() == b"persist" * 100_000


def test_a_failed_put_leaves_no_index_entry(store):
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk gone")
            return b"a" * n

    with pytest.raises(OSError, match="disk gone"):
        store.put(Broken())
    assert store.pins() == []
    assert list(store.packs.iterdir()) == []


def test_open_store_defaults_to_embedded_under_scanseal_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SCANSEAL_HOME", str(tmp_path / "home"))
    for key in [k for k in os.environ if k.startswith("SCANSEAL_STORAGE_")] + ["SCANSEAL_CONFIG"]:
        monkeypatch.delenv(key, raising=False)
    with open_store() as opened:
        assert isinstance(opened, EmbeddedStore)
        assert opened.root == tmp_path / "home" / "blocks"


# CAR v1


def test_car_round_trip_between_two_stores(tmp_path, store):
    data = os.urandom(5 * CHUNK + 3)
    cid = store.put(io.BytesIO(data))
    car = b"".join(export_car(store, cid))
    assert car.startswith(car_header(CID.parse(cid)))
    with EmbeddedStore(tmp_path / "other") as other:
        assert import_car(other, io.BytesIO(car)) == [cid]
        with other.get(cid) as stream:
            assert stream.read() == data
        assert other.pins() == [cid]


def test_car_header_is_canonical_dag_cbor():
    cid = CID.parse("bafybeidrpuubzkdnzjzz6bz7imvbermny6xduifgiihg6j7wbjvkmcgkta")
    header = car_header(cid)
    assert header[0] == len(header) - 1
    assert header[1:] == (b"\xa2eroots\x81\xd8\x2a\x58\x25\x00" + cid.to_bytes() + b"gversion\x01")


def test_car_with_a_tampered_block_is_refused(tmp_path, store):
    cid = store.put(io.BytesIO(os.urandom(2 * CHUNK)))
    car = bytearray(b"".join(export_car(store, cid)))
    car[-10] ^= 0xFF
    with EmbeddedStore(tmp_path / "other") as other:
        with pytest.raises(IntegrityError):
            import_car(other, io.BytesIO(bytes(car)))
        assert not other.has(cid)
        assert other.pins() == []


def test_truncated_or_foreign_car_is_invalid_input(tmp_path, store):
    cid = store.put(io.BytesIO(os.urandom(2 * CHUNK)))
    car = b"".join(export_car(store, cid))
    with EmbeddedStore(tmp_path / "other") as other:
        with pytest.raises(InvalidInput):
            import_car(other, io.BytesIO(car[:-100]))
        with pytest.raises(InvalidInput):
            import_car(other, io.BytesIO(b"\x0a\xa1gversion\x02" + b"\0" * 40))
        with pytest.raises(InvalidInput):
            import_car(other, io.BytesIO(b"not a car at all"))


def test_car_missing_blocks_cannot_be_pinned(tmp_path, store):
    cid = store.put(io.BytesIO(os.urandom(2 * CHUNK)))
    header = car_header(CID.parse(cid))
    with EmbeddedStore(tmp_path / "other") as other, pytest.raises(NotFound):
        import_car(other, io.BytesIO(header))


def test_a_dag_whose_sizes_lie_is_refused(store):
    """A root that hashes correctly but claims more bytes than its leaves hold."""
    from scanseal.storage._builder import DagBuilder
    from scanseal.storage._cid import DAG_PB
    from scanseal.storage._dagpb import Link, encode_file_node

    leaves = []
    builder = DagBuilder(lambda cid, block: leaves.append((cid, block)))
    builder.feed(b"a" * CHUNK + b"b" * 10)
    builder.finish()
    raw = [(cid, block) for cid, block in leaves if cid.codec != DAG_PB]
    links = [Link(cid, len(block)) for cid, block in raw]
    lying = encode_file_node(links, CHUNK + 11, [CHUNK, 11])
    root = CID.of_block(DAG_PB, lying)
    with store.batch() as pack:
        for cid, block in [*raw, (root, lying)]:
            pack.add(cid, block)
    with pytest.raises(IntegrityError, match="parent says 11"), store.get(str(root)) as stream:
        stream.read()


_BOUNDED_MEMORY_SCRIPT = """
import io, sys, tracemalloc
from pathlib import Path
from scanseal.storage import EmbeddedStore

CHUNK = 256 * 1024


class Zeros(io.RawIOBase):
    left = 32 << 20

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


with EmbeddedStore(Path(sys.argv[1])) as store:
    tracemalloc.start()
    cid = store.put(io.BufferedReader(Zeros(), CHUNK))
    with store.get(cid) as stream:
        while stream.read(1 << 20):
            pass
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
print(peak)
"""


def test_put_and_get_stream_in_bounded_memory(tmp_path):
    """32 MiB through put and get while Python allocations stay near a few chunks.

    Measured in a fresh interpreter: tracemalloc counts every thread's allocations, and a
    background thread left by another test (a server, a timer) would otherwise be billed here.
    """
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _BOUNDED_MEMORY_SCRIPT, str(tmp_path / "blocks")],
        capture_output=True,
        text=True,
        check=True,
    )
    peak = int(done.stdout.strip())
    assert 0 < peak < 8 * CHUNK, f"peak {peak} bytes"
