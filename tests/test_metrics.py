"""Metrics against hand-worked values."""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmark.metrics import auc, evaluate, gauc, logloss


def test_gauc_weights_users_by_samples_and_skips_single_class_users() -> None:
    users = np.array([1, 1, 1, 2, 2, 3, 3])
    labels = np.array([1, 0, 0, 1, 0, 1, 1])  # user 3 has positives only: no AUC, left out
    probs = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.5, 0.6])
    auc_user1 = 1.0  # the positive outranks both negatives
    auc_user2 = 0.0
    expected = (3 * auc_user1 + 2 * auc_user2) / 5
    assert math.isclose(gauc(labels, probs, users), expected)


def test_gauc_counts_ties_as_one_half_and_matches_sklearn_per_user() -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20, 500)
    labels = rng.integers(0, 2, 500)
    probs = np.round(rng.random(500), 1)  # many ties
    aucs, weights = [], []
    for u in np.unique(users):
        m = users == u
        if 0 < labels[m].sum() < m.sum():
            aucs.append(roc_auc_score(labels[m], probs[m]))
            weights.append(m.sum())
    assert math.isclose(gauc(labels, probs, users), np.average(aucs, weights=weights))


def test_auc_is_nan_for_one_class_and_logloss_is_clipped() -> None:
    assert math.isnan(auc(np.ones(4), np.linspace(0, 1, 4)))
    assert math.isfinite(logloss(np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    metrics = evaluate(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), np.array([1, 1, 2, 2]))
    assert metrics["auc"] == 1.0 and metrics["gauc"] == 1.0
