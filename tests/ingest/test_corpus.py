"""Every real DICOM file on this machine: validated, described, digested, preprocessed."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGBaseline8Bit

from corpus import KNOWN_MALFORMED, dicom_corpus, shipped_files
from scanseal.errors import InvalidInput
from scanseal.ingest import ImageMetadata, iter_frames, preprocess, read_metadata, validate
from scanseal.integrity.pixels import canonical_frame_bytes, canonical_header, pixel_digest

CORPUS = dicom_corpus()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _decoded_digest(path) -> bytes:
    """The canonical form computed the slow way: decode every frame, no raw fast path."""
    import hashlib

    meta = read_metadata(path)
    digest = hashlib.sha256()
    for i, frame in enumerate(iter_frames(path)):
        if i == 0:
            digest.update(
                canonical_header(
                    meta.rows, meta.columns, meta.frames, meta.samples_per_pixel, frame.dtype
                )
            )
        digest.update(canonical_frame_bytes(frame))
    return digest.digest()


def test_corpus_is_large_and_deterministic():
    assert len(CORPUS) >= 100
    assert len({p.read_bytes() for p in CORPUS}) == len(CORPUS)  # deduplicated
    assert dicom_corpus() is CORPUS  # cached, same order every call


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_file(path):
    meta = validate(path)
    assert meta == read_metadata(path)
    assert meta.format == "dicom"
    assert meta.rows > 0
    assert meta.columns > 0
    assert meta.frames >= 1
    assert meta.samples_per_pixel in (1, 3)
    assert meta.bits_allocated in (1, 8, 16, 32, 64)
    assert 1 <= meta.bits_stored <= meta.bits_allocated
    assert meta.transfer_syntax_uid
    assert meta.transfer_syntax_uid.startswith("1.2.840.10008.1.2")
    assert ImageMetadata.from_dict(json.loads(meta.canonical_bytes())) == meta

    digest = pixel_digest(path)
    assert len(digest) == 32
    assert pixel_digest(path) == digest
    assert _decoded_digest(path) == digest

    plane = preprocess(path)
    assert plane.shape == (224, 224)
    assert plane.dtype == np.float32
    assert np.isfinite(plane).all()
    assert plane.min() >= 0.0
    assert plane.max() <= 1.0


def test_every_shipped_file_is_accepted_or_refused_cleanly():
    """No shipped file (DICOMDIRs, SRs, broken ones, JSON...) makes a library exception escape."""
    in_corpus = set(CORPUS)
    refused = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in shipped_files():
            try:
                validate(path)
            except InvalidInput as exc:
                refused.append((path, str(exc)))
    for path, message in refused:
        assert "\n" not in message
        assert path.name in message
        assert path not in in_corpus, message
    names = {path.name for path, _ in refused}
    assert set(KNOWN_MALFORMED) <= names
    assert "MR_truncated.dcm" in names
    assert "emri_small_jpeg_2k_lossless_too_short.dcm" in names


def test_sc_rgb_jpeg_really_contradicts_its_transfer_syntax():
    """Why KNOWN_MALFORMED holds SC_rgb_jpeg.dcm: implicit VR data under JPEG Baseline.

    The refusal is not over-strict: pydicom itself only reads the file by guessing, and says
    so; the bytes after the file meta have no VR field where the transfer syntax requires one.
    """
    path = next(p for p in shipped_files() if p.name == "SC_rgb_jpeg.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert not JPEGBaseline8Bit.is_implicit_VR  # PS3.5 A.4: encapsulated means explicit VR
    assert any("Expected explicit VR, but found implicit VR" in str(w.message) for w in caught)
    data = path.read_bytes()
    start = 132 + 12 + struct.unpack("<L", data[140:144])[0]  # after the file meta group
    assert data[start : start + 4] == b"\x08\x00\x08\x00"  # (0008,0008) Image Type
    assert not data[start + 4 : start + 6].isalpha()  # no VR: a 4-byte length follows instead
    length = struct.unpack("<L", data[start + 4 : start + 8])[0]
    value = data[start + 8 : start + 8 + length].decode("ascii").rstrip(" ")
    assert value == "\\".join(ds.ImageType)  # implicit VR read, as pydicom guessed
    with pytest.raises(InvalidInput, match="is not encoded as its transfer syntax"):
        validate(path)


# Files pydicom ships as the same image in several encodings: one pixel digest per group.
SAME_PIXELS = [
    [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_padded.dcm",
    ],
    [
        "emri_small.dcm",
        "emri_small_RLE.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
    ],
    ["OBXXXX1A_2frame.dcm", "OBXXXX1A_expb_2frame.dcm", "OBXXXX1A_rle_2frame.dcm"],
    ["SC_rgb.dcm", "SC_rgb_expb.dcm", "SC_rgb_rle.dcm", "SC_rgb_gdcm2k_uncompressed.dcm"],
    ["SC_rgb_32bit_2frame.dcm", "SC_rgb_expb_32bit_2frame.dcm", "SC_rgb_rle_32bit_2frame.dcm"],
    ["rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm"],
    ["color-pl.dcm", "color-px.dcm"],
    ["RG3_J2KR.dcm", "RG3_UNCR.dcm"],
    ["liver.dcm", "liver_expb.dcm"],
]


@pytest.mark.parametrize("names", SAME_PIXELS, ids=[g[0] for g in SAME_PIXELS])
def test_shipped_lossless_encodings_share_a_digest(names):
    by_name = {p.name: p for p in CORPUS}
    digests = {pixel_digest(by_name[name]) for name in names}
    assert len(digests) == 1
