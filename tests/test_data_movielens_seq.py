"""Next-item MovieLens (dataset=movielens_seq): hand-worked samples, histories, negatives and both splits from
tiny files in the original `::` format, bad input, and the real ML-1M part when present."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark import PROJECT_ROOT
from benchmark.config import group_config, validate_dataset
from benchmark.data import load_dataset
from benchmark.data.errors import DataError
from test_data_movielens import DAY, ITEM, PROFILE, RATINGS, T0, context, write_raw

USER_INDEX = {1: 1, 2: 2, 3: 3, 7: 4}
RATED = {USER_INDEX[u]: set() for u in USER_INDEX}
for _u, _m, _, _ in RATINGS:
    RATED[USER_INDEX[_u]].add(ITEM[_m][0])
ALL_ITEMS = {v[0]: v for v in ITEM.values()}

# Events per user in time order (ties: file order), whatever the rating:
#   user 1: m1 T0, m2 T0+60, m3 T0+3d, m9 T0+3d (later in the file), m4 T0+10d  -> positives m2, m3, m9, m4
#   user 2: m5 T0, m1 T0+1h, m6 T0+40d                                          -> positives m1, m6
#   user 3: m2 T0+1d, m3 T0+5d                                                  -> positive m3
#   user 7: m1 only                                                             -> no positive
# Positive rows: (raw user, movie, history movies, timestamp, days-since-previous bucket)
U1 = [(1, 2, [1], T0 + 60, 1), (1, 3, [1, 2], T0 + 3 * DAY, 3), (1, 9, [1, 2, 3], T0 + 3 * DAY, 1),
      (1, 4, [1, 2, 3, 9], T0 + 10 * DAY, 4)]
U2 = [(2, 1, [5], T0 + 3600, 1), (2, 6, [5, 1], T0 + 40 * DAY, 6)]
U3 = [(3, 3, [2], T0 + 5 * DAY, 3)]
EXPECTED = {
    # split=fraction: of a user's m positives the last round(0.1 m) (>= 1) test, the one before valid; m < 3: train
    "fraction": {"train": U1[:2] + U2 + U3, "valid": U1[2:3], "test": U1[3:]},
    # split=last_one (DIN's): the last positive test, the one before valid
    "last_one": {"train": U1[:2], "valid": [U1[2], U2[0]], "test": [U1[3], U2[1], U3[0]]},
}


def cfg_for(raw: Path, **overrides):
    cfg = group_config("dataset", "movielens_seq")
    cfg.raw_dir = str(raw)
    for k, v in overrides.items():
        cfg[k] = v
    validate_dataset(cfg)
    return cfg


@pytest.mark.parametrize("split", ["fraction", "last_one"])
@pytest.mark.parametrize("negatives", [1, 2])
def test_hand_worked_samples(tmp_path: Path, split: str, negatives: int) -> None:
    ds = load_dataset(cfg_for(write_raw(tmp_path / "raw"), split=split, negatives=negatives), tmp_path / "cache")
    assert [f.name for f in ds.schema.user_fields] == ["gender", "age", "occupation"]
    assert [f.vocab_size for f in ds.schema.item_fields] == [8, 6, 4]
    for name, rows in EXPECTED[split].items():
        a = ds.dense(name)
        assert len(a["label"]) == len(rows) * (1 + negatives)
        for n, (user, movie, hist, ts, gap) in enumerate(rows):
            group = range(n * (1 + negatives), (n + 1) * (1 + negatives))
            np.testing.assert_array_equal(a["label"][list(group)], [1] + [0] * negatives)
            np.testing.assert_array_equal(a["item"][group[0]], ITEM[movie])
            for r in group:  # the positive and its negatives share history, user and context
                assert a["user_id"][r] == USER_INDEX[user] and a["hist_len"][r] == len(hist)
                np.testing.assert_array_equal(a["hist"][r, :len(hist)], np.reshape([ITEM[m] for m in hist], (-1, 3)))
                assert not a["hist"][r, len(hist):].any()
                np.testing.assert_array_equal(a["user"][r], PROFILE[user][:3])
                np.testing.assert_array_equal(a["context"][r], context(ts, gap))
            for r in group[1:]:  # a movie the user never rated, with its own fields
                assert a["item"][r][0] not in RATED[USER_INDEX[user]]
                np.testing.assert_array_equal(a["item"][r], ALL_ITEMS[a["item"][r][0]])
    assert ds.stats["samples"] == 7 * (1 + negatives) and ds.stats["test_positives"] == len(EXPECTED[split]["test"])


def test_seeded_and_deterministic(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw")
    a = load_dataset(cfg_for(raw), tmp_path / "a")
    b = load_dataset(cfg_for(raw), tmp_path / "b")
    c = load_dataset(cfg_for(raw, seed=5), tmp_path / "c")
    for key, value in a.dense("train").items():
        np.testing.assert_array_equal(value, b.dense("train")[key])
    # another data seed draws other negatives (neg_hist included), nothing else changes
    assert not np.array_equal(a.dense("train")["neg_hist"], c.dense("train")["neg_hist"])
    np.testing.assert_array_equal(a.dense("train")["hist"], c.dense("train")["hist"])


def test_bad_input(tmp_path: Path) -> None:
    few = write_raw(tmp_path / "few", ratings=[(1, 1, 5, T0), (2, 2, 4, T0), (3, 3, 1, T0)])
    with pytest.raises(DataError, match=r"no user has two ratings.*at least 2 ratings"):
        load_dataset(cfg_for(few), tmp_path / "cache")
    raw = write_raw(tmp_path / "raw")  # user 1 rated 5 of the 7 movies: 2 unseen
    with pytest.raises(DataError, match=r"dataset\.negatives=3 is larger than the unseen catalogue.*at most 2"):
        load_dataset(cfg_for(raw, negatives=3), tmp_path / "cache")
    short = write_raw(tmp_path / "short", ratings=[(1, 1, 5, T0), (1, 2, 4, T0 + 1), (2, 3, 4, T0)])
    with pytest.raises(DataError, match=r"dataset\.split=fraction leaves the valid split empty.*split=last_one"):
        load_dataset(cfg_for(short), tmp_path / "cache")
    with pytest.raises(ValueError, match=r"dataset\.negatives"):
        cfg_for(raw, negatives=0)
    with pytest.raises(ValueError, match=r"dataset\.split"):
        cfg_for(raw, split="random")
    # no failed build left an entry behind
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(("movielens_seq-", ".tmp-"))]


REAL = PROJECT_ROOT.parent / "shared" / "data" / "ml-1m-part"


@pytest.mark.skipif(not (REAL / "ratings.dat.gz").is_file(), reason="../shared/data/ml-1m-part not present")
def test_real_ml1m_part(tmp_path: Path) -> None:
    ds = load_dataset(cfg_for(REAL), tmp_path / "cache")
    s = ds.stats
    assert (s["users"], s["items"], s["ratings"]) == (2999, 3615, 487650)
    assert s["samples"] == 2 * (s["ratings"] - s["users"])  # every rating but each user's first, one negative each
    assert s["test_positives"] >= 40_000  # the fraction split keeps enough test rows to detect small effects
    test = ds.dense("test")
    assert test["label"].mean() == 0.5
