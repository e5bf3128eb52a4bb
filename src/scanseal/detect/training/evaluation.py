"""Measuring a detector on a balanced set: calibration, the overall, per-family, per-source and
per-modality metrics, and the scores of an exported model through the runtime detector
(numpy and onnxruntime only: the promotion gate and the benches need no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scanseal.detect import Detector, heat, sigmoid
from scanseal.detect.training import metrics, synth


def fit_temperature(labels: np.ndarray[Any, Any], logits: np.ndarray[Any, Any]) -> float:
    """The temperature minimising validation log-loss (grid search; calibration only)."""
    best, best_loss = 1.0, np.inf
    for temperature in np.exp(np.linspace(np.log(0.25), np.log(8), 41)):
        p = np.clip(sigmoid(logits / temperature), 1e-7, 1 - 1e-7)
        loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best


def evaluate(
    samples: list[synth.Sample], scores: np.ndarray[Any, Any], maps: list[Any], threshold: float
) -> dict[str, Any]:
    """Overall, per-family and per-modality metrics on a balanced set."""
    labels = np.array([s.tampered for s in samples])
    predicted = [heat.mask_of(m, synth.SIZE) for m in maps]
    result: dict[str, Any] = {
        "overall": _group(samples, labels, scores, predicted, threshold, np.ones(len(labels), bool))
    }
    negatives = ~labels
    result["families"] = {
        kind: _group(
            samples,
            labels,
            scores,
            predicted,
            threshold,
            np.array([s.family == kind for s in samples]) | negatives,
        )
        for kind in synth.FAMILIES
        if any(s.family == kind for s in samples)
    }
    result["benign"] = {
        kind: float(
            np.mean([scores[i] >= threshold for i, s in enumerate(samples) if s.family == kind])
        )
        for kind in synth.BENIGN
    }
    result["sources"] = _by_source(samples, labels, scores, predicted, threshold)
    modalities = sorted({s.modality for s in samples})
    result["modalities"] = {
        m: _group(
            samples,
            labels,
            scores,
            predicted,
            threshold,
            np.array([s.modality == m for s in samples]),
        )
        for m in modalities
    }
    return result


def _by_source(
    samples: list[synth.Sample],
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    predicted: list[Any],
    threshold: float,
) -> dict[str, dict[str, float]]:
    """The real studies' images and the phantoms apart: phantoms are most of every set, so
    the overall figures say little about real images, where a hospital uses the detector."""
    phantom = np.array([synth.is_phantom(s.modality) for s in samples])
    sources = {"real": ~phantom, "phantom": phantom}
    return {
        name: _group(samples, labels, scores, predicted, threshold, keep)
        for name, keep in sources.items()
        if keep.any()
    }


def _group(
    samples: list[synth.Sample],
    labels: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    predicted: list[Any],
    threshold: float,
    keep: np.ndarray[Any, Any],
) -> dict[str, float]:
    rows = np.nonzero(keep)[0]
    masks = [samples[i].mask for i in rows]
    return metrics.summary(
        labels[rows], scores[rows], threshold, masks, [predicted[i] for i in rows]
    )


def onnx_predict(
    model_dir: Path, samples: list[synth.Sample]
) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Calibrated scores and maps of an exported model (its ONNX file at its card's
    temperature), computed by the runtime :class:`Detector` on one thread, as ``scanseal
    screen`` computes them."""
    return detector_scores(Detector(model_dir), [s.plane for s in samples])


def detector_scores(
    detector: Detector, planes: list[np.ndarray[Any, Any]]
) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """``detector.score_planes`` over any number of planes, 32 at a time."""
    scores: list[np.ndarray[Any, Any]] = []
    maps: list[Any] = []
    for start in range(0, len(planes), 32):
        score, heat_map = detector.score_planes(np.stack(planes[start : start + 32]))
        scores.append(score)
        maps.extend(heat_map)
    return np.concatenate(scores), maps
