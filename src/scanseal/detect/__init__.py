"""Tamper detection: a small CNN that scores an image and maps where it was manipulated.

Hashes prove an image did not change after sealing; they say nothing about an image edited
before it. This package screens images with a committed ONNX model on onnxruntime (one CPU
thread, no torch): a calibrated score in [0, 1], the model's threshold, and a coarse heat map
turned into ``[x, y, w, h]`` boxes (:mod:`scanseal.detect.heat` draws it on the image). That is
all that runs here: the tamper generators, the data sources and the metrics live with training
in :mod:`scanseal.detect.training` (its torch parts need the ``train`` extra), which nothing at
runtime imports. ``MODEL_DIR`` holds the committed model; the model card is docs/MODEL.md.

    from scanseal.detect import default_detector
    result = default_detector().screen(Path("scan.dcm"))
    result.tampered, result.score, result.regions
"""

from __future__ import annotations

from scanseal.detect._detector import (
    MODEL_DIR,
    POLICIES,
    Detector,
    Policy,
    Screening,
    default_detector,
    sigmoid,
)

__all__ = [
    "MODEL_DIR",
    "POLICIES",
    "Detector",
    "Policy",
    "Screening",
    "default_detector",
    "sigmoid",
]
