"""The calibrated synthetic benchmark for mechanisms: one planted effect per dataset, its functional form chosen,
its strength calibrated, and the numbers that say what a model's test AUC means recorded beside it.

Why (docs: "What the synthetic effects favour"): the first generator (synthetic.py) plants only FM-shaped effects,
so an FM decides every cell of it. Here each effect has a *form* knob, and every result is read as the share of
the effect's lift a model captures, behind a gate of positive and negative controls (models/controls.py).

Generative story (sizes from `dataset.tier`; everything else a `dataset.*` key of the schema `Calibrated`):
- A world drawn from `seed`: `num_categories` category directions in a `latent_dim`-dimensional space; each item
  a unit vector v_i = normalise(centroid of its category + `cluster_spread` x noise), so items are clustered by
  category. Per user and context field value a latent vector a_j[x] (centred over the field's values); the field
  effects see an item through a `field_rank`-dimensional projection of v_i (centred over the catalogue). At full
  rank a field x category table has 21 x 20 free cells to estimate from ~60k training samples, and even the exact
  one-hot logistic model reached only 0.78 of the lift at tier S; at rank 3 the tables are low-rank, as an FM's are.
- Users (`num_users`) with 3-6 interests (`min_interests`, `max_interests`), each a category. A user's behaviour
  stream draws each behaviour from one of their interests (with probability `stream_focus`, else any item).
- Each sample: a candidate (with probability `related_fraction` from one of the user's interest categories,
  else any item), the last `max_len` behaviours before it (never empty), user fields (gender 2, age 7,
  occupation 21) and context fields (hour 6, weekday 7, season 4).
- Click logit = `background` x z_bg + strength x z_effect, each z standardised to unit variance on the held-out
  draw; label = Bernoulli(sigmoid(logit)). z_bg is a first-order background (category, age and hour biases)
  that any model, LR included, can learn (per-item biases could not be: ~60 training samples an item at tier S
  estimate a bias with more noise than it has signal); it is what the knock-out keeps.
- The planted effect (`effect`, `form`): with s_t = <v_candidate, v_h_t> over the history,
  * sequence `share`: the mean of s_t (the candidate against the pooled history: an FM term; with one-hot
    category vectors it is today's category share); `max`: max_t s_t (the candidate resembles one of the
    user's interests); `softmax`: sum_t softmax(s / `temperature`)_t s_t, between the two;
  * user / context `bilinear`: sum_j <a_j[x_j], P v_i> over the fields (an FM term; today's field x group
    tables); `threeway`: sum_{j<k} <a_j[x_j] * a_k[x_k], P v_i> (a field x field x item product no pairwise
    model represents: its pairwise projections are zero by the centring).
  * `none`: no effect (the background alone).

Calibration: with `target_auc` set, the strength is found by bisection so that the oracle's AUC, in expectation
over the labels (`expected_auc`), is `target_auc` on a held-out draw of `holdout_samples` samples
(deterministic from `seed`, other users; its test rows, as the test split is the last of each user's samples);
a strength given (`strength`) is checked against the same target
(`target_auc: null` takes it as given). The dataset's stats record
- `strength` (the calibrated value), `oracle_holdout_auc`, `knockout_holdout_auc` (the held-out draw);
- `oracle_test_auc`: the true probabilities' AUC on the test split, the ceiling;
- `knockout_test_auc`: the AUC of the probabilities with the effect removed (the background alone) on the same
  labels, the floor a model that misses the effect reaches;
- `fm_surrogate_auc`: on the same labels, the AUC of the best logistic combination (fitted on the held-out draw)
  of the background and the FM-representable scores the generator knows: the candidate against the mean-pooled
  history (latent and by category) for the sequence; the field x item bilinear scores, or for `threeway` its
  projection on field x category tables. A lower bound on what an FM-shaped model can reach.
A model's *lift captured* is (AUC - knock-out) / (oracle - knock-out) (benchmark/report/effects/mechanisms.py).

The knock-out data (`knockout: true`): the same draws with the effect removed from the training and
validation labels, the test labels as planted (the same uniform draw decides each label). A model trained on it
cannot have learned the effect, so its lift captured measures the measure's zero: a negative control.

Split per user by time: the last `test_fraction` of a user's samples are test, `valid_fraction` before them
validation, the rest train (at least one of each per user).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from benchmark.data.schema import SPLITS, Dataset, Field, Schema
from benchmark.names import FIELD_FORMS, SEQUENCE_FORMS

GENDERS, AGES, OCCUPATIONS = 2, 7, 21
HOURS, WEEKDAYS, SEASONS = 6, 7, 4
USER_VOCAB, CONTEXT_VOCAB = (GENDERS, AGES, OCCUPATIONS), (HOURS, WEEKDAYS, SEASONS)
CHUNK = 65_536  # samples per block of the similarity computation (bounds its memory at tier L)
FORMS = {"sequence": SEQUENCE_FORMS, "user": FIELD_FORMS, "context": FIELD_FORMS, "none": ("none",)}


@dataclass(frozen=True)
class Tier:
    num_users: int
    num_items: int
    num_categories: int


# S: a CPU job (about 80k samples, 9-10k test rows); L: a GPU job (about 1M samples).
TIERS = {"S": Tier(4_000, 1_000, 20), "L": Tier(50_000, 5_000, 50)}


class CalibrationError(ValueError):
    """The planted effect cannot be calibrated as configured; the message names the key and the fix."""


def expected_auc(prob: np.ndarray) -> float:
    """The AUC of scores `prob` against labels drawn Bernoulli(prob), in expectation (the ratio of the expected
    pair counts; exact as the sample grows): smooth in the strength, so a bisection on it is deterministic."""
    values, group = np.unique(prob, return_inverse=True)
    pos = np.bincount(group, weights=prob, minlength=len(values))
    neg = np.bincount(group, weights=1.0 - prob, minlength=len(values))
    both = np.bincount(group, weights=prob * (1.0 - prob), minlength=len(values))  # i == j pairs do not count
    below = np.cumsum(neg) - neg
    correct = (pos * below).sum() + 0.5 * (pos * neg - both).sum()
    return float(correct / (pos.sum() * neg.sum() - both.sum()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def sizes(cfg: DictConfig) -> Tier:
    """The tier's sizes, with any of them set in the config (`num_users`, ...) taking precedence."""
    tier = TIERS[str(cfg.tier)]
    pick = lambda key: int(cfg.get(key) if cfg.get(key) is not None else getattr(tier, key))  # noqa: E731
    return Tier(pick("num_users"), pick("num_items"), pick("num_categories"))


class World:
    """What every sample of one data seed shares: items, their vectors and categories, the field vectors and the
    background's biases."""

    def __init__(self, cfg: DictConfig, rng: np.random.Generator) -> None:
        size = sizes(cfg)
        d = int(cfg.latent_dim)
        self.n_items, self.n_cates = size.num_items, size.num_categories
        item_cate = np.concatenate([[0], np.arange(self.n_items) % self.n_cates + 1])  # every category has items
        item_cate[1:] = rng.permutation(item_cate[1:])
        self.item_cate = item_cate
        centroids = _unit(rng.normal(size=(self.n_cates + 1, d)))
        noise = rng.normal(size=(self.n_items + 1, d)) / np.sqrt(d)
        self.vectors = _unit(centroids[item_cate] + float(cfg.cluster_spread) * noise)
        self.vectors[0] = 0.0
        self.centred = self.vectors - self.vectors[1:].mean(0)  # the field effects: no item main effect
        self.centred[0] = 0.0
        order = np.argsort(item_cate[1:], kind="stable") + 1
        self.order, self.cate_start = order, np.searchsorted(item_cate[order], np.arange(self.n_cates + 2))

        def field_vectors(vocab: tuple[int, ...]) -> list[np.ndarray]:
            tables = []
            for v in vocab:
                a = rng.normal(size=(v + 1, d))
                a[1:] -= a[1:].mean(0)  # centred over the field's (uniform) values: no pairwise projection left
                a[0] = 0.0
                tables.append(a)
            return tables

        self.user_vectors, self.context_vectors = field_vectors(USER_VOCAB), field_vectors(CONTEXT_VOCAB)
        # the field effects see the items through a `field_rank`-dimensional projection of their vectors
        rank = min(int(cfg.field_rank), d)
        basis = np.linalg.qr(rng.normal(size=(d, rank)))[0]
        self.projected = self.centred @ basis @ basis.T
        self.category_bias = rng.normal(size=self.n_cates + 1)
        self.age_bias, self.hour_bias = rng.normal(size=AGES + 1), rng.normal(size=HOURS + 1)

    def items_of(self, cates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.cate_start[cates], self.cate_start[cates + 1]
        return self.order[lo + (rng.random(cates.shape) * (hi - lo)).astype(np.int64)]


def draw_samples(world: World, cfg: DictConfig, rng: np.random.Generator, n_users: int) -> dict[str, np.ndarray]:
    """`n_users` users and their samples in the dense form, time-ordered within each user, with `split`."""
    t_max, lo_n, hi_n = int(cfg.max_len), int(cfg.min_samples_per_user), int(cfg.max_samples_per_user)
    lo_k, hi_k = int(cfg.min_interests), int(cfg.max_interests)
    n_cates = world.n_cates
    # interests: distinct categories per user (the first k of a random permutation)
    k = rng.integers(lo_k, hi_k + 1, size=n_users)
    interests = np.argsort(rng.random((n_users, n_cates)), axis=1)[:, :hi_k] + 1  # [U, hi_k]
    per_user = rng.integers(lo_n, hi_n + 1, size=n_users)
    stream_len = t_max + hi_n
    # how much of the stream each interest holds (Dirichlet: a dominant interest and minor ones), while
    # candidates come from every interest alike: "how many behaviours match" (share) and "does one match" (max)
    # then tell apart
    weights = rng.gamma(float(cfg.interest_concentration), size=(n_users, hi_k)) * (np.arange(hi_k) < k[:, None])
    cumulative = np.cumsum(weights / weights.sum(1, keepdims=True), axis=1)
    pick = np.minimum((rng.random((n_users, stream_len))[:, :, None] > cumulative[:, None, :]).sum(2), k[:, None] - 1)
    stream_cates = np.take_along_axis(interests, pick, axis=1)
    focused = rng.random((n_users, stream_len)) < float(cfg.stream_focus)
    stream_cates = np.where(focused, stream_cates, rng.integers(1, n_cates + 1, size=(n_users, stream_len)))
    stream = world.items_of(stream_cates, rng)  # [U, S]

    user = np.repeat(np.arange(n_users), per_user)
    n = len(user)
    # the position of each sample in its user's stream (its history ends there), increasing within a user
    positions = np.sort(rng.integers(1, stream_len + 1, size=n) + user * (stream_len + 1)) - user * (stream_len + 1)
    lengths = np.minimum(positions, t_max)
    t_idx = np.arange(t_max)[None, :]
    valid = t_idx < lengths[:, None]
    hist = np.where(valid, stream[user[:, None], np.clip(positions[:, None] - lengths[:, None] + t_idx, 0,
                                                        stream_len - 1)], 0)
    related = rng.random(n) < float(cfg.related_fraction)
    cand_cate = np.take_along_axis(interests[user], (rng.random(n) * k[user]).astype(np.int64)[:, None], 1)[:, 0]
    cand = np.where(related, world.items_of(cand_cate, rng), rng.integers(1, world.n_items + 1, size=n))
    profile = np.stack([rng.integers(1, v + 1, size=n_users) for v in USER_VOCAB], axis=1)
    context = np.stack([rng.integers(1, v + 1, size=n) for v in CONTEXT_VOCAB], axis=1)
    # split per user by time: the last test_fraction test, valid_fraction before it validation
    start = np.concatenate([[0], np.cumsum(per_user)[:-1]])
    rank = np.arange(n) - start[user]
    n_test = np.maximum(1, np.round(per_user * float(cfg.test_fraction))).astype(np.int64)[user]
    n_valid = np.maximum(1, np.round(per_user * float(cfg.valid_fraction))).astype(np.int64)[user]
    from_end = per_user[user] - rank
    split = np.where(from_end <= n_test, 2, np.where(from_end <= n_test + n_valid, 1, 0))
    return {"item": cand, "hist": hist, "hist_len": lengths, "user": profile[user], "context": context,
            "user_id": user + 1, "split": split, "uniform": rng.random(n),
            "neg_hist": np.where(valid, rng.integers(1, world.n_items + 1, size=(n, t_max)), 0)}


def raw_scores(world: World, cfg: DictConfig, s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The unstandardised scores of one draw: `background`, `effect` (the planted one), and the FM-representable
    features of the surrogate (`fm_*`)."""
    effect, form = str(cfg.effect), str(cfg.form)
    item = s["item"]
    out = {"background": world.category_bias[world.item_cate[item]] + world.age_bias[s["user"][:, 1]]
           + world.hour_bias[s["context"][:, 0]]}
    if effect == "sequence":
        valid = np.arange(s["hist"].shape[1])[None, :] < s["hist_len"][:, None]
        sims = np.concatenate([np.einsum("nd,ntd->nt", world.vectors[item[i:i + CHUNK]],
                                         world.vectors[s["hist"][i:i + CHUNK]])
                               for i in range(0, len(item), CHUNK)])
        count = valid.sum(1)
        share = np.where(valid, sims, 0.0).sum(1) / count
        if form == "share":
            out["effect"] = share
        elif form == "max":
            out["effect"] = np.where(valid, sims, -np.inf).max(1)
        else:
            scaled = np.where(valid, sims / float(cfg.temperature), -np.inf)
            weights = np.exp(scaled - scaled.max(1, keepdims=True))
            out["effect"] = (weights * np.where(valid, sims, 0.0)).sum(1) / weights.sum(1)
        same = (world.item_cate[s["hist"]] == world.item_cate[item][:, None]) & valid
        out["fm_share"], out["fm_category_share"] = share, same.sum(1) / count
    elif effect in ("user", "context"):
        tables = world.user_vectors if effect == "user" else world.context_vectors
        ids = s["user"] if effect == "user" else s["context"]
        v = world.projected[item]
        per_field = [table[ids[:, j]] for j, table in enumerate(tables)]
        if form == "bilinear":
            out["effect"] = sum((a * v).sum(1) for a in per_field)
        else:
            out["effect"] = sum((per_field[j] * per_field[k] * v).sum(1)
                                for j in range(len(per_field)) for k in range(j + 1, len(per_field)))
    return out


def _standardiser(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std() + 1e-12)


def calibrate(cfg: DictConfig, background: np.ndarray, effect: np.ndarray | None) -> dict[str, float]:
    """The strength (bisection on `expected_auc` of the held-out draw) and the held-out oracle and knock-out
    AUCs; raises CalibrationError, naming the key to change, when the target cannot be reached."""
    logit_ko = float(cfg.base_logit) + background
    knockout = expected_auc(_sigmoid(logit_ko))
    if effect is None:
        return {"strength": 0.0, "oracle_holdout_auc": knockout, "knockout_holdout_auc": knockout}
    auc = lambda strength: expected_auc(_sigmoid(logit_ko + strength * effect))  # noqa: E731
    target, tol = cfg.target_auc, float(cfg.tolerance)
    if cfg.strength is not None:
        strength = float(cfg.strength)
        oracle = auc(strength)
        if target is not None and abs(oracle - float(target)) > tol:
            raise CalibrationError(
                f"dataset.strength={strength:g} gives the {cfg.effect} effect ({cfg.form}) an oracle AUC of "
                f"{oracle:.4f} on the held-out draw, outside dataset.target_auc={float(target):g} ± "
                f"{tol:g}: set dataset.strength=null to calibrate it, or dataset.target_auc=null to take the "
                "strength as given")
        return {"strength": strength, "oracle_holdout_auc": oracle, "knockout_holdout_auc": knockout}
    if target is None:
        raise CalibrationError("dataset.strength=null and dataset.target_auc=null: give a strength, or a target "
                               "AUC to calibrate it against")
    target = float(target)
    if knockout >= target - tol:
        raise CalibrationError(
            f"dataset.target_auc={target:g} cannot be reached by adding the {cfg.effect} effect: the background "
            f"alone already gives an AUC of {knockout:.4f} (dataset.background={float(cfg.background):g}); lower "
            "dataset.background or raise dataset.target_auc")
    high = float(cfg.max_strength)
    if auc(high) < target - tol:
        raise CalibrationError(
            f"the {cfg.effect} effect ({cfg.form}) cannot reach dataset.target_auc={target:g}: at "
            f"dataset.max_strength={high:g} its oracle AUC is {auc(high):.4f}; raise dataset.max_strength, lower "
            "dataset.target_auc, or lower dataset.background (a larger held-out draw does not help)")
    low = 0.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        if auc(mid) < target:
            low = mid
        else:
            high = mid
        if high - low < 1e-6:
            break
    strength = 0.5 * (low + high)
    return {"strength": strength, "oracle_holdout_auc": auc(strength), "knockout_holdout_auc": knockout}


def _fm_features(world: World, cfg: DictConfig, s: dict[str, np.ndarray], raw: dict[str, np.ndarray],
                 bg: tuple[float, float], tables: list[np.ndarray] | None) -> np.ndarray:
    """The surrogate's features: the background, then the FM-representable scores."""
    columns = [(raw["background"] - bg[0]) / bg[1]]
    if cfg.effect == "sequence":
        columns += [raw["fm_share"], raw["fm_category_share"]]
    elif cfg.effect in ("user", "context") and cfg.form == "bilinear":
        columns.append(raw["effect"])  # an FM represents it exactly
    elif tables is not None:  # threeway: its projection on field x category tables
        ids = s["user"] if cfg.effect == "user" else s["context"]
        cate = world.item_cate[s["item"]]
        columns.append(sum(table[ids[:, j], cate] for j, table in enumerate(tables)))
    return np.stack(columns, axis=1)


def _projection_tables(world: World, cfg: DictConfig, s: dict[str, np.ndarray], effect: np.ndarray) -> list[np.ndarray]:
    """Per field j, the mean effect over the held-out draw at each (value of field j, item category)."""
    ids = s["user"] if cfg.effect == "user" else s["context"]
    cate = world.item_cate[s["item"]]
    vocab = USER_VOCAB if cfg.effect == "user" else CONTEXT_VOCAB
    tables = []
    for j, v in enumerate(vocab):
        key = ids[:, j] * (world.n_cates + 1) + cate
        size = (v + 1) * (world.n_cates + 1)
        total = np.bincount(key, weights=effect, minlength=size)
        count = np.bincount(key, minlength=size)
        tables.append((total / np.maximum(count, 1)).reshape(v + 1, world.n_cates + 1))
    return tables


def check(cfg: DictConfig) -> None:
    effect, form = str(cfg.effect), str(cfg.form)
    if form not in FORMS.get(effect, ()):
        allowed = ", ".join(FORMS.get(effect, ()))
        raise CalibrationError(f"dataset.form={form!r} is invalid for dataset.effect={effect!r}: must be one of "
                               f"{allowed}")


def generate(cfg: DictConfig) -> Dataset:
    """Generate the dataset described in the module docstring; deterministic given `cfg.seed`."""
    check(cfg)
    seed = int(cfg.seed)
    world = World(cfg, np.random.default_rng([seed, 0]))
    size = sizes(cfg)
    holdout_users = max(1, int(np.ceil(int(cfg.holdout_samples) * 2 / (int(cfg.min_samples_per_user)
                                                                        + int(cfg.max_samples_per_user)))))
    held = draw_samples(world, cfg, np.random.default_rng([seed, 1]), holdout_users)
    data = draw_samples(world, cfg, np.random.default_rng([seed, 2]), size.num_users)
    raw_held, raw = raw_scores(world, cfg, held), raw_scores(world, cfg, data)
    bg = _standardiser(raw_held["background"])
    background = float(cfg.background)
    planted = "effect" in raw
    eff = _standardiser(raw_held["effect"]) if planted else (0.0, 1.0)
    z = lambda r, key, m: (r[key] - m[0]) / m[1]  # noqa: E731
    # calibrated on the held-out draw's test rows: the last of each user's samples, whose histories are longer
    # than the average sample's (a max over more behaviours spreads less), as the test split's are
    held_test = held["split"] == 2
    cal = calibrate(cfg, background * z(raw_held, "background", bg)[held_test],
                    z(raw_held, "effect", eff)[held_test] if planted else None)
    strength = cal["strength"]

    logit_ko = float(cfg.base_logit) + background * z(raw, "background", bg)
    logit = logit_ko + (strength * z(raw, "effect", eff) if planted else 0.0)
    prob, prob_ko = _sigmoid(logit), _sigmoid(logit_ko)
    split_ids = data["split"]
    test = split_ids == 2
    label = (data["uniform"] < prob).astype(np.float32)
    if bool(cfg.knockout):  # the effect left out of what a model learns from, kept in what it is tested on
        label = np.where(test, label, (data["uniform"] < prob_ko).astype(np.float32))

    # the FM-representable surrogate: fitted on the held-out draw's labels, scored on the test labels
    tables = (_projection_tables(world, cfg, held, raw_held["effect"])
              if planted and cfg.effect != "sequence" and cfg.form == "threeway" else None)
    held_logit = float(cfg.base_logit) + background * z(raw_held, "background", bg) + (
        strength * z(raw_held, "effect", eff) if planted else 0.0)
    held_label = held["uniform"] < _sigmoid(held_logit)
    surrogate = LogisticRegression(C=1e4, max_iter=1000).fit(
        _fm_features(world, cfg, held, raw_held, bg, tables), held_label)
    fm_score = surrogate.decision_function(_fm_features(world, cfg, data, raw, bg, tables))

    arrays = {key: np.asarray(data[key], dtype=np.int64) for key in ("hist_len", "user", "context", "user_id")}
    arrays["item"] = np.stack([data["item"], world.item_cate[data["item"]]], axis=1)
    arrays["hist"] = np.stack([data["hist"], world.item_cate[data["hist"]]], axis=2)
    arrays["neg_hist"] = np.stack([data["neg_hist"], world.item_cate[data["neg_hist"]]], axis=2)
    arrays["label"] = label
    splits = {name: {k: v[split_ids == i] for k, v in arrays.items()} for i, name in enumerate(SPLITS)}
    schema = Schema(
        item_fields=(Field("item_id", world.n_items + 1), Field("cate_id", world.n_cates + 1)),
        user_fields=(Field("gender", GENDERS + 1), Field("age", AGES + 1), Field("occupation", OCCUPATIONS + 1)),
        context_fields=(Field("hour", HOURS + 1), Field("weekday", WEEKDAYS + 1), Field("season", SEASONS + 1)),
        max_len=int(cfg.max_len),
    )
    test_label = label[test]
    stats: dict[str, Any] = {
        "tier": str(cfg.tier), "users": size.num_users, "items": world.n_items, "categories": world.n_cates,
        **{f"{name}_samples": int((split_ids == i).sum()) for i, name in enumerate(SPLITS)},
        "positive_rate": float(label.mean()), "effect": str(cfg.effect), "form": str(cfg.form),
        "knockout": bool(cfg.knockout), "calibrated": cfg.strength is None, **cal,
        "holdout_samples": len(held["item"]),
        "oracle_test_auc": float(roc_auc_score(test_label, prob[test])),
        "knockout_test_auc": float(roc_auc_score(test_label, prob_ko[test])),
        "fm_surrogate_auc": float(roc_auc_score(test_label, fm_score[test])),
    }
    return Dataset.from_dense(str(cfg.name), schema, splits, stats)


def load(cfg: DictConfig, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Generation and calibration take seconds at tier S, so the data is never cached."""
    return generate(cfg)
