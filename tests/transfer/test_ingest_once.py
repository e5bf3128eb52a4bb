"""A seal ingests its image once: one header parse, one pixel decode, shared by the detector's
screening and the pixel digest (they used to parse a DICOM header four times and decode a PNG
twice)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pydicom
import pytest
from PIL import Image, ImageFile
from pydicom.data import get_testdata_file
from pydicom.pixels.decoders.base import Decoder

from corpus import make_png
from scanseal.crypto.identity import Identity, Keystore
from scanseal.ingest import read_image
from scanseal.integrity.pixels import pixel_digest
from scanseal.transfer.local import seal_file


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    store = Keystore(tmp_path_factory.mktemp("keys"), scrypt_n=2**10)
    return {name: store.create(name, "pw") for name in ("gateway", "lee")}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts DICOM header parses (dcmread), and decodes: pydicom passes over Pixel Data and
    Pillow loads of image data (a load with tiles left to decode), plus Pillow file opens."""
    counted: Counter[str] = Counter()
    dcmread, iter_array, load, open_ = (
        pydicom.dcmread, Decoder.iter_array, ImageFile.ImageFile.load, Image.open,
    )  # fmt: skip

    def counting_dcmread(*args, **kwargs):
        counted["dcmread"] += 1
        return dcmread(*args, **kwargs)

    def counting_iter_array(self, *args, **kwargs):
        counted["decode"] += 1
        return iter_array(self, *args, **kwargs)

    def counting_load(self):
        counted["decode"] += bool(self.tile)
        return load(self)

    def counting_open(*args, **kwargs):
        counted["open"] += 1
        return open_(*args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", counting_dcmread)
    monkeypatch.setattr(Decoder, "iter_array", counting_iter_array)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    monkeypatch.setattr(Image, "open", counting_open)
    return counted


def _seal(people: dict[str, Identity], source: Path, out: Path, screen: str = "flag"):
    card, gateway = people["lee"].card, people["gateway"]
    return seal_file(source, [card], gateway, out, screen=screen, timestamp=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm"])
def test_a_dicom_seal_parses_the_header_once_and_decodes_once(tmp_path, people, calls, name):
    source = Path(get_testdata_file(name))
    sealed = _seal(people, source, tmp_path / "ct.sseal")
    assert sealed.manifest.screen is not None
    assert calls["dcmread"] == 1
    assert calls["decode"] == 1


def test_a_png_seal_decodes_once(tmp_path, people, calls):
    source = make_png(tmp_path / "scan.png", 64, 64)
    calls.clear()
    sealed = _seal(people, source, tmp_path / "png.sseal")
    assert sealed.manifest.screen is not None
    assert calls["decode"] == 1
    assert calls["open"] == 3  # the header, the CRC check of every chunk, the decode


def test_without_screening_native_dicom_is_hashed_from_its_bytes(tmp_path, people, calls):
    _seal(people, Path(get_testdata_file("CT_small.dcm")), tmp_path / "off.sseal", "off")
    assert calls["dcmread"] == 1
    assert calls["decode"] == 0


def test_the_shared_image_gives_the_digest_of_the_file(tmp_path, people):
    """The digest of an image already screened is the digest of its file read afresh."""
    for source in (
        Path(get_testdata_file("MR_small_RLE.dcm")),
        make_png(tmp_path / "rgb.png", 40, 30, rgb=True),
    ):
        sealed = _seal(people, source, tmp_path / f"{source.stem}.sseal")
        image = read_image(source)
        assert sealed.manifest.pixel_digest == pixel_digest(source) == pixel_digest(image)
        (frame,) = list(image.frames())
        assert frame is image.frame(0)  # decoded once, then kept


def test_an_image_ingested_beforehand_is_not_parsed_again(tmp_path, people, calls):
    source = Path(get_testdata_file("CT_small.dcm"))
    image = read_image(source)
    calls.clear()
    from_image = _seal(people, image, tmp_path / "a.sseal").manifest
    assert calls["dcmread"] == 0
    from_path = _seal(people, source, tmp_path / "b.sseal").manifest
    assert from_image.chain == from_path.chain
    assert from_image.pixel_digest == from_path.pixel_digest
    assert from_image.screen == from_path.screen


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm"])
def test_a_received_instance_is_parsed_once_and_decoded_once(tmp_path, people, calls, name):
    """What the Storage SCP and STOW-RS receive is sealed from its bytes, never staged as a
    file: one header parse, one decode, and the manifest the file's seal would sign."""
    from scanseal.dicom.config import DicomConfig
    from scanseal.dicom.scp import Receiver, read_received

    card = tmp_path / "lee.card.json"
    card.write_text(people["lee"].card.to_json(), "utf-8")
    config = DicomConfig(enabled=True, recipients=(card,))
    receiver = Receiver(None, people["gateway"], config, None)  # type: ignore[arg-type]
    source = Path(get_testdata_file(name))
    calls.clear()
    received = read_received(source.read_bytes())
    sealed = receiver.seal(received, "MODALITY")
    assert calls["dcmread"] == 1
    assert calls["decode"] == 1
    assert sealed.header.SOPInstanceUID == pydicom.dcmread(source).SOPInstanceUID
    from_file = _seal(people, source, tmp_path / "file.sseal").manifest
    assert sealed.manifest.pixel_digest == from_file.pixel_digest
    assert sealed.manifest.chain.h1 == from_file.chain.h1
    assert sealed.manifest.image_size == from_file.image_size == source.stat().st_size
    assert sealed.manifest.screen is not None
    assert sealed.manifest.screen["score"] == from_file.screen["score"]  # type: ignore[index]
