"""MovieLens-1M pipeline: a hand-worked example in the original formats, and the real ML-1M part when present."""
from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pytest

from benchmark import PROJECT_ROOT
from benchmark.config import group_config
from benchmark.data import load_dataset
from benchmark.data.errors import DataError

T0 = 978300000  # 2000-12-31 22:00:00 UTC
DAY = 86400
USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
MOVIES = ("1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure|Children's|Fantasy\n"
          "3::Café au lait (Métisse) (1993)::Comedy\n4::Heat (1995)::Action|Crime|Thriller\n"
          "5::Sabrina (1954)::Comedy|Romance\n6::No Year Movie::Drama\n")
# (user, movie, rating, timestamp) in a scrambled file order; user 7 has no profile, movie 9 no metadata
RATINGS = [
    (2, 1, 4, T0 + 3600), (1, 3, 4, T0 + 3 * DAY), (1, 1, 5, T0), (3, 3, 4, T0 + 5 * DAY), (1, 9, 2, T0 + 3 * DAY),
    (2, 5, 1, T0), (1, 4, 4, T0 + 10 * DAY), (3, 2, 4, T0 + DAY), (1, 2, 3, T0 + 60), (2, 6, 5, T0 + 40 * DAY),
    (7, 1, 5, T0 + 2 * DAY),
]
# item fields (movie_id, genre_id, year_id): movies re-indexed by raw id (9 -> 7); genres (first listed):
# Action 1, Adventure 2, Animation 3, Comedy 4, Drama 5; years: 1954 1, 1993 2, 1995 3
ITEM = {1: [1, 3, 3], 2: [2, 2, 3], 3: [3, 4, 2], 4: [4, 1, 3], 5: [5, 4, 1], 6: [6, 5, 0], 9: [7, 0, 0]}
# user fields (gender, age, occupation, zip prefix), vocabularies by sorted value over users.dat
PROFILE = {1: [1, 1, 1, 1], 2: [2, 3, 3, 3], 3: [2, 2, 2, 2], 7: [0, 0, 0, 0]}


def write_raw(folder: Path, ratings=RATINGS, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings).encode("ascii")
    if gz:
        (folder / "ratings.dat.gz").write_bytes(gzip.compress(text))
    else:
        (folder / "ratings.dat").write_bytes(text)
    (folder / "users.dat").write_bytes(USERS.encode("iso-8859-1"))
    (folder / "movies.dat").write_bytes(MOVIES.encode("iso-8859-1"))
    return folder


def cfg_for(raw: Path, **overrides):
    cfg = group_config("dataset", "movielens")
    cfg.raw_dir = str(raw)
    for k, v in overrides.items():
        cfg[k] = v
    return cfg


def context(ts: int, prev_bucket: int) -> list[int]:
    when = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)
    return [when.hour + 1, when.isoweekday(), prev_bucket]


def test_hand_worked_example(tmp_path: Path) -> None:
    ds = load_dataset(cfg_for(write_raw(tmp_path / "raw")), tmp_path / "cache")
    assert [f.vocab_size for f in ds.schema.item_fields] == [8, 6, 4]
    assert [f.vocab_size for f in ds.schema.user_fields] == [3, 4, 4, 4]
    assert ds.stats["users_without_profile"] == 1 and ds.stats["movies_missing_meta"] == 1
    # Per user, sorted by time (ties: file order). Split: last round(10%) (>= 1) test, the one before valid,
    # users with < 3 ratings all train. History = earlier positively rated movies (rating >= 4).
    # rows: (raw user, movie, label, history movies, timestamp, days-since-previous bucket)
    expected = {
        "train": [(1, 1, 1, [], T0, 0), (1, 2, 0, [1], T0 + 60, 1), (1, 3, 1, [1], T0 + 3 * DAY, 3),
                  (2, 5, 0, [], T0, 0), (3, 2, 1, [], T0 + DAY, 0), (3, 3, 1, [2], T0 + 5 * DAY, 3),
                  (7, 1, 1, [], T0 + 2 * DAY, 0)],
        "valid": [(1, 9, 0, [1, 3], T0 + 3 * DAY, 1), (2, 1, 1, [], T0 + 3600, 1)],
        "test": [(1, 4, 1, [1, 3], T0 + 10 * DAY, 4), (2, 6, 1, [1], T0 + 40 * DAY, 6)],
    }
    user_index = {1: 1, 2: 2, 3: 3, 7: 4}
    rated = {}
    for u, m, _, _ in RATINGS:
        rated.setdefault(user_index[u], set()).add(ITEM[m][0])
    for split, rows in expected.items():
        a = ds.dense(split)
        assert len(a["label"]) == len(rows)
        for n, (user, movie, label, hist, ts, gap) in enumerate(rows):
            assert a["user_id"][n] == user_index[user] and a["label"][n] == label
            np.testing.assert_array_equal(a["item"][n], ITEM[movie])
            assert a["hist_len"][n] == len(hist)
            np.testing.assert_array_equal(a["hist"][n, :len(hist)], np.reshape([ITEM[m] for m in hist], (-1, 3)))
            assert not a["hist"][n, len(hist):].any() and not a["neg_hist"][n, len(hist):].any()
            np.testing.assert_array_equal(a["user"][n], PROFILE[user])
            np.testing.assert_array_equal(a["context"][n], context(ts, gap))
            for row in a["neg_hist"][n, :len(hist)]:  # an unrated movie with its own fields
                assert row[0] not in rated[user_index[user]]
                assert list(row) == next(v for v in ITEM.values() if v[0] == row[0])


def test_gzip_ratings_give_the_same_arrays(tmp_path: Path) -> None:
    a = load_dataset(cfg_for(write_raw(tmp_path / "a")), tmp_path / "ca")
    b = load_dataset(cfg_for(write_raw(tmp_path / "b", gz=True)), tmp_path / "cb")
    for split in a.splits:
        for key in a.dense(split):
            np.testing.assert_array_equal(a.dense(split)[key], b.dense(split)[key])


def test_history_all_option(tmp_path: Path) -> None:
    ds = load_dataset(cfg_for(write_raw(tmp_path / "raw"), history="all"), tmp_path / "cache")
    test = ds.dense("test")
    np.testing.assert_array_equal(test["hist_len"], [4, 2])  # user 1: m1, m2, m3, m9; user 2: m5, m1
    np.testing.assert_array_equal(test["hist"][0, :4, 0], [1, 2, 3, 7])


def test_bad_input(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw")
    with open(raw / "ratings.dat", "a") as f:
        f.write("1::2::x::3\n")
    with pytest.raises(DataError, match=r"ratings\.dat:12: "):
        load_dataset(cfg_for(raw, on_bad_line="error"), tmp_path / "cache")
    ds = load_dataset(cfg_for(raw, max_bad_fraction=0.2), tmp_path / "cache")
    assert ds.stats["rating_bad_lines"] == 1 and ds.stats["ratings"] == len(RATINGS)
    with pytest.raises(DataError, match=r"movies\.dat: 1 of 6 lines are malformed.*not utf-8 text"):
        load_dataset(cfg_for(raw, encoding="utf-8", max_bad_fraction=0.1), tmp_path / "cache")
    (raw / "users.dat").write_bytes(b"")
    with pytest.raises(DataError, match=r"users\.dat is empty"):
        load_dataset(cfg_for(raw, max_bad_fraction=0.2), tmp_path / "cache")
    # only the one successful build left an entry; the failed ones left nothing
    assert len([p for p in (tmp_path / "cache").iterdir() if p.name.startswith(("movielens-", ".tmp-"))]) == 1


def test_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)missing raw file\(s\) ratings\.dat or ratings\.dat\.gz, users\.dat, "
                                        r"movies\.dat in .*ml-1m\.zip"):
        load_dataset(cfg_for(tmp_path / "empty"), tmp_path / "cache")


ML1M_PART = PROJECT_ROOT.parent / "shared" / "data" / "ml-1m-part"


@pytest.mark.skipif(not (ML1M_PART / "users.dat").exists(), reason="../shared/data/ml-1m-part is not here")
def test_real_ml1m_part(tmp_path: Path) -> None:
    ds = load_dataset(cfg_for(ML1M_PART, max_len=5), tmp_path / "cache")  # short histories: a lighter cache
    st = ds.stats
    assert (st["users"], st["items"], st["ratings"]) == (2999, 3615, 487_650)
    assert st["subset"].startswith("ML-1M, users 1-2999") and st["rating_bad_lines"] == 0
    assert st["train_samples"] + st["valid_samples"] + st["test_samples"] == 487_650
    assert 0.5 < st["positive_rate"] < 0.65 and 0.4 < st["test_positive_rate"] < 0.7
    # every movie a user rated appears as a sample's item: neg_hist must avoid all of them
    keys = np.concatenate([a["user_id"] * 10_000 + a["item"][:, 0] for a in ds.splits.values()])
    keys = np.unique(keys)
    a = ds.dense("test")
    mask = np.arange(ds.schema.max_len)[None, :] < a["hist_len"][:, None]
    neg = (a["user_id"][:, None] * 10_000 + a["neg_hist"][:, :, 0])[mask]
    assert mask.sum() > 10_000 and not np.isin(neg, keys).any()
