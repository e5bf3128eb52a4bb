"""Sealing into content-addressed storage, and opening by the manifest CID alone."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.errors import IntegrityError, InvalidInput, NotFound
from scanseal.storage import EmbeddedStore, cid_of
from scanseal.transfer.local import open_sealed, seal_file, verify_sealed
from scanseal.transfer.stored import fetch_sealed, publish_manifest


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("gateway", "lee")}


@pytest.fixture
def store(tmp_path: Path):
    with EmbeddedStore(tmp_path / "blocks") as blobs:
        yield blobs


def test_seal_store_fetch_open(tmp_path: Path, people, store) -> None:
    source = make_png(tmp_path / "scan.png", rows=600, cols=700)  # several 256 KiB chunks
    sealed = seal_file(
        source, [people["lee"].card], people["gateway"], tmp_path / "s.sseal", store=store
    )
    assert sealed.manifest.cid is not None
    with sealed.envelope.open("rb") as stream:
        assert cid_of(stream) == sealed.manifest.cid
    receipt = publish_manifest(sealed, store)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fetched = fetch_sealed(receipt, store, inbox)
    opened = open_sealed(fetched, people["lee"], tmp_path / "out.png")
    assert opened.path.read_bytes() == source.read_bytes()
    assert any("CID" in check for check in verify_sealed(fetched).checks)


def test_unknown_cid_is_not_found(tmp_path: Path, store) -> None:
    absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    with pytest.raises(NotFound):
        fetch_sealed(absent, store, tmp_path)


def test_a_cid_that_is_not_a_manifest_is_refused(tmp_path: Path, store) -> None:
    blob = store.put(io.BytesIO(b"not a manifest"))
    with pytest.raises(InvalidInput, match="manifest"):
        fetch_sealed(blob, store, tmp_path)


def test_unstored_manifest_cannot_be_published(tmp_path: Path, people, store) -> None:
    sealed = seal_file(
        make_png(tmp_path / "a.png"), [people["lee"].card], people["gateway"], tmp_path / "a.sseal"
    )
    with pytest.raises(IntegrityError, match="no envelope CID"):
        publish_manifest(sealed, store)


def test_envelope_swapped_on_disk_breaks_the_cid_check(tmp_path: Path, people, store) -> None:
    first = seal_file(
        make_png(tmp_path / "a.png"),
        [people["lee"].card],
        people["gateway"],
        tmp_path / "a.sseal",
        store=store,
    )
    other = seal_file(
        make_png(tmp_path / "b.png", seed=3),
        [people["lee"].card],
        people["gateway"],
        tmp_path / "b.sseal",
    )
    first.envelope.write_bytes(other.envelope.read_bytes())
    with pytest.raises(IntegrityError):
        verify_sealed(first.envelope)
