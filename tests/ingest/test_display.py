"""``display_frame``: the frame a heat map is drawn on, as a viewer shows it (own size, window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from corpus import make_png
from scanseal.errors import InvalidInput
from scanseal.ingest import display_frame, preprocess
from vectors import make_malformed as malformed


def _shipped(name: str) -> Path:
    found = get_testdata_file(name)
    if found is None:
        pytest.skip(f"{name} is not in the installed pydicom / pydicom-data")
    return Path(str(found))


def _hounsfield(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_uses_its_own_window_at_its_own_size():
    """693_UNCR.dcm declares a brain window (centre 40, width 100 HU): 40 HU is mid-grey,
    below −10 black, above 90 white; the detector's wide CT window would give other values."""
    path = _shipped("693_UNCR.dcm")
    shown, hu = display_frame(path), _hounsfield(path)
    assert shown.shape == hu.shape == (512, 512)
    assert shown.dtype == np.float32
    assert np.all(shown[hu <= -10] == 0.0)
    assert np.all(shown[hu > 90] == 1.0)
    inside = (hu > -5) & (hu < 85)
    expected = (hu[inside] - 39.5) / 99 + 0.5  # PS3.3 C.11.2.1.2.1, LINEAR
    assert np.allclose(shown[inside], expected, atol=1e-4)
    assert not np.allclose(shown, np.clip((hu + 1000) / 2000, 0, 1), atol=0.05)


def test_voi_lut_sequence_is_applied():
    """vlut_04.dcm has a VOI LUT Sequence and no window: display follows the LUT, so it is
    a monotonic function of the stored value spanning the LUT's range."""
    path = _shipped("vlut_04.dcm")
    ds = pydicom.dcmread(path)
    shown, raw = display_frame(path), ds.pixel_array.astype(np.int64)
    lut = pydicom.pixels.apply_voi_lut(raw, ds).astype(np.float64)
    table = np.asarray(ds.VOILUTSequence[0].LUTData, np.float64)
    low, high = table.min(), table.max()
    assert np.allclose(shown, (lut - low) / (high - low), atol=1e-5)


def test_non_square_dicom_keeps_rows_and_columns():
    path = _shipped("examples_overlay.dcm")
    assert display_frame(path).shape == (300, 484)


def _rewritten(tmp_path: Path, name: str, **changes: object) -> Path:
    ds = pydicom.dcmread(_shipped(name))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    out = tmp_path / f"changed-{name}"
    ds.save_as(out)
    return out


def test_monochrome1_is_inverted_after_the_window(tmp_path):
    plain = display_frame(_shipped("MR_small.dcm"))
    inverted = display_frame(
        _rewritten(tmp_path, "MR_small.dcm", PhotometricInterpretation="MONOCHROME1")
    )
    assert np.allclose(inverted, 1.0 - plain, atol=1e-6)


def test_unusable_window_falls_back_to_the_percentile_range(tmp_path):
    """A width below 1 is not a LINEAR window (pydicom refuses it): the image is still shown,
    stretched between its 0.5th and 99.5th percentiles, not refused."""
    broken = _rewritten(tmp_path, "MR_small.dcm", WindowWidth=0)
    absent = _rewritten(tmp_path, "MR_small.dcm", WindowWidth=None, WindowCenter=None)
    shown = display_frame(broken)
    assert np.array_equal(shown, display_frame(absent))
    assert shown.min() == 0.0
    assert shown.max() == 1.0


def test_png_is_shown_as_stored_at_its_own_size(tmp_path):
    path = make_png(tmp_path / "wide.png", 50, 100)
    shown = display_frame(path)
    assert shown.shape == (50, 100)
    with Image.open(path) as image:
        assert np.allclose(shown, np.asarray(image, np.float32) / 255, atol=1e-6)
    assert preprocess(path).shape == (224, 224)  # the detector's plane is not this


def test_a_bad_file_is_invalid_input(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(InvalidInput, match=r"bad\.png"):
        display_frame(bad)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", malformed.CASES, ids=[c.name for c in malformed.CASES])
def test_malformed_files_are_refused_as_preprocess_refuses_them(case):
    """Every committed malformed vector gets the same one-line refusal as the detector's input."""
    with pytest.raises(InvalidInput) as info:
        display_frame(case.path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{case.path.name}: "), message
    assert case.expected in message, message
