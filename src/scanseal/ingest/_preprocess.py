"""Turn any accepted image into the detector's input: one float32 (size, size) plane in [0, 1].

The same function runs at training and at inference, so a model never sees differently
normalised inputs. Constants are documented in docs/INGEST.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

from scanseal.errors import InvalidInput
from scanseal.ingest import _dicom, _raster
from scanseal.ingest._common import fail, mapped_errors
from scanseal.ingest._detect import detect_format

CT_WINDOW_HU: Final[tuple[float, float]] = (-1000.0, 1000.0)
"""CT window in Hounsfield units: air and lung through soft tissue to dense bone, one window
so lung nodules and soft-tissue edits are both visible to the detector."""

PERCENTILES: Final[tuple[float, float]] = (0.5, 99.5)
"""Robust range for everything but CT: a few hot or dead pixels cannot squash the contrast."""

_LUMA: Final = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as in JPEG's YCbCr


def preprocess(path: Path, size: int = 224) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Return the middle frame as float32 (size, size) in [0, 1], normalised as documented."""
    path = Path(path)
    if size < 1:
        raise InvalidInput(f"{path.name}: preprocess size must be positive, got {size}")
    fmt = detect_format(path)
    if fmt == "dicom":
        plane = _dicom_plane(path)
    else:
        plane = _normalise(_luminance(_raster.decode(path, fmt)[1]))
    return _resize(plane, size)


def _dicom_plane(path: Path) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Decode the middle frame (colour converted to RGB) and normalise it."""
    header = _dicom.read_header(path)
    middle = header.metadata.frames // 2
    frames = _dicom.iter_frames(path, header, indices=[middle], raw=False)
    frame = next(frames, None)
    if frame is None:
        fail(path, f"undecodable Pixel Data: frame {middle} missing")
    ds, photometric = header.dataset, header.layout.photometric
    with mapped_errors(path, "cannot apply DICOM lookup tables"):
        if photometric == "PALETTE COLOR":
            return _normalise(_luminance(apply_color_lut(frame, ds)))
        if frame.ndim == 3:
            return _normalise(_luminance(frame))
        if header.metadata.modality == "CT":
            return _window(np.asarray(apply_modality_lut(frame, ds), dtype=np.float64))
    plane = _normalise(frame.astype(np.float64))
    return 1.0 - plane if photometric == "MONOCHROME1" else plane


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
