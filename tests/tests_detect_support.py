"""Images the shipped detector flags or clears, from the held-out check set (for CLI, transfer
and DICOM tests)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from corpus import make_dicom
from scanseal.detect import default_detector
from scanseal.detect.training import synth
from scanseal.detect.training.data import check_set


@functools.cache
def _scored() -> tuple[list[synth.Sample], np.ndarray]:
    samples = synth.balanced_set(np.random.default_rng(4242), check_set())
    scores, _ = default_detector().score_planes(np.stack([s.plane for s in samples]))
    return samples, scores


def flagged_plane() -> np.ndarray:
    """The tampered held-out plane the model is most certain about."""
    samples, scores = _scored()
    tampered = [i for i, s in enumerate(samples) if s.tampered]
    return samples[max(tampered, key=lambda i: scores[i])].plane


def save_png16(plane: np.ndarray, path: Path) -> Path:
    """Store a plane losslessly enough (16-bit gray PNG) for screening from the file."""
    Image.fromarray((np.clip(plane, 0, 1) * 65535 + 0.5).astype(np.uint16)).save(path)
    return path


def flagged_dicom(path: Path, modality: str = "CT") -> Path:
    """:func:`flagged_plane` as a 16-bit DICOM the shipped model flags too. A CT holds it as
    HU −1000…1000 (intercept −1000), the window preprocessing gives CT, so the model sees the
    plane itself. The SOP Instance UID derives from the file name: give each instance sent to
    one gateway a name of its own."""
    if modality == "CT":
        pixels = (np.clip(flagged_plane(), 0, 1) * 2000 + 0.5).astype(np.uint16)
        return make_dicom(path, pixels, modality=modality, RescaleIntercept=-1000, RescaleSlope=1)
    pixels = (np.clip(flagged_plane(), 0, 1) * 65535 + 0.5).astype(np.uint16)
    return make_dicom(path, pixels, modality=modality)
