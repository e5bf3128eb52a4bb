"""Detection by content, PNG/JPEG modes, metadata canonical form, preprocessing."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from corpus import image_array, make_dicom, make_jpeg, make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import (
    ImageMetadata,
    detect_format,
    iter_frames,
    preprocess,
    preprocess_views,
    read_metadata,
    validate,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CANONICAL_VECTOR = (
    '{"acquisition_datetime":null,"bits_allocated":16,"bits_stored":12,"columns":512,'
    '"format":"dicom","frames":1,"modality":"CT","patient_id":"P-1",'
    '"patient_name":"Müller^Anna","rows":512,"samples_per_pixel":1,'
    '"series_instance_uid":"1.2.3.4","sop_instance_uid":"1.2.3.4.5",'
    '"study_datetime":"2024-01-31T08:15:00","study_instance_uid":"1.2.3",'
    '"transfer_syntax_uid":"1.2.840.10008.1.2.1"}'
)
CANONICAL_SHA256 = "87f2670a197c134485a9b60a6577f54e84c8c9545e3f3fa37359823cb52af4d2"
VECTOR_META = ImageMetadata(
    format="dicom", patient_id="P-1", patient_name="Müller^Anna", modality="CT",
    study_instance_uid="1.2.3", series_instance_uid="1.2.3.4", sop_instance_uid="1.2.3.4.5",
    study_datetime="2024-01-31T08:15:00", acquisition_datetime=None, rows=512, columns=512,
    frames=1, samples_per_pixel=1, bits_allocated=16, bits_stored=12,
    transfer_syntax_uid="1.2.840.10008.1.2.1",
)  # fmt: skip


def test_canonical_bytes_vector():
    data = VECTOR_META.canonical_bytes()
    assert data == CANONICAL_VECTOR.encode("utf-8")
    assert hashlib.sha256(data).hexdigest() == CANONICAL_SHA256
    assert ImageMetadata.from_dict(VECTOR_META.to_dict()) == VECTOR_META


@pytest.mark.parametrize(
    "change",
    [
        {"rows": "512"},
        {"rows": True},
        {"frames": -1},
        {"format": "gif"},
        {"patient_id": 7},
        {"extra": 1},
    ],
)
def test_from_dict_is_strict(change):
    d = {**VECTOR_META.to_dict(), **change}
    with pytest.raises(InvalidInput):
        ImageMetadata.from_dict(d)


def test_from_dict_missing_key():
    d = VECTOR_META.to_dict()
    del d["rows"]
    with pytest.raises(InvalidInput, match="missing keys \\['rows'\\]"):
        ImageMetadata.from_dict(d)


def test_extension_is_ignored(tmp_path):
    png = make_png(tmp_path / "a.png")
    disguised = tmp_path / "scan.dcm"
    shutil.copy(png, disguised)
    assert detect_format(disguised) == "png"
    dicom = tmp_path / "photo.jpg"
    shutil.copy(get_testdata_file("CT_small.dcm"), dicom)
    assert detect_format(dicom) == "dicom"


@pytest.mark.parametrize(
    ("bits", "rgb", "shape", "dtype"),
    [
        (8, False, (48, 64), np.uint8),
        (16, False, (48, 64), np.uint16),
        (8, True, (48, 64, 3), np.uint8),
    ],
)
def test_png_modes_decode_exactly(tmp_path, bits, rgb, shape, dtype):
    path = make_png(tmp_path / "x.png", bits=bits, rgb=rgb)
    meta = validate(path)
    assert (meta.format, meta.rows, meta.columns, meta.frames) == ("png", 48, 64, 1)
    assert (meta.bits_allocated, meta.samples_per_pixel) == (bits, 3 if rgb else 1)
    (frame,) = list(iter_frames(path))
    assert frame.shape == shape
    assert frame.dtype == dtype
    assert np.array_equal(frame, image_array(48, 64, bits=bits, rgb=rgb))


@pytest.mark.parametrize(("mode", "samples"), [("P", 3), ("LA", 1), ("RGBA", 3), ("1", 1)])
def test_png_conversions(tmp_path, mode, samples):
    path = tmp_path / f"{mode}.png"
    Image.fromarray(image_array(20, 30, rgb=True)).convert(mode).save(path)
    meta = validate(path)
    assert meta.samples_per_pixel == samples
    assert meta.bits_allocated == 8
    assert next(iter_frames(path)).shape == ((20, 30, 3) if samples == 3 else (20, 30))


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg(tmp_path, rgb, progressive):
    path = make_jpeg(tmp_path / "x.jpg", rgb=rgb, progressive=progressive)
    meta = validate(path)
    assert (meta.format, meta.samples_per_pixel, meta.bits_allocated) == (
        "jpeg",
        3 if rgb else 1,
        8,
    )
    assert preprocess(path).shape == (224, 224)


def test_jpeg_exif_acquisition_time(tmp_path):
    path = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2023:05:06 07:08:09"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    Image.fromarray(image_array(16, 16)).save(path, exif=exif)
    assert read_metadata(path).acquisition_datetime == "2023-05-06T07:08:09+02:00"


def test_dicom_metadata_fields():
    meta = read_metadata(Path(get_testdata_file("CT_small.dcm")))
    assert meta.modality == "CT"
    assert meta.patient_id
    assert meta.sop_instance_uid
    assert meta.study_datetime is not None
    assert meta.study_datetime.startswith("2004-01-19")
    assert meta.acquisition_datetime is not None
    assert "T" in meta.acquisition_datetime
    assert meta.transfer_syntax_uid == "1.2.840.10008.1.2.1"


def test_ct_uses_hounsfield_window(tmp_path):
    """-1000 HU maps to 0, +1000 HU to 1, with RescaleIntercept applied."""
    array = np.zeros((256, 256), np.uint16)
    array[:, 128:] = 2024  # 2024 - 1024 = +1000 HU
    path = make_dicom(tmp_path / "ct.dcm", array, modality="CT",
                      RescaleIntercept=-1024, RescaleSlope=1)  # fmt: skip
    plane = preprocess(path)
    assert plane.dtype == np.float32
    assert plane[:, :100].max() == 0.0  # -1024 HU is below the window: clipped to 0
    assert plane[:, 130:].min() == pytest.approx(1.0)


def test_preprocess_middle_frame_and_small_images(tmp_path):
    volume = np.zeros((3, 8, 10), np.uint8)
    volume[1] = np.arange(80, dtype=np.uint8).reshape(8, 10)
    plane = preprocess(make_dicom(tmp_path / "mf.dcm", volume), size=32)
    assert plane.shape == (32, 32)
    assert plane.max() > 0.9  # frame 1, not the blank frames


def test_preprocess_view_is_the_file_of_its_crop(tmp_path):
    """A view is normalised as a file holding only the crop: same plane, bit for bit."""
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 4096, (3, 300, 400), dtype=np.uint16)
    whole = make_dicom(tmp_path / "mf.dcm", volume)
    crop = make_dicom(tmp_path / "crop.dcm", np.ascontiguousarray(volume[2, 30:270, 100:340]))
    views = preprocess_views(whole, 2, [(0.1, 0.25, 0.8, 0.6), (0.0, 0.0, 1.0, 1.0)])
    assert np.array_equal(views[0], preprocess(crop))
    middle = preprocess_views(whole, 1, [(0.0, 0.0, 1.0, 1.0)])[0]
    assert np.array_equal(middle, preprocess(whole))
    assert not np.array_equal(views[1], middle)  # another frame, another plane


def test_preprocess_view_of_a_missing_frame_is_refused(tmp_path):
    path = make_dicom(tmp_path / "one.dcm", np.zeros((40, 40), np.uint8))
    with pytest.raises(InvalidInput, match="no frame 1: frames are numbered 0 to 0"):
        preprocess_views(path, 1, [(0.0, 0.0, 1.0, 1.0)])
    with pytest.raises(InvalidInput, match="no frame 1: a PNG file has frame 0 only"):
        preprocess_views(make_png(tmp_path / "a.png"), 1, [(0.0, 0.0, 1.0, 1.0)])


def test_preprocess_flat_image_is_zero(tmp_path):
    plane = preprocess(make_dicom(tmp_path / "flat.dcm", np.full((30, 30), 7, np.uint8)))
    assert not plane.any()


def test_preprocess_rejects_bad_size(tmp_path):
    with pytest.raises(InvalidInput):
        preprocess(make_png(tmp_path / "a.png"), size=0)
