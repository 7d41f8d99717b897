"""Evaluation metrics computed on the host from the full prediction vector of a split."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC; NaN when the split holds one class only (AUC is undefined there)."""
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, probs))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7]."""
    return float(log_loss(labels, np.clip(probs, 1e-7, 1 - 1e-7), labels=[0, 1]))


def gauc(labels: np.ndarray, probs: np.ndarray, user_ids: np.ndarray) -> float:
    """Group AUC (as in DIN): per-user AUC, averaged with each user weighted by their number of samples.

    Users whose samples are all of one class have no AUC and are left out (of the average and its weights).
    Ties in a user's scores count one half, as in the usual rank-based AUC.
    """
    frame = pd.DataFrame({"user": user_ids, "label": labels.astype(np.float64), "prob": probs})
    frame["rank"] = frame.groupby("user")["prob"].rank(method="average")
    per_user = frame.groupby("user").agg(n=("label", "size"), pos=("label", "sum"))
    per_user["pos_rank_sum"] = frame[frame["label"] > 0].groupby("user")["rank"].sum()
    per_user = per_user[(per_user["pos"] > 0) & (per_user["pos"] < per_user["n"])]
    if per_user.empty:
        return float("nan")
    neg = per_user["n"] - per_user["pos"]
    user_auc = (per_user["pos_rank_sum"] - per_user["pos"] * (per_user["pos"] + 1) / 2) / (per_user["pos"] * neg)
    return float(np.average(user_auc, weights=per_user["n"]))


def evaluate(labels: np.ndarray, probs: np.ndarray, user_ids: np.ndarray) -> dict[str, float]:
    return {"auc": auc(labels, probs), "logloss": logloss(labels, probs), "gauc": gauc(labels, probs, user_ids)}
