"""The ingested-image object: frames on demand, the middle one kept, the raw-bytes range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from corpus import make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import iter_frames, preprocess, read_image, read_metadata


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
