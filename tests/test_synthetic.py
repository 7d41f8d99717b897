"""The synthetic dataset: deterministic, valid, and carrying the effects it documents."""
from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score

from benchmark.config import group_config
from benchmark.data.synthetic import generate

BASE = group_config("dataset", "synthetic")


def small(**changes: object):
    cfg = OmegaConf.merge(BASE, {"num_users": 300, **changes})
    dataset = generate(cfg)
    dataset.validate()
    return dataset


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = small(), small(), small(seed=1)
    for key in ("item", "hist", "label"):
        assert np.array_equal(a.dense("train")[key], b.dense("train")[key])
    assert not np.array_equal(a.splits["train"]["label"], c.splits["train"]["label"])


def test_every_user_has_validation_and_test_samples() -> None:
    d = small()
    users = np.unique(np.concatenate([d.splits[s]["user_id"] for s in ("train", "valid", "test")]))
    for split in ("valid", "test"):
        assert set(np.unique(d.splits[split]["user_id"])) == set(users)


def test_inactive_users_have_short_or_empty_histories() -> None:
    d = small(inactive_fraction=1.0)
    assert d.splits["train"]["hist_len"].max() <= 2
    assert (d.splits["train"]["hist_len"] == 0).any()


def test_unrelated_candidates_share_no_category_with_the_history() -> None:
    d = small(unrelated_fraction=1.0, stream_focus=1.0)
    a = d.dense("train")
    valid = np.arange(a["hist"].shape[1])[None, :] < a["hist_len"][:, None]
    same = (a["hist"][:, :, 1] == a["item"][:, 1:2]) & valid
    # focused streams leave unseen categories for every user, so every candidate is unrelated
    assert not same.any()


def _effect_auc(effect: str) -> float:
    """Test AUC of the generator's own probabilities when only `effect` is planted."""
    effects = {"sequence": 0.0, "user": 0.0, "context": 0.0, effect: 2.0}
    return small(effects=effects).stats["oracle_test_auc"]


def test_each_planted_effect_carries_signal_and_none_means_noise() -> None:
    for effect in ("sequence", "user", "context"):
        assert _effect_auc(effect) > 0.7
    d = small(effects={"sequence": 0.0, "user": 0.0, "context": 0.0})
    test = d.splits["test"]
    assert abs(roc_auc_score(test["label"], test["item"][:, 1]) - 0.5) < 0.1
