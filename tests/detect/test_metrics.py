"""Metrics against brute-force definitions."""

from __future__ import annotations

import numpy as np

from scanseal.detect.training import metrics


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.4
    scores = np.round(rng.random(300) + 0.4 * labels, 1)
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert abs(metrics.auc(labels, scores) - pairs) < 1e-12


def test_classification_counts():
    result = metrics.classification(np.array([1, 1, 0, 0]), np.array([0.9, 0.2, 0.6, 0.1]), 0.5)
    assert result["accuracy"] == 0.5
    assert result["precision"] == 0.5
    assert result["recall"] == 0.5
    assert result["false_alarm_rate"] == 0.5


def test_detection_at_one_percent_false_alarms():
    negatives = np.linspace(0, 0.5, 200)  # 1% of 200: the two highest may be above the cut
    positives = np.array([0.49, 0.6, 0.7])
    labels = np.r_[np.zeros(200), np.ones(3)]
    rate = metrics.detection_at_false_alarm(labels, np.r_[negatives, positives], 0.01)
    assert rate == 1.0 or rate == 2 / 3
    assert metrics.detection_at_false_alarm(labels, np.r_[negatives, positives], 0.0) == 2 / 3


def test_best_threshold_separates_separable_scores():
    labels = np.array([0, 0, 0, 1, 1])
    threshold = metrics.best_threshold(labels, np.array([0.1, 0.2, 0.3, 0.7, 0.8]))
    assert 0.3 < threshold < 0.7


def test_localisation_f1_and_iou():
    truth = np.zeros((8, 8), bool)
    truth[:4] = True
    guess = np.zeros((8, 8), bool)
    guess[2:6] = True
    result = metrics.localisation([truth, np.zeros((8, 8), bool)], [guess, guess])
    assert result["loc_f1"] == 0.5
    assert abs(result["iou"] - 1 / 3) < 1e-12
