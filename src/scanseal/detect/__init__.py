"""Tamper detection: a small CNN that scores an image and maps where it was manipulated.

Hashes prove an image did not change after sealing; they say nothing about an image edited
before it. This package screens images with a committed ONNX model on onnxruntime (one CPU
thread, no torch): a calibrated score in [0, 1], the model's threshold, and a coarse heat map
turned into ``[x, y, w, h]`` boxes. Training lives in :mod:`scanseal.detect.training` (the
``train`` extra) and is never imported here. The model card is docs/MODEL.md.

    from scanseal.detect import default_detector
    result = default_detector().screen(Path("scan.dcm"))
    result.tampered, result.score, result.regions
"""

from __future__ import annotations

from scanseal.detect._detector import (
    POLICIES,
    Detector,
    Policy,
    Screening,
    default_detector,
)

__all__ = ["POLICIES", "Detector", "Policy", "Screening", "default_detector"]
