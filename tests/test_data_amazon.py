"""Amazon pipeline on tiny raw files in the exact original formats, against a hand-worked example."""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.config import group_config
from benchmark.data import load_dataset
from benchmark.data.amazon import parse_meta, AmazonOptions
from benchmark.data.errors import DataError

DAY = 86400
BASE = int(dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc).timestamp())  # a Tuesday

# (reviewerID, asin, overall, day) in a scrambled file order; the hand-worked example below refers to these.
REVIEWS = [
    ("A2BETA", "B0000002", 4.0, 5),
    ("A1ALPHA", "B0000003", 4.0, 20),
    ("A3GAMMA", "B0000001", 3.0, 7),   # C: a single review -> dropped (counted)
    ("A2BETA", "B0000004", 2.0, 5),    # B, same day as B0000002 but later in the file: after it
    ("A4DELTA", "B0000006", 5.0, 100),  # item missing from the metadata -> category 0
    ("A1ALPHA", "B0000001", 5.0, 10),
    ("A2BETA", "B0000005", 1.0, 41),
    ("A1ALPHA", "B0000002", 3.0, 12),
    ("A4DELTA", "B0000003", 4.0, 400),
    ("A2BETA", "B0000001", 5.0, 40),
]
META = [
    {"asin": "B0000001", "title": "Headphones X", "price": 19.99, "imUrl": "http://x/1.jpg",
     "related": {"also_bought": ["B0000002", "B0000009"]}, "salesRank": {"Electronics": 12},
     "categories": [["Electronics", "Audio", "Headphones"]]},
    {"asin": "B0000002", "categories": [["Electronics", "Cables"], ["Electronics", "Computers", "Mice"]],
     "title": "Mouse"},
    {"asin": "B0000003", "title": "Toy", "categories": [["Electronics", "Kids' Stuff"]]},  # repr uses "..."
    {"asin": "B0000004", "brand": "Acme", "categories": [["Electronics", "Audio", "Headphones"]]},
    # a description that imitates the keys: the fast path must not be fooled
    {"asin": "B0000005", "description": "see 'categories': [['Fake']] and 'asin': 'B0000001'",
     "categories": [["Camera & Photo", "Cameras"]], "title": "Cam"},
    {"asin": "B0000009", "categories": [["Electronics", "Unused"]]},  # not reviewed
    {"asin": "B0000001", "categories": [["Electronics", "Duplicate"]]},  # duplicate line: first one wins
]
# category vocabulary (sorted names): Cameras 1, Headphones 2, Kids' Stuff 3, Mice 4
ITEM_CATE = {1: 2, 2: 4, 3: 3, 4: 2, 5: 1, 6: 0}


def review_line(user: str, asin: str, overall: float, day: int, sort_keys: bool = False) -> str:
    d = {"reviewerID": user, "asin": asin, "reviewerName": "Jo \"JJ\" Doe", "helpful": [0, 0],
         "reviewText": "Great, \"asin\": \"X\" café\nok", "overall": overall, "summary": "Fine",
         "unixReviewTime": BASE + day * DAY, "reviewTime": "01 1, 2013"}
    return json.dumps(d, sort_keys=sort_keys)


def write_raw(folder: Path, reviews=REVIEWS, meta=META, extra_review_lines=(), extra_meta_lines=(),
              sort_keys: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "reviews_Electronics_5.json.gz", "wt", encoding="utf-8") as f:
        for r in reviews:
            f.write(review_line(*r, sort_keys=sort_keys) + "\n")
        for line in extra_review_lines:
            f.write(line + "\n")
    with gzip.open(folder / "meta_Electronics.json.gz", "wt", encoding="utf-8") as f:
        for m in meta:
            f.write(repr(m) + "\n")  # Python dict literals, as in the original
        for line in extra_meta_lines:
            f.write(line + "\n")
    return folder


def cfg_for(raw: Path, **overrides):
    base = group_config("dataset", "electronics")
    base.raw_dir = str(raw)
    for k, v in overrides.items():
        base[k] = v
    return base


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    return write_raw(tmp_path / "raw")


def load(raw: Path, cache: Path, **overrides):
    return load_dataset(cfg_for(raw, **overrides), cache)


def context_of(day: int, prev_day: int, min_year: int = 2013) -> list[int]:
    when = dt.datetime.fromtimestamp(BASE + day * DAY, tz=dt.timezone.utc)
    gap = day - prev_day
    return [when.year - min_year + 1, when.month, when.isoweekday(), int(np.floor(np.log2(gap + 1))) + 1]


def test_hand_worked_example(raw: Path, tmp_path: Path) -> None:
    ds = load(raw, tmp_path / "cache")
    s = ds.schema
    assert [f.name for f in s.item_fields] == ["item_id", "cate_id"]
    assert [f.vocab_size for f in s.item_fields] == [7, 5]  # items B0000001..6 -> 1..6; 4 categories
    assert ds.stats["users"] == 3 and ds.stats["items"] == 6 and ds.stats["categories"] == 4
    assert ds.stats["users_dropped_few_reviews"] == 1 and ds.stats["items_missing_meta"] == 1
    assert ds.stats["meta_duplicate_items"] == 1
    # users re-indexed by sorted reviewerID: A1ALPHA 1, A2BETA 2, A4DELTA 3.
    # Sorted events: A: I1 d10 r5, I2 d12 r3, I3 d20 r4 | B: I2 d5 r4, I4 d5 r2, I1 d40 r5, I5 d41 r1
    # | D: I6 d100 r5, I3 d400 r4.  Positives: every review but each user's first.
    # Per user: last positive test, the one before valid, rest train.
    # Each row: (user, item, history items, user fields [activity, tenure, mean rating], day, previous day)
    expected = {
        "train": [(2, 4, [2], [2, 1, 7], 5, 5)],
        "valid": [(1, 2, [1], [2, 2, 9], 12, 10), (2, 1, [2, 4], [2, 6, 5], 40, 5)],
        "test": [(1, 3, [1, 2], [2, 4, 7], 20, 12), (2, 5, [2, 4, 1], [3, 6, 6], 41, 40),
                 (3, 3, [6], [2, 9, 9], 400, 100)],
    }
    for split, rows in expected.items():
        a = ds.dense(split)
        assert len(a["label"]) == 2 * len(rows)  # one negative per positive
        np.testing.assert_array_equal(a["label"], [1.0, 0.0] * len(rows))
        for r, (user, item, hist, user_f, day, prev_day) in enumerate(rows):
            for n in (2 * r, 2 * r + 1):  # the positive and its negative share everything but the item
                assert a["user_id"][n] == user
                assert a["hist_len"][n] == len(hist)
                np.testing.assert_array_equal(a["hist"][n, :len(hist)], [[i, ITEM_CATE[i]] for i in hist])
                assert not a["hist"][n, len(hist):].any() and not a["neg_hist"][n, len(hist):].any()
                np.testing.assert_array_equal(a["user"][n], user_f)
                np.testing.assert_array_equal(a["context"][n], context_of(day, prev_day))
            np.testing.assert_array_equal(a["item"][2 * r], [item, ITEM_CATE[item]])
    assert ds.schema.context_fields[0].vocab_size == 3  # years 2013 and 2014


def user_items(ds) -> dict[int, set[int]]:
    """Every item each user reviewed (all splits), from the positives and the full-history test samples."""
    out: dict[int, set[int]] = {}
    for a in map(ds.dense, ds.splits):
        pos = a["label"] == 1
        for u, i in zip(a["user_id"][pos], a["item"][pos, 0]):
            out.setdefault(int(u), set()).add(int(i))
        for u, h, n in zip(a["user_id"], a["hist"][:, :, 0], a["hist_len"]):
            out.setdefault(int(u), set()).update(int(x) for x in h[:n])
    return out


def test_negatives_are_unseen_items_with_their_categories(raw: Path, tmp_path: Path) -> None:
    ds = load(raw, tmp_path / "cache")
    seen = user_items(ds)
    assert seen == {1: {1, 2, 3}, 2: {1, 2, 4, 5}, 3: {3, 6}}
    for a in map(ds.dense, ds.splits):
        neg = a["label"] == 0
        for u, (i, c) in zip(a["user_id"][neg], a["item"][neg]):
            assert 1 <= i <= 6 and i not in seen[int(u)] and c == ITEM_CATE[int(i)]
        for u, nh, n in zip(a["user_id"], a["neg_hist"], a["hist_len"]):
            for i, c in nh[:n]:
                assert 1 <= i <= 6 and i not in seen[int(u)] and c == ITEM_CATE[int(i)]


def test_deterministic_and_seeded(raw: Path, tmp_path: Path) -> None:
    a = load(raw, tmp_path / "c1")
    b = load(raw, tmp_path / "c2")
    for split in a.splits:
        for key in a.dense(split):
            np.testing.assert_array_equal(a.dense(split)[key], b.dense(split)[key])
    c = load(raw, tmp_path / "c3", negatives=3, seed=5)
    assert len(c.splits["test"]["label"]) == 3 * 4
    np.testing.assert_array_equal(c.splits["test"]["label"], [1, 0, 0, 0] * 3)


def test_features_use_only_the_past(tmp_path: Path) -> None:
    """Changing a target's rating, or anything after it, leaves that sample's inputs unchanged."""
    base = load(write_raw(tmp_path / "r1"), tmp_path / "c1")
    changed = list(REVIEWS)
    # B's last review (the test target I5 on day 41): new rating. A's test target: new rating.
    changed[6] = ("A2BETA", "B0000005", 5.0, 41)  # REVIEWS[6]
    changed[1] = ("A1ALPHA", "B0000003", 1.0, 20)
    other = load(write_raw(tmp_path / "r2", reviews=changed), tmp_path / "c2")
    for split in base.splits:
        for key in ("hist", "hist_len", "user", "context", "item", "neg_hist"):
            np.testing.assert_array_equal(base.dense(split)[key], other.dense(split)[key])
    # B's last review moves later: B's earlier samples (train, valid) must not change
    changed[6] = ("A2BETA", "B0000005", 5.0, 300)
    later = load(write_raw(tmp_path / "r3", reviews=changed), tmp_path / "c3")
    for split in ("train", "valid"):
        b_rows = base.splits[split]["user_id"] == 2
        for key in ("hist", "hist_len", "user", "context", "item"):
            np.testing.assert_array_equal(base.dense(split)[key][b_rows], later.dense(split)[key][b_rows])


def test_review_fast_path_matches_json(tmp_path: Path) -> None:
    """Lines in another key order skip the regex fast path and go through json.loads: same dataset."""
    a = load(write_raw(tmp_path / "r1"), tmp_path / "c1")
    b = load(write_raw(tmp_path / "r2", sort_keys=True), tmp_path / "c2")
    for split in a.splits:
        for key in a.dense(split):
            np.testing.assert_array_equal(a.dense(split)[key], b.dense(split)[key])


def test_fast_meta_path_matches_literal_eval(tmp_path: Path) -> None:
    lines = [repr(m) for m in META] + [
        repr({"asin": "B0000011", "categories": [["A", "B]], 'x"]], "title": "odd"}),
        repr({"asin": "B0000012", "categories": []}),
        repr({"asin": "B0000013"}),
        "{'asin': u'B0000014', 'categories': [[u'Electronics', u'Caf\\xe9']]}",
    ]
    path = tmp_path / "meta.json.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    wanted = {"B00000%02d" % i for i in range(1, 15)}
    found, counters = parse_meta(path, wanted, AmazonOptions.from_cfg(group_config("dataset", "electronics")))
    assert found == {"B0000001": "Headphones", "B0000002": "Mice", "B0000003": "Kids' Stuff",
                     "B0000004": "Headphones", "B0000005": "Cameras", "B0000009": "Unused",
                     "B0000011": "B]], 'x", "B0000012": None, "B0000013": None, "B0000014": "Café"}
    assert counters["meta_lines_slow_path"] >= 1  # the imitating description went the safe way


# ---------------------------------------------------------------------------------------------- bad input
def test_malformed_lines_skipped_and_counted(tmp_path: Path) -> None:
    # meta: a cut-off line of a reviewed item and a line that is no dict are bad; a cut-off line of an item
    # nobody reviewed is not even parsed beyond its asin
    raw = write_raw(tmp_path / "raw", extra_review_lines=['{"reviewerID": "A9", "asin": ', ""],
                    extra_meta_lines=["{'asin': 'B0000006', 'categories': [[", "garbage",
                                      "{'asin': 'B0000077', 'categories': [["])
    ds = load(raw, tmp_path / "cache", max_bad_fraction=0.5)
    assert ds.stats["review_bad_lines"] == 2 and ds.stats["meta_bad_lines"] == 2
    assert ds.stats["items_missing_meta"] == 1
    assert ds.stats["users"] == 3


def test_malformed_line_error_names_file_and_line(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw", extra_review_lines=['{"reviewerID": "A9", "asin": "B1", "overall": "x"}'])
    with pytest.raises(DataError, match=r"reviews_Electronics_5\.json\.gz:11: "):
        load(raw, tmp_path / "cache", on_bad_line="error")
    assert not any((tmp_path / "cache").glob("electronics-*")), "no cache entry after a failed build"
    assert not any((tmp_path / "cache").glob(".tmp-*")), "no temporary folder left behind"


def test_too_many_bad_lines_stop_the_skip_policy(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "raw", extra_review_lines=["not json"] * 3)
    with pytest.raises(DataError, match="malformed .*max_bad_fraction"):
        load(raw, tmp_path / "cache")


def test_truncated_gzip_is_an_error(raw: Path, tmp_path: Path) -> None:
    path = raw / "reviews_Electronics_5.json.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"reviews_Electronics_5\.json\.gz is truncated or corrupt after line"):
        load(raw, tmp_path / "cache")
    assert not any((tmp_path / "cache").glob("electronics-*"))


def test_empty_files_are_errors(raw: Path, tmp_path: Path) -> None:
    (raw / "meta_Electronics.json.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match=r"meta_Electronics\.json\.gz is empty"):
        load(raw, tmp_path / "cache")
    (raw / "reviews_Electronics_5.json.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"reviews_Electronics_5\.json\.gz holds no reviews"):
        load(raw, tmp_path / "cache")


def test_encodings(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        load(raw, tmp_path / "cache", meta_encoding="klingon")
    (raw / "meta_Electronics.json.gz").write_bytes(gzip.compress("\n".join(map(repr, META)).encode("utf-16")))
    with pytest.raises(DataError, match=r"meta_Electronics\.json\.gz starts with a UTF-16 byte-order mark"):
        load(raw, tmp_path / "cache")


def test_missing_meta_policies(raw: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"1 item\(s\) \(1 reviews\) are not in .*meta_Electronics.*'B0000006'"):
        load(raw, tmp_path / "cache", on_missing_meta="error")
    ds = load(raw, tmp_path / "cache", on_missing_meta="skip")
    # dropping D's review of B0000006 leaves D with one review: D is dropped too
    assert ds.stats["users"] == 2 and ds.stats["items"] == 5 and ds.stats["users_dropped_few_reviews"] == 2
    assert len(ds.splits["test"]["label"]) == 4


def test_missing_files_message(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load(tmp_path / "nowhere", tmp_path / "cache")
    msg = str(err.value)
    for text in ("reviews_Electronics_5.json.gz", "meta_Electronics.json.gz", str(tmp_path / "nowhere"),
                 "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Electronics_5.json.gz",
                 "dataset.raw_dir=", "python -m benchmark.data download electronics"):
        assert text in msg


def test_changed_config_or_raw_file_never_reads_stale_cache(raw: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = load(raw, cache)
    b = load(raw, cache, max_len=2)
    assert b.schema.max_len == 2 and a.stats["cache_entry"] != b.stats["cache_entry"]
    write_raw(raw, reviews=REVIEWS[:-1])  # B loses its I1 review
    c = load(raw, cache)
    assert c.stats["reviews"] == a.stats["reviews"] - 1 and c.stats["cache_entry"] != a.stats["cache_entry"]
