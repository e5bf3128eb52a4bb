"""Turn any accepted image into the detector's input: one float32 (size, size) plane in [0, 1].

The same function runs at training and at inference, so a model never sees differently
normalised inputs. Constants are documented in docs/INGEST.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
from PIL import Image
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

from scanseal.errors import InvalidInput, Unreadable
from scanseal.ingest import _dicom, _raster
from scanseal.ingest._common import fail, mapped_errors
from scanseal.ingest._detect import detect_format

CT_WINDOW_HU: Final[tuple[float, float]] = (-1000.0, 1000.0)
"""CT window in Hounsfield units: air and lung through soft tissue to dense bone, one window
so lung nodules and soft-tissue edits are both visible to the detector."""

PERCENTILES: Final[tuple[float, float]] = (0.5, 99.5)
"""Robust range for everything but CT: a few hot or dead pixels cannot squash the contrast."""

_LUMA: Final = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as in JPEG's YCbCr


Box = tuple[float, float, float, float]
"""A crop as fractions of the frame: top, left, height, width."""

WHOLE: Final[Box] = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class _Values:
    """A decoded frame before normalisation: Hounsfield units for CT, luminance otherwise."""

    values: np.ndarray[Any, np.dtype[np.float64]]
    mode: Literal["ct", "range", "inverted"]


def preprocess(path: Path, size: int = 224) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Return the middle frame as float32 (size, size) in [0, 1], normalised as documented."""
    path = Path(path)
    _check_size(path, size)
    return _finish(_frame_values(path, None), WHOLE, size)


def preprocess_views(
    path: Path, frame: int, boxes: Sequence[Box], size: int = 224
) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    """Planes of one frame cropped to each box, each normalised as :func:`preprocess`
    normalises a whole image (the crop is an image with a smaller field of view).

    The frame is decoded once for all boxes. Training uses this to draw more authentic images
    from the few real studies it has: other frames, other fields of view."""
    path = Path(path)
    _check_size(path, size)
    values = _frame_values(path, frame)
    return [_finish(values, box, size) for box in boxes]


def _frame_values(path: Path, frame: int | None) -> _Values:
    """Decode frame ``frame`` (the middle one if None) of any accepted format."""
    fmt = detect_format(path)
    if fmt == "dicom":
        header = _dicom.read_header(path)
        count = header.metadata.frames
        if frame is None:
            frame = count // 2
        elif not 0 <= frame < count:
            fail(path, f"no frame {frame}: frames are numbered 0 to {count - 1}")
        return _dicom_values(path, header, frame)
    if frame not in (None, 0):
        fail(path, f"no frame {frame}: a {fmt.upper()} file has frame 0 only")
    return _Values(_luminance(_raster.decode(path, fmt)[1]), "range")


def _check_size(path: Path, size: int) -> None:
    if size < 1:
        raise InvalidInput(f"{path.name}: preprocess size must be positive, got {size}")


def decode_frame(path: Path, header: _dicom.DicomHeader, index: int) -> np.ndarray[Any, Any]:
    """Frame ``index`` alone, colour converted to RGB (YBR) but palettes not looked up."""
    frame = next(_dicom.iter_frames(path, header, indices=[index], raw=False), None)
    if frame is None:
        fail(path, f"undecodable Pixel Data: frame {index} missing", Unreadable)
    return frame


def _dicom_values(path: Path, header: _dicom.DicomHeader, index: int) -> _Values:
    """Decode frame ``index`` (colour converted to RGB) and say how to normalise it."""
    frame = decode_frame(path, header, index)
    ds, photometric = header.dataset, header.layout.photometric
    with mapped_errors(path, "cannot apply DICOM lookup tables"):
        if photometric == "PALETTE COLOR":
            return _Values(_luminance(apply_color_lut(frame, ds)), "range")
        if frame.ndim == 3:
            return _Values(_luminance(frame), "range")
        if header.metadata.modality == "CT":
            return _Values(np.asarray(apply_modality_lut(frame, ds), dtype=np.float64), "ct")
    mode: Literal["range", "inverted"] = "inverted" if photometric == "MONOCHROME1" else "range"
    return _Values(frame.astype(np.float64), mode)


def _finish(frame: _Values, box: Box, size: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Crop to ``box``, normalise (CT window or robust range, inverted for MONOCHROME1), resize."""
    values = _crop(frame.values, box)
    if frame.mode == "ct":
        return _resize(_window(values), size)
    plane = _normalise(values)
    return _resize(1.0 - plane if frame.mode == "inverted" else plane, size)


def _crop(values: np.ndarray[Any, np.dtype[np.float64]], box: Box) -> np.ndarray[Any, Any]:
    rows, cols = values.shape
    top, left, height, width = box
    y0, x0 = round(top * rows), round(left * cols)
    y1 = min(rows, max(y0 + 1, round((top + height) * rows)))
    x1 = min(cols, max(x0 + 1, round((left + width) * cols)))
    return values[y0:y1, x0:x1]


def _luminance(array: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Gray stays as is; RGB becomes BT.601 luma."""
    values = array.astype(np.float64)
    return values if values.ndim == 2 else values[..., :3] @ _LUMA


def _window(hu: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Map the CT window linearly to [0, 1], clipping outside it."""
    low, high = CT_WINDOW_HU
    return np.clip((hu - low) / (high - low), 0.0, 1.0)


def _normalise(
    values: np.ndarray[Any, np.dtype[np.float64]],
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Map the robust percentile range to [0, 1]; a flat image becomes all zeros."""
    low, high = np.percentile(values, PERCENTILES)
    if not high > low:
        return np.zeros_like(values)
    scaled: np.ndarray[Any, np.dtype[np.float64]] = np.clip((values - low) / (high - low), 0, 1)
    return scaled


def _resize(
    plane: np.ndarray[Any, np.dtype[np.float64]], size: int
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging."""
    rows, cols = plane.shape
    shrinking = rows >= size and cols >= size
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    image = Image.fromarray(plane.astype(np.float32))
    resized = np.asarray(image.resize((size, size), method), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)
