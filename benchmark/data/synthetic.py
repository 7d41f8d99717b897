"""The embedded default dataset: generated from a seed, with planted effects that mirror MIAN's motivation.

Generative story (all sizes and strengths are `dataset.*` config values):
- Items 1..num_items, each in one of num_categories categories (uniform). An item's "audience group" is
  `category % num_groups`: it is what user and context fields interact with.
- Users have three profile fields (gender 2, age 7, occupation 21) and 1-3 preferred categories. Each user owns a
  behaviour stream: items drawn from the preferred categories with probability `stream_focus`, else at random.
- A fraction `inactive_fraction` of users are inactive: their samples see histories of 0 to 2 behaviours.
- Each sample: candidate item, history = the last `max_len` behaviours before it, context fields (hour bucket 6,
  weekday 7, season 4). With probability `unrelated_fraction` the candidate comes from a category that the user
  has never behaved on (the paper's "candidate unrelated to any past behaviour"), with probability
  `related_fraction` from the category of one of the sample's own past behaviours, otherwise it is any item.
- Click logit = base_logit + Σ strength_e * score_e, each score standardised to unit variance over items/users:
  * effects.sequence: the share of the history in the candidate's category, recent behaviours weighted double
    (0 when the history is empty) -> what IBIM models;
  * effects.user: table[age, group] + table[occupation, group] + table[gender, group] -> what IUIM models;
  * effects.context: table[season, group] + table[hour, group] + table[weekday, group] -> what ICIM models.
  So with the default strengths (1.0 each) moving one score by one standard deviation moves the click odds by
  e^1 ≈ 2.7x. A label is a Bernoulli draw from sigmoid(logit), so even the true model's AUC is below 1; its
  value on the test split is recorded in `stats["oracle_test_auc"]`, the ceiling any model can reach.
- Split per user by time: the last `test_fraction` of a user's samples are test, the `valid_fraction` before
  them validation, the rest train (at least one test and one validation sample per user).
"""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig
from pathlib import Path
from sklearn.metrics import roc_auc_score

from benchmark.data.schema import SPLITS, Dataset, Field, Schema

GENDERS, AGES, OCCUPATIONS = 2, 7, 21
HOURS, WEEKDAYS, SEASONS = 6, 7, 4


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def generate(cfg: DictConfig) -> Dataset:
    """Generate the dataset described in the module docstring; deterministic given `cfg.seed`."""
    rng = np.random.default_rng(int(cfg.seed))
    n_users, n_items, n_cates = int(cfg.num_users), int(cfg.num_items), int(cfg.num_categories)
    n_groups, t_max = int(cfg.num_groups), int(cfg.max_len)
    if n_users < 1 or n_items < n_cates or n_cates < 4 or n_groups < 1:
        raise ValueError("dataset: need num_users >= 1, num_items >= num_categories >= 4, num_groups >= 1")

    item_cate = np.concatenate([[0], rng.integers(1, n_cates + 1, size=n_items)])  # index 0 = padding
    missing = np.setdiff1d(np.arange(1, n_cates + 1), item_cate)
    item_cate[rng.choice(np.arange(1, n_items + 1), size=len(missing), replace=False)] = missing  # no empty category
    group = item_cate % n_groups

    user_profile = np.stack([rng.integers(1, GENDERS + 1, n_users), rng.integers(1, AGES + 1, n_users),
                             rng.integers(1, OCCUPATIONS + 1, n_users)], axis=1)
    tables_user = [rng.normal(size=(v + 1, n_groups)) for v in (GENDERS, AGES, OCCUPATIONS)]
    tables_ctx = [rng.normal(size=(v + 1, n_groups)) for v in (HOURS, WEEKDAYS, SEASONS)]

    # items grouped by category, to draw "a random item of category c" for many c at once
    order = np.argsort(item_cate[1:], kind="stable") + 1
    cate_start = np.searchsorted(item_cate[order], np.arange(n_cates + 2))

    def items_of(cates: np.ndarray) -> np.ndarray:
        lo, hi = cate_start[cates], cate_start[cates + 1]
        return order[lo + (rng.random(len(cates)) * (hi - lo)).astype(np.int64)]

    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("item", "hist", "hist_len", "neg_hist", "user", "context",
                                                            "user_id", "seq", "split")}
    for u in range(n_users):
        preferred = rng.choice(np.arange(1, n_cates + 1), size=rng.integers(1, 4), replace=False)
        n = int(rng.integers(int(cfg.min_samples_per_user), int(cfg.max_samples_per_user) + 1))
        inactive = rng.random() < float(cfg.inactive_fraction)
        stream_len = 3 if inactive else t_max + n
        focused = rng.random(stream_len) < float(cfg.stream_focus)
        stream_cates = np.where(focused, rng.choice(preferred, size=stream_len), rng.integers(1, n_cates + 1, stream_len))
        stream = items_of(stream_cates)
        # position in the stream at which each sample happens: its history is stream[:pos][-t_max:]
        positions = rng.integers(0, 3, size=n) if inactive else np.sort(rng.integers(1, stream_len + 1, size=n))
        lengths = np.minimum(positions, t_max)
        # candidate: unrelated (a category never behaved on), related (the category of one of the sample's own
        # past behaviours), or any item
        unseen = np.setdiff1d(np.arange(1, n_cates + 1), stream_cates)
        draw = rng.random(n)
        unrelated = (draw < float(cfg.unrelated_fraction)) & (len(unseen) > 0)
        related = ~unrelated & (draw < float(cfg.unrelated_fraction) + float(cfg.related_fraction)) & (lengths > 0)
        past_pick = np.clip(positions - 1 - (rng.random(n) * np.maximum(lengths, 1)).astype(np.int64), 0, None)
        cand = rng.integers(1, n_items + 1, size=n)
        if len(unseen):
            cand = np.where(unrelated, items_of(rng.choice(unseen, size=n)), cand)
        cand = np.where(related, items_of(stream_cates[past_pick]), cand)
        # hist[s, t] = stream[pos_s - len_s + t] for t < len_s, else padding
        t_idx = np.arange(t_max)[None, :]
        valid = t_idx < lengths[:, None]
        hist_items = np.where(valid, stream[np.clip(positions[:, None] - lengths[:, None] + t_idx, 0, stream_len - 1)], 0)
        neg_items = np.where(valid, rng.integers(1, n_items + 1, size=(n, t_max)), 0)
        same = (item_cate[hist_items] == item_cate[cand][:, None]) & valid
        recency = np.where(t_idx >= lengths[:, None] - 5, 2.0, 1.0) * valid  # the last 5 behaviours count double
        seq = (recency * same).sum(1) / np.maximum(recency.sum(1), 1e-9)
        rows["item"].append(np.stack([cand, item_cate[cand]], axis=1))
        rows["hist"].append(np.stack([hist_items, item_cate[hist_items]], axis=2))
        rows["hist_len"].append(lengths)
        rows["neg_hist"].append(np.stack([neg_items, item_cate[neg_items]], axis=2))
        rows["user"].append(np.repeat(user_profile[u][None, :], n, axis=0))
        rows["context"].append(np.stack([rng.integers(1, HOURS + 1, n), rng.integers(1, WEEKDAYS + 1, n),
                                         rng.integers(1, SEASONS + 1, n)], axis=1))
        rows["user_id"].append(np.full(n, u + 1))
        rows["seq"].append(seq)
        n_test = max(1, int(round(n * float(cfg.test_fraction))))
        n_valid = max(1, int(round(n * float(cfg.valid_fraction))))
        split = np.zeros(n, dtype=np.int64)  # 0 train, 1 valid, 2 test
        split[n - n_test - n_valid:n - n_test] = 1
        split[n - n_test:] = 2
        rows["split"].append(split)

    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    for key in ("item", "hist", "hist_len", "neg_hist", "user", "context", "user_id"):
        arrays[key] = arrays[key].astype(np.int64)
    g = group[arrays["item"][:, 0]]
    user_score = sum(t[arrays["user"][:, j], g] for j, t in enumerate(tables_user))
    ctx_score = sum(t[arrays["context"][:, k], g] for k, t in enumerate(tables_ctx))
    effects = cfg.effects
    logit = (float(cfg.base_logit) + float(effects.sequence) * _standardise(arrays["seq"])
             + float(effects.user) * _standardise(user_score) + float(effects.context) * _standardise(ctx_score))
    prob = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(len(prob)) < prob).astype(np.float32)

    split_ids = arrays.pop("split")
    arrays.pop("seq")
    arrays["label"] = label
    splits = {name: {k: v[split_ids == i] for k, v in arrays.items()} for i, name in enumerate(SPLITS)}
    test = split_ids == 2
    schema = Schema(
        item_fields=(Field("item_id", n_items + 1), Field("cate_id", n_cates + 1)),
        user_fields=(Field("gender", GENDERS + 1), Field("age", AGES + 1), Field("occupation", OCCUPATIONS + 1)),
        context_fields=(Field("hour", HOURS + 1), Field("weekday", WEEKDAYS + 1), Field("season", SEASONS + 1)),
        max_len=t_max,
    )
    stats = {
        "users": n_users, "items": n_items, "categories": n_cates,
        **{f"{name}_samples": int((split_ids == i).sum()) for i, name in enumerate(SPLITS)},
        "positive_rate": float(label.mean()),
        "empty_history_share": float((arrays["hist_len"] == 0).mean()),
        "oracle_test_auc": float(roc_auc_score(label[test], prob[test])),
    }
    return Dataset.from_dense(str(cfg.name), schema, splits, stats)


def load(cfg: DictConfig, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Generation takes about a second, so the synthetic data is never cached."""
    return generate(cfg)
