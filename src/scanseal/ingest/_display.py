"""The middle frame as a reader sees it: grey, at its own size, through the file's own window.

The detector's plane (:func:`scanseal.ingest.preprocess`) is 224×224 with one fixed window, made
for the model. A person checking a heat map needs the image as a viewer shows it: every pixel,
its own aspect, and for DICOM the window the modality chose (VOI LUT Sequence, or the first
WindowCenter/WindowWidth pair, through pydicom's ``apply_voi_lut``). Rules in docs/INGEST.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

from scanseal.ingest._common import mapped_errors
from scanseal.ingest._image import IngestedImage, read_image
from scanseal.ingest._preprocess import _luminance, _normalise, _window

Grey = np.ndarray[Any, np.dtype[np.float32]]
_EXTREMES = np.array([-1e30, 1e30])
"""Far below and above any stored value: the window maps them to its output range's ends."""


def display_frame(source: Path | IngestedImage) -> Grey:
    """The middle frame (the one the detector screens; of a Siemens mosaic, its middle slice)
    as float32 (rows, cols) in [0, 1].

    DICOM grey: Modality LUT, then the file's own VOI LUT or window, else the detector's CT
    window for CT and the robust percentile range otherwise; MONOCHROME1 inverted. Colour
    (RGB, YBR, PALETTE COLOR, PNG and JPEG RGB) becomes BT.601 luma. 8-bit PNG and JPEG are
    shown as stored; deeper ones through the percentile range. InvalidInput for a bad file.
    """
    image = source if isinstance(source, IngestedImage) else read_image(Path(source))
    frame = image.screened_frame(as_rgb=True)
    header = image._dicom  # ingest's own: the dataset's lookup tables and window
    if header is None:
        grey = _luminance(frame)
        return _float32(grey / 255.0 if frame.dtype == np.uint8 else _normalise(grey))
    ds, photometric = header.dataset, header.pixels.photometric
    with mapped_errors(image.path, "cannot apply DICOM lookup tables"):
        if photometric == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        if frame.ndim == 3:
            return _float32(_unit_colour(frame))
        values = np.asarray(apply_modality_lut(frame, ds), dtype=np.float64)
    shown = _own_window(values, ds)
    if shown is None:
        shown = _window(values) if header.metadata.modality == "CT" else _normalise(values)
    return _float32(1.0 - shown if photometric == "MONOCHROME1" else shown)


def _own_window(values: np.ndarray[Any, Any], ds: Dataset) -> np.ndarray[Any, Any] | None:
    """``values`` through the dataset's VOI LUT or first window, scaled to [0, 1]; None when
    the file has neither or its window is unusable (a width below 1, a garbled value)."""
    has_window = "WindowCenter" in ds and "WindowWidth" in ds
    if not (ds.get("VOILUTSequence") or has_window):
        return None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            shown = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float64)
            low, high = np.asarray(apply_voi_lut(_EXTREMES.copy(), ds, index=0), np.float64)
    except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError, IndexError):
        return None
    low, high = min(low, high), max(low, high)
    if not np.isfinite([low, high]).all() or not high > low:
        return None
    scaled: np.ndarray[Any, Any] = np.clip((shown - low) / (high - low), 0.0, 1.0)
    return scaled


def _unit_colour(frame: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Luma of an RGB frame, scaled by its sample type's full range (8 or 16 bits)."""
    luma = _luminance(frame)
    if frame.dtype.kind in "ui":
        return np.clip(luma / float(np.iinfo(frame.dtype).max), 0.0, 1.0)
    return _normalise(luma)


def _float32(values: np.ndarray[Any, Any]) -> Grey:
    return np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
