"""Pixel digest: the documented vector, invariance under lossless rewrites, sensitivity."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from corpus import make_dicom
from scanseal.ingest import iter_frames, validate
from scanseal.integrity.pixels import pixel_digest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

# docs/INGEST.md, "Pixel digest": a 2×3 16-bit gray image.
VECTOR_ARRAY = np.array([[0, 1, 2], [256, 65535, 4660]], dtype=np.uint16)
VECTOR_CANONICAL = bytes.fromhex(
    "7363616e7365616c2f706978656c732f7631"  # b"scanseal/pixels/v1"
    "00000002"
    "00000003"
    "00000001"
    "00000001"
    "7532"  # rows cols frames samples b"u2"
    "0000"
    "0100"
    "0200"
    "0001"
    "ffff"
    "3412"  # pixels, C order, little-endian
)
VECTOR_DIGEST = "9496cca55714891793cfc9297ce665dfa8f402f59a123165d6160718bbc1c742"


def test_vector_from_dicom_and_png(tmp_path):
    import hashlib

    assert hashlib.sha256(VECTOR_CANONICAL).hexdigest() == VECTOR_DIGEST
    dicom = make_dicom(tmp_path / "v.dcm", VECTOR_ARRAY)
    png = tmp_path / "v.png"
    Image.fromarray(VECTOR_ARRAY).save(png)
    assert pixel_digest(dicom).hex() == VECTOR_DIGEST  # raw fast path
    assert pixel_digest(png).hex() == VECTOR_DIGEST  # decoded path, another container


def _volume(frames: int = 3, rows: int = 32, cols: int = 40) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 4096, size=(frames, rows, cols), dtype=np.uint16)


@pytest.fixture
def original(tmp_path):
    return make_dicom(tmp_path / "orig.dcm", _volume(), modality="CT", BitsStored=12, HighBit=11)


def _rewrite(src, dst, change) -> object:
    ds = pydicom.dcmread(src)
    change(ds)
    ds.save_as(dst, enforce_file_format=True)
    return dst


def _to_implicit(ds) -> None:
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


def _header_rewrite(ds) -> None:
    ds.file_meta.ImplementationVersionName = "OTHER_PACS_9"
    ds.file_meta.ImplementationClassUID = "1.2.3.4.5.6"
    ds.PatientName = "Renamed^By^PACS"
    ds.InstitutionName = "Another Hospital"


def _private_and_padding(ds) -> None:
    block = ds.private_block(0x0099, "SCANSEAL TEST", create=True)
    block.add_new(0x01, "LO", "private value")
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 256)  # Data Set Trailing Padding


@pytest.mark.parametrize(
    "change",
    [
        _to_implicit,
        _header_rewrite,
        _private_and_padding,
        lambda ds: ds.compress(RLELossless),
        lambda ds: ds.compress(JPEG2000Lossless),
    ],
    ids=["implicit VR", "header rewrite", "private tags + padding", "RLE", "JPEG 2000 lossless"],
)
def test_digest_survives_lossless_rewrites(tmp_path, original, change):
    rewritten = _rewrite(original, tmp_path / "rewritten.dcm", change)
    assert rewritten.read_bytes() != original.read_bytes()
    assert pixel_digest(rewritten) == pixel_digest(original)


def test_digest_survives_padding_removal(tmp_path, original):
    padded = _rewrite(original, tmp_path / "padded.dcm", _private_and_padding)
    stripped = _rewrite(padded, tmp_path / "stripped.dcm", lambda ds: ds.pop(0xFFFCFFFC))
    assert pixel_digest(stripped) == pixel_digest(padded) == pixel_digest(original)


@pytest.mark.parametrize("encode", [None, RLELossless], ids=["native", "RLE"])
def test_one_pixel_changes_the_digest(tmp_path, encode):
    volume = _volume()
    base = make_dicom(tmp_path / "a.dcm", volume)
    changed_volume = volume.copy()
    changed_volume[2, 31, 39] ^= 1
    changed = make_dicom(tmp_path / "b.dcm", changed_volume)
    if encode is not None:
        for path in (base, changed):
            _rewrite(path, path, lambda ds: ds.compress(encode))
    assert pixel_digest(base) != pixel_digest(changed)


def test_frame_order_matters(tmp_path):
    volume = _volume()
    a = make_dicom(tmp_path / "a.dcm", volume)
    b = make_dicom(tmp_path / "b.dcm", volume[::-1].copy())
    assert pixel_digest(a) != pixel_digest(b)


def test_shape_is_bound(tmp_path):
    flat = np.arange(24, dtype=np.uint8)
    a = make_dicom(tmp_path / "a.dcm", flat.reshape(4, 6))
    b = make_dicom(tmp_path / "b.dcm", flat.reshape(6, 4))
    assert pixel_digest(a) != pixel_digest(b)


def test_unused_high_bits_fast_path_equals_decoding(tmp_path):
    """Unsigned 12-bit data with junk in bits 12-15: raw bytes and decoded frames agree."""
    volume = _volume() | np.uint16(0xA000)
    native = make_dicom(tmp_path / "n.dcm", volume, BitsStored=12, HighBit=11)
    rle = _rewrite(native, tmp_path / "r.dcm", lambda ds: ds.compress(RLELossless))
    assert pixel_digest(native) == pixel_digest(rle)


def test_signed_12_bit_is_hashed_as_decoded(tmp_path):
    volume = (_volume().astype(np.int16) - 2048).astype(np.int16)
    native = make_dicom(tmp_path / "s.dcm", volume, BitsStored=12, HighBit=11)
    rle = _rewrite(native, tmp_path / "sr.dcm", lambda ds: ds.compress(RLELossless))
    assert pixel_digest(native) == pixel_digest(rle)
    assert next(iter_frames(native)).dtype == np.int16


def test_frames_stream_with_bounded_memory(tmp_path):
    volume = np.resize(_volume(), (64, 256, 256)).astype(np.uint16)  # 8 MiB decoded
    path = make_dicom(tmp_path / "mf.dcm", volume)
    rle = _rewrite(path, tmp_path / "mf_rle.dcm", lambda ds: ds.compress(RLELossless))
    for candidate in (path, rle):
        tracemalloc.start()
        try:
            pixel_digest(candidate)
            validate(candidate)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < volume.nbytes // 4, (candidate.name, peak)
    assert pixel_digest(path) == pixel_digest(rle)
