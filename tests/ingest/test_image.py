"""The ingested-image object: frames on demand, the middle one kept, the raw-bytes range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from corpus import make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import iter_frames, preprocess, read_image, read_image_bytes, read_metadata
from scanseal.integrity.pixels import pixel_digest


def _shipped(name: str) -> Path:
    return Path(get_testdata_file(name))


def test_header_is_read_once_and_matches_read_metadata():
    path = _shipped("emri_small_RLE.dcm")
    image = read_image(path)
    assert image.path == path
    assert image.format == "dicom"
    assert image.metadata == read_metadata(path)
    assert image.middle == 5


def test_frames_stream_and_a_frame_by_index_is_the_same_frame():
    path = _shipped("emri_small_RLE.dcm")
    image = read_image(path)
    frames = list(image.frames())
    assert len(frames) == 10
    for index in (0, 5, 9):
        assert np.array_equal(image.frame(index), frames[index])
    assert all(np.array_equal(a, b) for a, b in zip(frames, iter_frames(path), strict=True))


def test_the_middle_frame_is_kept_read_only():
    image = read_image(_shipped("emri_small_RLE.dcm"))
    middle = image.frame(image.middle)
    assert image.frame(image.middle) is middle
    assert not middle.flags.writeable
    assert image.frame(1) is not image.frame(1)  # other frames are not kept


def test_a_single_frame_is_decoded_once_for_screening_and_the_digest(tmp_path):
    image = read_image(make_png(tmp_path / "a.png", 20, 30))
    plane = preprocess(image, 16)
    (frame,) = list(image.frames())
    assert frame is image.frame(0)
    assert np.array_equal(plane, preprocess(tmp_path / "a.png", 16))


@pytest.mark.parametrize(("source", "reason"), [
    ("emri_small_RLE.dcm", r"no frame 10: frames are numbered 0 to 9"),
    ("png", r"no frame 1: a PNG file has frame 0 only"),
])  # fmt: skip
def test_a_missing_frame_is_refused(tmp_path, source, reason):
    path = make_png(tmp_path / "a.png", 8, 8) if source == "png" else _shipped(source)
    with pytest.raises(InvalidInput, match=reason):
        read_image(path).frame(10 if source != "png" else 1)


def test_raw_pixels_is_the_pixel_data_range_of_native_little_endian_dicom(tmp_path):
    path = _shipped("CT_small.dcm")
    raw = read_image(path).raw_pixels()
    assert raw is not None
    assert raw.dtype == np.dtype("<i2")
    stored = b"".join(raw.chunks(size=1000))
    assert len(stored) == raw.length == 128 * 128 * 2
    assert stored == next(iter_frames(path)).astype("<i2").tobytes()
    assert read_image(_shipped("MR_small_RLE.dcm")).raw_pixels() is None
    assert read_image(make_png(tmp_path / "a.png", 8, 8)).raw_pixels() is None


def test_a_file_shrinking_under_the_raw_reader_is_refused(tmp_path):
    path = tmp_path / "ct.dcm"
    path.write_bytes(_shipped("CT_small.dcm").read_bytes())
    raw = read_image(path).raw_pixels()
    assert raw is not None
    path.write_bytes(path.read_bytes()[: raw.offset + 10])
    with pytest.raises(InvalidInput, match="Pixel Data ends early"):
        b"".join(raw.chunks())


_IN_MEMORY = ["CT_small.dcm", "MR_small_RLE.dcm", "emri_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm",
              "image_dfl.dcm", "rtplan.dcm", "reportsi.dcm"]  # fmt: skip


@pytest.mark.parametrize("name", _IN_MEMORY)
def test_bytes_in_memory_are_ingested_as_their_file(name):
    """A received instance is ingested from its bytes: metadata, frames, the raw Pixel Data
    range, the data set and the pixel digest are the file's."""
    path = _shipped(name)
    from_file, in_memory = read_image(path), read_image_bytes(path.read_bytes(), "x.dcm")
    assert in_memory.path == Path("x.dcm")
    assert in_memory.metadata == from_file.metadata
    assert in_memory.size == from_file.size == path.stat().st_size
    with in_memory.open() as stream:
        assert stream.read() == path.read_bytes()
    for a, b in zip(in_memory.frames(), from_file.frames(), strict=True):
        assert np.array_equal(a, b)
    raw, raw_file = in_memory.raw_pixels(), from_file.raw_pixels()
    assert (raw is None) == (raw_file is None)
    if raw is not None and raw_file is not None:
        assert b"".join(raw.chunks(size=1000)) == b"".join(raw_file.chunks())
    assert in_memory.dataset() == from_file.dataset()
    assert pixel_digest(in_memory) == pixel_digest(path)
    if from_file.has_pixels:
        assert np.array_equal(preprocess(in_memory), preprocess(from_file))


def test_bytes_in_memory_are_refused_as_their_file_naming_the_given_name(tmp_path):
    data = _shipped("CT_small.dcm").read_bytes()
    truncated = tmp_path / "cut.dcm"
    truncated.write_bytes(data[:-1000])
    with pytest.raises(InvalidInput) as from_file:
        read_image(truncated)
    with pytest.raises(InvalidInput) as in_memory:
        read_image_bytes(data[:-1000], "cut.dcm")
    assert in_memory.value.reason == from_file.value.reason
    assert in_memory.value.reason.startswith("cut.dcm: truncated DICOM")
    with pytest.raises(InvalidInput, match=r"^x\.dcm: empty file$"):
        read_image_bytes(b"", "x.dcm")
    png = make_png(tmp_path / "a.png", 8, 8).read_bytes()
    with pytest.raises(InvalidInput, match=r"^x\.dcm: not a DICOM Part 10 file$"):
        read_image_bytes(png, "x.dcm")


def test_a_value_over_the_deferral_size_in_memory_is_ingested_as_its_file(tmp_path):
    """An encapsulated PDF of 2 MB: a file leaves the document on disk until asked for; bytes
    in memory read it whole, and ingest finds the data set's end (no Pixel Data) as it does
    for the file."""
    ds = pydicom.dcmread(_shipped("CT_small.dcm"), stop_before_pixels=True)
    for keyword in (
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "SamplesPerPixel",
        "PixelRepresentation",
        "PhotometricInterpretation",
    ):
        delattr(ds, keyword)  # fmt: skip
    ds.EncapsulatedDocument = b"%PDF-1.4\n" + bytes(range(256)) * 8000 + b"\n%%EOF\n"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    path = tmp_path / "pdf.dcm"
    ds.save_as(path, enforce_file_format=True)
    in_memory = read_image_bytes(path.read_bytes(), "pdf.dcm")
    assert in_memory.metadata == read_image(path).metadata
    assert not in_memory.has_pixels
    assert pixel_digest(in_memory) == pixel_digest(path)
    assert in_memory.header() is not None
    assert in_memory.header().MIMETypeOfEncapsulatedDocument == "application/pdf"
