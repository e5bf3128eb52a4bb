"""Detection and localisation metrics, numpy only (shared by training, tests and the card).

Labels are 1 for tampered, 0 for authentic; scores are the probability of tampering.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def auc(labels: Array, scores: Array) -> float:
    """Area under the ROC curve by the rank statistic (ties count one half); NaN if one class."""
    labels = np.asarray(labels, bool)
    positives, negatives = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    merged = np.concatenate([negatives, positives])
    _, inverse, counts = np.unique(merged, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average rank of each tie group
    positive_ranks = ranks[len(negatives) :].sum()
    n_pos, n_neg = len(positives), len(negatives)
    return float((positive_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification(labels: Array, scores: Array, threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and AUC at ``threshold`` (score >= threshold: tampered)."""
    truth = np.asarray(labels, bool)
    predicted = np.asarray(scores) >= threshold
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "n": float(len(truth)),
        "accuracy": float((predicted == truth).mean()) if len(truth) else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": auc(truth, scores),
        "false_alarm_rate": fp / float((~truth).sum()) if (~truth).any() else float("nan"),
    }


def detection_at_false_alarm(labels: Array, scores: Array, rate: float = 0.01) -> float:
    """Share of tampered images caught at the strictest threshold with at most ``rate`` of
    authentic images flagged."""
    truth = np.asarray(labels, bool)
    negatives = np.sort(np.asarray(scores)[~truth])[::-1]
    positives = np.asarray(scores)[truth]
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    allowed = int(np.floor(rate * len(negatives)))
    cut = negatives[allowed] if allowed < len(negatives) else -np.inf
    return float((positives > cut).mean())


def localisation(masks: list[Array], predicted: list[Array]) -> dict[str, float]:
    """Mean per-image pixel F1 and IoU over images that have a ground-truth region."""
    f1s, ious = [], []
    for truth, guess in zip(masks, predicted, strict=True):
        truth, guess = np.asarray(truth, bool), np.asarray(guess, bool)
        if not truth.any():
            continue
        tp = float((truth & guess).sum())
        union = float((truth | guess).sum())
        f1s.append(2 * tp / (truth.sum() + guess.sum()))
        ious.append(tp / union)
    if not f1s:
        return {"loc_f1": float("nan"), "iou": float("nan")}
    return {"loc_f1": float(np.mean(f1s)), "iou": float(np.mean(ious))}


def summary(
    labels: Array, scores: Array, threshold: float, masks: list[Array], predicted: list[Array]
) -> dict[str, float]:
    """Classification at ``threshold``, detection at 1 % false alarms, localisation, and the
    number of tampered images: one row of the model card's tables."""
    out = classification(labels, scores, threshold)
    out["detection_at_1pct_fa"] = detection_at_false_alarm(labels, scores)
    out.update(localisation(masks, predicted))
    out["tampered"] = float(np.asarray(labels, bool).sum())
    return out


def best_threshold(labels: Array, scores: Array) -> float:
    """The threshold with the highest accuracy (midpoint between neighbouring scores)."""
    values = np.unique(np.asarray(scores, np.float64))
    candidates = np.concatenate([[0.0], (values[1:] + values[:-1]) / 2, [1.0]])
    truth = np.asarray(labels, bool)
    ordered = np.sort(np.asarray(scores, np.float64))
    pos_scores = np.sort(np.asarray(scores, np.float64)[truth])
    neg_scores = np.sort(np.asarray(scores, np.float64)[~truth])
    caught = len(pos_scores) - np.searchsorted(pos_scores, candidates, side="left")
    cleared = np.searchsorted(neg_scores, candidates, side="left")
    accuracies = (caught + cleared) / max(len(ordered), 1)
    return float(candidates[int(np.argmax(accuracies))])
