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

from scanseal.errors import InvalidInput
from scanseal.ingest._common import mapped_errors
from scanseal.ingest._image import IngestedImage, read_image

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


def preprocess(
    source: Path | IngestedImage, size: int = 224
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Return the middle frame as float32 (size, size) in [0, 1], normalised as documented
    (of a Siemens mosaic, its middle slice: :attr:`IngestedImage.screened_region`).

    ``source`` is a file, or an image already ingested (its frame is then decoded once for
    the detector and the pixel digest alike).
    """
    image = _ingested(source, size)
    return _finish(_frame_values(image, image.middle), WHOLE, size)


def preprocess_views(
    source: Path | IngestedImage, frame: int, boxes: Sequence[Box], size: int = 224
) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    """Planes of one frame cropped to each box, each normalised as :func:`preprocess`
    normalises a whole image (the crop is an image with a smaller field of view).

    The frame is decoded once for all boxes. Training uses this to draw more authentic images
    from the few real studies it has: other frames, other fields of view."""
    image = _ingested(source, size)
    values = _frame_values(image, frame)
    return [_finish(values, box, size) for box in boxes]


def _ingested(source: Path | IngestedImage, size: int) -> IngestedImage:
    """The image to preprocess, once ``size`` is known to be usable (checked first)."""
    path = source.path if isinstance(source, IngestedImage) else Path(source)
    if size < 1:
        raise InvalidInput(f"{path.name}: preprocess size must be positive, got {size}")
    return source if isinstance(source, IngestedImage) else read_image(path)


def _frame_values(image: IngestedImage, index: int) -> _Values:
    """Frame ``index`` (colour converted to RGB; a mosaic's middle slice, as screened) and how
    to normalise it."""
    frame = image.region_of(image.frame(index, as_rgb=True))
    header = image._dicom  # ingest's own: the dataset's lookup tables
    if header is None:
        return _Values(_luminance(frame), "range")
    ds, photometric = header.dataset, header.pixels.photometric
    with mapped_errors(image.path, "cannot apply DICOM lookup tables"):
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
