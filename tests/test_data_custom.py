"""Your own data (dataset=custom): tiny files written here in two public layouts, the Taobao display-ad log
(raw_sample, ad_feature, user_profile, behavior_log) and DIN's sample files (history as '^'-separated ids), built
through the declared schema and checked against hand-worked ids, histories and splits; a plain log with sampled
negatives; every bad input of the issue, each a DataError naming file, column and row with no cache entry left;
fuzzed cells; and (slow) one epoch of every model on the Taobao layout, of MIAN and DIN on DIN's, through whole jobs
with their MLflow runs."""
from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark import names
from benchmark.config import ConfigError, group_config, validate_dataset
from benchmark.data import load_dataset
from benchmark.data.common import time_parts
from benchmark.data.errors import DataError

T0 = 1494000000  # 2017-05-05 16:00 UTC, inside the published log's eight days


# ---------------------------------------------------------------------------------------------- the Taobao layout
RAW_SAMPLE = [  # user, time_stamp, adgroup_id, pid, nonclk, clk (file order is not time order)
    (10, T0 + 300, 2, "430548_1007", 1, 0), (10, T0 + 100, 1, "430548_1007", 0, 1),
    (20, T0 + 50, 3, "430539_1007", 1, 0), (10, T0 + 200, 3, "430539_1007", 1, 0),
    (10, T0 + 400, 1, "430548_1007", 1, 0), (20, T0 + 60, 1, "430548_1007", 0, 1),
    (20, T0 + 70, 2, "430539_1007", 1, 0), (30, T0 + 10, 9, "430548_1007", 1, 0),
]
AD_FEATURE = [  # adgroup_id, cate_id, campaign_id, customer, brand, price (ad 9 is missing: its fields are 0)
    (1, 100, 7, 70, "500", 12.5), (2, 100, 8, 80, "NULL", 99.0), (3, 200, 7, 70, "600", 3.0),
]
USER_PROFILE = [  # userid, cms_segid, cms_group_id, final_gender_code, age_level, pvalue_level, shopping_level,
    (10, 0, 3, 1, 2, "", 3, 0, 2),  # occupation, new_user_class_level (user 30 has no profile: 0s)
    (20, 5, 4, 2, 3, "1", 2, 1, 4),
]
BEHAVIOR_LOG = [  # user, time_stamp, btag, cate, brand
    (10, T0 + 50, "pv", 100, 500), (10, T0 + 150, "cart", 200, 600), (10, T0 + 300, "pv", 100, 500),
    (20, T0 + 65, "fav", 300, 700), (99, T0 + 1, "pv", 100, 500),
]


def write_csv(path: Path, header: list[str], rows: list[tuple], sep: str = ",") -> None:
    text = sep.join(header) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())


def write_taobao(raw: Path, raw_sample: list[tuple] = RAW_SAMPLE, behavior_log: list[tuple] = BEHAVIOR_LOG) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    write_csv(raw / "raw_sample.csv", ["user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"], raw_sample)
    write_csv(raw / "ad_feature.csv", ["adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"],
              AD_FEATURE)
    # the published header ends in a space ("new_user_class_level "): a declared name matches it stripped
    write_csv(raw / "user_profile.csv", ["userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level",
                                         "pvalue_level", "shopping_level", "occupation", "new_user_class_level "],
              USER_PROFILE)
    write_csv(raw / "behavior_log.csv", ["user", "time_stamp", "btag", "cate", "brand"], behavior_log)
    return raw


def cfg_for(name: str, raw: Path, **overrides):
    cfg = group_config("dataset", name)
    cfg.raw_dir = str(raw)
    for key, value in overrides.items():
        node, _, leaf = key.rpartition("__")
        (cfg[node] if node else cfg)[leaf] = value
    validate_dataset(cfg)
    return cfg


# ids: 0 missing, 1 out of vocabulary, 2.. the values in sorted (text) order
AD = {1: [2, 2, 2, 2, 2], 2: [3, 2, 3, 3, 0], 3: [4, 3, 2, 2, 3], 9: [5, 0, 0, 0, 0]}
PROFILE = {10: [2, 2, 2, 2, 0, 3, 2, 2], 20: [3, 3, 3, 3, 2, 2, 3, 3], 30: [0] * 8}
PID = {"430539_1007": 2, "430548_1007": 3}
B = {"c100": [0, 2, 0, 0, 2], "c200": [0, 3, 0, 0, 3], "c300": [0, 4, 0, 0, 4]}  # history rows: cate, brand only
# per split, in user then time order: (user, user index, time, ad, pid, clk, history)
TAOBAO = {
    "train": [(10, 1, T0 + 100, 1, "430548_1007", 1, ["c100"]),
              (10, 1, T0 + 200, 3, "430539_1007", 0, ["c100", "c200"]),
              (20, 2, T0 + 50, 3, "430539_1007", 0, []),
              (30, 3, T0 + 10, 9, "430548_1007", 0, [])],
    "valid": [(10, 1, T0 + 300, 2, "430548_1007", 0, ["c100", "c200"]),  # the behaviour at T0+300 is not before
              (20, 2, T0 + 60, 1, "430548_1007", 1, [])],
    "test": [(10, 1, T0 + 400, 1, "430548_1007", 0, ["c100", "c200", "c100"]),
             (20, 2, T0 + 70, 2, "430539_1007", 0, ["c300"])],
}


def test_taobao_layout_hand_worked(tmp_path: Path) -> None:
    ds = load_dataset(cfg_for("taobao_ad", write_taobao(tmp_path / "raw")), tmp_path / "cache")
    s = ds.schema
    assert [f.name for f in s.item_fields] == ["adgroup_id", "cate_id", "campaign_id", "customer", "brand"]
    assert [f.vocab_size for f in s.item_fields] == [6, 5, 4, 4, 5]
    assert [f.name for f in s.context_fields] == ["pid", "hour", "weekday"]
    assert [f.vocab_size for f in s.user_fields] == [4, 4, 4, 4, 3, 4, 4, 4]
    for split, rows in TAOBAO.items():
        a = ds.dense(split)
        assert len(a["label"]) == len(rows), split
        for r, (user, uid, ts, ad, pid, clk, hist) in enumerate(rows):
            np.testing.assert_array_equal(a["item"][r], AD[ad])
            assert a["label"][r] == clk and a["user_id"][r] == uid
            np.testing.assert_array_equal(a["user"][r], PROFILE[user])
            parts = time_parts(np.array([ts]))
            np.testing.assert_array_equal(a["context"][r], [PID[pid], parts["hour"][0] + 1, parts["weekday"][0]])
            assert a["hist_len"][r] == len(hist)
            np.testing.assert_array_equal(a["hist"][r, :len(hist)], np.reshape([B[h] for h in hist], (-1, 5)))
            assert not a["hist"][r, len(hist):].any()
            neg = a["neg_hist"][r, :len(hist)]
            assert not neg[:, [0, 2, 3]].any()  # fields the behaviour log lacks are 0 in its negatives too
    assert ds.stats["behaviours_of_unknown_users"] == 1 and ds.stats["item_table_unmatched_rows"] == 1
    assert ds.stats["user_table_unmatched_rows"] == 1 and ds.stats["rows"] == 8


def test_the_cache_is_keyed_by_the_files_and_the_schema(tmp_path: Path) -> None:
    raw = write_taobao(tmp_path / "raw")
    first = load_dataset(cfg_for("taobao_ad", raw), tmp_path / "cache")
    again = load_dataset(cfg_for("taobao_ad", raw), tmp_path / "cache")
    assert again.stats["cache_entry"] == first.stats["cache_entry"]
    other = load_dataset(cfg_for("taobao_ad", raw, time_fields=["hour"]), tmp_path / "cache")
    assert other.stats["cache_entry"] != first.stats["cache_entry"]
    write_taobao(raw, behavior_log=BEHAVIOR_LOG[:-1])  # a changed file
    changed = load_dataset(cfg_for("taobao_ad", raw), tmp_path / "cache")
    assert changed.stats["cache_entry"] not in (first.stats["cache_entry"], other.stats["cache_entry"])


# ---------------------------------------------------------------------------------------------- DIN's layout
DIN_FILES = {  # label, user, item, cate, item history, cate history: tab-separated, no header, one file per split
    "train.txt": [(1, "A", "i2", "c1", "i1", "c1"), (0, "A", "i3", "c2", "i1", "c1"),
                  (1, "A", "i3", "c2", "i1^i2", "c1^c1"), (0, "A", "i4", "c1", "i1^i2", "c1^c1"),
                  (1, "B", "i1", "c1", "i4", "c1"), (0, "B", "i2", "c1", "i4", "c1")],
    "valid.txt": [(1, "A", "i4", "c1", "i1^i2^i3", "c1^c1^c2"), (0, "A", "i1", "c1", "i1^i2^i3", "c1^c1^c2"),
                  (1, "B", "i3", "c2", "", ""), (0, "B", "i2", "c1", "", "")],
    "test.txt": [(1, "A", "i5", "c3", "i1^i2^i3^i4", "c1^c1^c2^c1"), (0, "A", "i2", "c1", "i1^i2^i3^i4", "c1^c1^c2^c1"),
                 (1, "B", "i2", "c1", "i4^i3", "c1^c2"), (0, "B", "i5", "c3", "i4^i3", "c1^c2")],
}
ITEM = {"i1": 2, "i2": 3, "i3": 4, "i4": 5, "i5": 6}
CATE = {"c1": 2, "c2": 3, "c3": 4}


def write_din(raw: Path, files: dict[str, list[tuple]] = DIN_FILES) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (raw / name).write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    return raw


def expected_din(max_len: int) -> dict[str, list[tuple]]:
    """Rows per split in user then file order, with the history truncated to the last max_len."""
    out = {}
    for name, split in (("train.txt", "train"), ("valid.txt", "valid"), ("test.txt", "test")):
        rows = sorted(DIN_FILES[name], key=lambda r: r[1])  # stable: file order within a user
        out[split] = [(label, user, item, cate, [h for h in hist.split("^") if h][-max_len:],
                       [h for h in hcat.split("^") if h][-max_len:]) for label, user, item, cate, hist, hcat in rows]
    return out


def check_din(ds, max_len: int) -> None:
    assert [(f.name, f.vocab_size) for f in ds.schema.item_fields] == [("item_id", 7), ("cate_id", 5)]
    assert [(f.name, f.vocab_size) for f in ds.schema.user_fields] == [("user_id", 4)]
    for split, rows in expected_din(max_len).items():
        a = ds.dense(split)
        assert len(a["label"]) == len(rows)
        for r, (label, user, item, cate, hist, hcat) in enumerate(rows):
            assert a["label"][r] == label and a["user_id"][r] == {"A": 1, "B": 2}[user]
            assert a["user"][r, 0] == {"A": 2, "B": 3}[user]
            np.testing.assert_array_equal(a["item"][r], [ITEM[item], CATE[cate]])
            assert a["hist_len"][r] == len(hist)
            np.testing.assert_array_equal(a["hist"][r, :len(hist)].reshape(-1, 2),
                                          np.reshape([[ITEM[i], CATE[c]] for i, c in zip(hist, hcat)], (-1, 2)))


@pytest.mark.parametrize("max_len", [30, 3])
def test_din_layout_hand_worked(tmp_path: Path, max_len: int) -> None:
    ds = load_dataset(cfg_for("din_samples", write_din(tmp_path / "raw"), max_len=max_len), tmp_path / "cache")
    check_din(ds, max_len)
    assert ds.stats["history_ids_truncated"] == (0 if max_len == 30 else 2)


def test_din_layout_from_parquet_list_columns(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    names = ["label", "user_id", "item_id", "cate_id", "hist_item_id", "hist_cate_id"]
    for name, rows in DIN_FILES.items():
        cols = list(zip(*rows))
        data = {n: list(c) for n, c in zip(names, cols)}
        for key in ("hist_item_id", "hist_cate_id"):
            data[key] = [[x for x in v.split("^") if x] for v in data[key]]
        pq.write_table(pa.table(data), raw / name.replace(".txt", ".parquet"))
    cfg = cfg_for("din_samples", raw, format="auto", column_names=[],
                  files=["train.parquet", "valid.parquet", "test.parquet"])
    check_din(load_dataset(cfg, tmp_path / "cache"), 30)


# ---------------------------------------------------------------------------------------------- a plain log
LOG = [  # user_id, item_id, cate_id, timestamp: a log of positives only (every row a click)
    ("u1", 11, "a", 100), ("u1", 12, "a", 200), ("u1", 13, "b", 300), ("u1", 14, "b", 400), ("u1", 15, "c", 500),
    ("u2", 12, "a", 150), ("u2", 16, "c", 250), ("u2", 11, "a", 350),
]


def write_log(raw: Path, rows: list[tuple] = LOG, name: str = "log.csv.gz",
              header: tuple = ("user_id", "item_id", "cate_id", "timestamp")) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    write_csv(raw / name, list(header), rows)
    return raw


def plain_cfg(raw: Path, **overrides):
    return cfg_for("custom", raw, **{"files": ["log.csv.gz"], "columns__label": None, "negatives": 2,
                                     "time_fields": [], **overrides})


def test_a_positive_only_log_gets_sampled_negatives_and_its_own_history(tmp_path: Path) -> None:
    ds = load_dataset(plain_cfg(write_log(tmp_path / "raw")), tmp_path / "cache")
    item = {11: 2, 12: 3, 13: 4, 14: 5, 15: 6, 16: 7}
    cate = {"a": 2, "b": 3, "c": 4}
    seen = {1: {2, 3, 4, 5, 6}, 2: {3, 7, 2}}
    # u1 has 5 samples: the last test, the one before valid; u2 has 3: likewise
    expected = {"train": [("u1", 0), ("u1", 1), ("u1", 2), ("u2", 5)], "valid": [("u1", 3), ("u2", 6)],
                "test": [("u1", 4), ("u2", 7)]}
    table = {item[i]: cate[c] for _, i, c, _ in LOG}
    for split, rows in expected.items():
        a = ds.dense(split)
        assert len(a["label"]) == 3 * len(rows)
        for n, (user, k) in enumerate(rows):
            uid = int(user[1])
            _, it, ca, _ = LOG[k]
            earlier = [r for r in LOG[:k] if r[0] == user]
            group = range(3 * n, 3 * n + 3)
            np.testing.assert_array_equal(a["label"][list(group)], [1, 0, 0])
            np.testing.assert_array_equal(a["item"][group[0]], [item[it], cate[ca]])
            for r in group:
                assert a["hist_len"][r] == len(earlier) and a["user_id"][r] == uid
                np.testing.assert_array_equal(a["hist"][r, :len(earlier)].reshape(-1, 2),
                                              np.reshape([[item[e[1]], cate[e[2]]] for e in earlier], (-1, 2)))
            for r in group[1:]:  # unseen items, with their own fields
                assert a["item"][r][0] not in seen[uid] and a["item"][r][1] == table[a["item"][r][0]]
    assert ds.stats["samples"] == 24 and ds.stats["positive_rate"] == round(1 / 3, 4)


def test_min_count_sends_rare_values_to_the_oov_id(tmp_path: Path) -> None:
    ds = load_dataset(plain_cfg(write_log(tmp_path / "raw"), min_counts={"cate_id": 3}), tmp_path / "cache")
    assert [f.vocab_size for f in ds.schema.item_fields] == [8, 3]  # only "a" (4 rows) kept: a -> 2, b/c -> 1
    assert ds.stats["oov_cate_id"] == 4  # b and c, 2 rows each
    a = ds.dense("train")
    assert set(a["item"][:, 1]) <= {1, 2}


def test_the_stats_command_builds_a_custom_dataset(tmp_path: Path, capsys) -> None:
    from benchmark.data.__main__ import main

    raw = write_log(tmp_path / "raw")
    rc = main(["stats", "custom", "--raw-dir", str(raw), "--cache-dir", str(tmp_path / "cache"), "files=[log.csv.gz]",
               "columns.label=null", "negatives=1", "time_fields=[]"])
    assert rc == 0 and '"samples": 16' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- bad input
def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.is_dir()) if cache.exists() else []


def refused(cfg, tmp_path: Path, *patterns: str) -> str:
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        load_dataset(cfg, cache)
    message = str(error.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    assert entries(cache) == [], "a failed build left a cache entry or temporary folder behind"
    return message


def test_a_misspelled_column_names_the_nearest(tmp_path: Path) -> None:
    raw = write_taobao(tmp_path / "raw")
    refused(cfg_for("taobao_ad", raw, columns__timestamp="time_stmp"), tmp_path,
            r"raw_sample\.csv: no column 'time_stmp'", r"did you mean 'time_stamp'")
    refused(cfg_for("taobao_ad", raw, columns__user=["cms_segid", "age_levl"]), tmp_path,
            r"raw_sample\.csv: no column 'age_levl'", r"nor in .*user_profile\.csv; did you mean 'age_level'")
    refused(cfg_for("taobao_ad", raw, sequence__fields={"cate_id": "category"}), tmp_path,
            r"behavior_log\.csv: no column 'category'")


def test_a_label_outside_0_1_needs_a_threshold(tmp_path: Path) -> None:
    rows = list(RAW_SAMPLE)
    rows[3] = rows[3][:5] + (4,)
    raw = write_taobao(tmp_path / "raw", raw_sample=rows)
    refused(cfg_for("taobao_ad", raw), tmp_path, r"raw_sample\.csv, column 'clk', row 4 \(line 5\)",
            "label 4 is not 0 or 1", "label_threshold")
    ds = load_dataset(cfg_for("taobao_ad", raw, label_threshold=1), tmp_path / "ok")
    assert ds.stats["samples"] == 8


@pytest.mark.parametrize(("value", "message"), [("abc", "timestamp 'abc' is not an integer"),
                                                ("", "timestamp is missing"),
                                                ("1.5e9", "timestamp '1.5e9' is not an integer")])
def test_bad_timestamps_name_the_row(tmp_path: Path, value: str, message: str) -> None:
    rows = list(RAW_SAMPLE)
    rows[5] = (rows[5][0], value, *rows[5][2:])
    raw = write_taobao(tmp_path / "raw", raw_sample=rows)
    refused(cfg_for("taobao_ad", raw), tmp_path, r"raw_sample\.csv, column 'time_stamp', row 6", message)


def test_history_columns_of_different_lengths(tmp_path: Path) -> None:
    files = {k: list(v) for k, v in DIN_FILES.items()}
    files["valid.txt"][1] = (0, "A", "i1", "c1", "i1^i2^i3", "c1^c2")
    refused(cfg_for("din_samples", write_din(tmp_path / "raw", files)), tmp_path,
            r"valid\.txt, column 'hist_cate_id', row 2", "has 2 ids", "'hist_item_id' \\(item_id\\) has 3")


def test_empty_files_and_empty_splits(tmp_path: Path) -> None:
    raw = write_taobao(tmp_path / "raw")
    (raw / "raw_sample.csv").write_text("user,time_stamp,adgroup_id,pid,nonclk,clk\n")
    refused(cfg_for("taobao_ad", raw), tmp_path, r"raw_sample\.csv is empty")
    (raw / "behavior_log.csv").write_bytes(b"")
    write_csv(raw / "raw_sample.csv", ["user", "time_stamp", "adgroup_id", "pid", "nonclk", "clk"], RAW_SAMPLE)
    refused(cfg_for("taobao_ad", raw), tmp_path, r"behavior_log\.csv is empty")
    files = dict(DIN_FILES, **{"valid.txt": []})
    refused(cfg_for("din_samples", write_din(tmp_path / "din", files)), tmp_path, r"valid\.txt is empty")
    short = write_log(tmp_path / "short", [r for r in LOG if r[0] == "u2"][:2])  # 2 rows: no valid/test user
    refused(plain_cfg(short), tmp_path, "the valid split is empty", "at least 3")


def test_rows_out_of_time_order_when_declared_sorted(tmp_path: Path) -> None:
    raw = write_log(tmp_path / "raw")
    load_dataset(plain_cfg(raw, sorted=True), tmp_path / "ok")
    rows = list(LOG)
    rows[1], rows[2] = rows[2], rows[1]
    refused(plain_cfg(write_log(tmp_path / "bad", rows), sorted=True), tmp_path,
            r"log\.csv\.gz, column 'timestamp', row 3 \(line 4\): time 200 is earlier", "dataset.sorted=false")


def test_ids_are_labels_of_any_size_but_floats_are_refused(tmp_path: Path) -> None:
    big = [(u, i + 2**40 if i != 16 else 10**30, c, t) for u, i, c, t in LOG]  # beyond int32, and beyond int64
    ds = load_dataset(plain_cfg(write_log(tmp_path / "raw", big)), tmp_path / "ok")
    assert ds.schema.item_fields[0].vocab_size == 8
    raw = tmp_path / "pq"
    raw.mkdir()
    pq.write_table(pa.table({"user_id": [r[0] for r in LOG], "item_id": [float(2**60 + r[1]) for r in LOG],
                             "cate_id": [r[2] for r in LOG], "timestamp": [r[3] for r in LOG]}), raw / "log.parquet")
    refused(plain_cfg(raw, files=["log.parquet"]), tmp_path, r"log\.parquet, column 'item_id'",
            "fractional or too large numbers")


def test_malformed_rows_error_or_skip(tmp_path: Path) -> None:
    raw = write_log(tmp_path / "raw")
    text = gzip.decompress((raw / "log.csv.gz").read_bytes()).decode().splitlines()
    text.insert(3, "u1,17")
    (raw / "log.csv.gz").write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    refused(plain_cfg(raw), tmp_path, r"malformed line in .*log\.csv\.gz", "2 fields, expected 4", "on_bad_line=skip")
    ds = load_dataset(plain_cfg(raw, on_bad_line="skip", max_bad_fraction=0.5), tmp_path / "skip")
    assert ds.stats["bad_rows"] == 1 and ds.stats["rows"] == 8


def test_float_timestamps_must_be_whole_and_delimiters_one_character(tmp_path: Path) -> None:
    raw = tmp_path / "pq"
    raw.mkdir()
    data = {"user_id": [r[0] for r in LOG], "item_id": [r[1] for r in LOG], "cate_id": [r[2] for r in LOG],
            "timestamp": [float(r[3]) for r in LOG]}
    pq.write_table(pa.table(data), raw / "log.parquet")
    assert load_dataset(plain_cfg(raw, files=["log.parquet"]), tmp_path / "ok").stats["samples"] == 24
    data["timestamp"][4] = 500.5
    pq.write_table(pa.table(data), raw / "log.parquet")
    refused(plain_cfg(raw, files=["log.parquet"]), tmp_path, r"log\.parquet, column 'timestamp', row 5",
            "500.5 is not an integer")
    refused(plain_cfg(write_log(tmp_path / "raw"), delimiter=";;"), tmp_path, "must be one character")


def test_declarations_that_cannot_work_are_config_errors() -> None:
    cfg = group_config("dataset", "din_samples")
    cfg.split = "time"
    with pytest.raises(ConfigError, match="three \\(train, valid, test\\) with dataset.split=files"):
        validate_dataset(cfg)
    cfg = group_config("dataset", "custom")
    cfg.columns.label = None
    with pytest.raises(ConfigError, match="needs dataset.negatives >= 1"):
        validate_dataset(cfg)
    cfg = group_config("dataset", "taobao_ad")
    cfg.sequence.fields = {"item_price": "price"}
    with pytest.raises(ConfigError, match="must map some item fields"):
        validate_dataset(cfg)


def test_fuzzed_cells_are_a_clear_error_or_a_build(tmp_path: Path) -> None:
    """Random cells of the Taobao files replaced by garbage, emptied or cut: a DataError naming the file (and no
    cache entry), or a valid dataset; never another exception."""
    rng = random.Random(7)
    garbage = ["", "abc", "-1", "1e400", "NaN", "9" * 30, "\u00e9", "1.5", '"', "a,b", " ", "NULL"]
    tally: Counter = Counter()
    for case in range(30):
        raw = write_taobao(tmp_path / f"raw{case}")
        name = rng.choice(["raw_sample.csv", "ad_feature.csv", "user_profile.csv", "behavior_log.csv"])
        lines = (raw / name).read_text().splitlines()
        at = rng.randrange(len(lines))
        cells = lines[at].split(",")
        k = rng.randrange(len(cells))
        if rng.random() < 0.2:
            cells = cells[:k]
        else:
            cells[k] = rng.choice(garbage)
        lines[at] = ",".join(cells)
        (raw / name).write_text("\n".join(lines) + "\n")
        cache = tmp_path / f"cache{case}"
        try:
            ds = load_dataset(cfg_for("taobao_ad", raw), cache)
        except DataError as error:
            assert name in str(error), f"case {case}: {name} line {at + 1} {lines[at]!r}: {error}"
            assert entries(cache) == []
            tally["error"] += 1
            continue
        ds.validate()
        tally["built"] += 1
    print(f"\n[fuzz] custom taobao cells: {dict(tally)}")
    assert tally["error"] and tally["built"]


# ---------------------------------------------------------------------------------------------- whole jobs
def generated_taobao(raw: Path, users: int = 40, seed: int = 0) -> Path:
    """A larger log in the Taobao layout (random ads, clicks and behaviours) for whole jobs."""
    rng = random.Random(seed)
    samples = [(u, T0 + rng.randrange(86400 * 3), rng.randrange(1, 31), rng.choice(list(PID)), 0, 0)
               for u in range(1, users + 1) for _ in range(8)]
    samples = [(u, t, ad, pid, 1 - clk, clk) for u, t, ad, pid, _, _ in samples for clk in [int(rng.random() < 0.3)]]
    behaviours = [(u, T0 - rng.randrange(86400), rng.choice(["pv", "cart", "fav", "buy"]), rng.randrange(100, 110),
                   rng.randrange(500, 520)) for u in range(1, users + 1) for _ in range(6)]
    write_taobao(raw, samples, behaviours)
    ads = [(a, rng.randrange(100, 110), rng.randrange(5), rng.randrange(8), str(rng.randrange(500, 520)), 1.0)
           for a in range(1, 31)]
    write_csv(raw / "ad_feature.csv", ["adgroup_id", "cate_id", "campaign_id", "customer", "brand", "price"], ads)
    profiles = [(u, u % 3, u % 4, u % 2 + 1, u % 6, "", u % 3 + 1, u % 2, u % 4 + 1) for u in range(1, users + 1)]
    write_csv(raw / "user_profile.csv", ["userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level",
                                         "pvalue_level", "shopping_level", "occupation", "new_user_class_level "],
              profiles)
    return raw


def generated_din(raw: Path, users: int = 30, seed: int = 0) -> Path:
    """A larger file set in DIN's layout: per user a stream of items, each positive with a sampled negative."""
    rng = random.Random(seed)
    files: dict[str, list[tuple]] = {"train.txt": [], "valid.txt": [], "test.txt": []}
    for u in range(users):
        stream = [rng.randrange(40) for _ in range(8)]
        for k in range(1, len(stream)):
            hist = stream[:k]
            split = "test.txt" if k == len(stream) - 1 else "valid.txt" if k == len(stream) - 2 else "train.txt"
            for label, item in ((1, stream[k]), (0, rng.randrange(40))):
                files[split].append((label, f"U{u}", f"i{item}", f"c{item % 6}", "^".join(f"i{h}" for h in hist),
                                     "^".join(f"c{h % 6}" for h in hist)))
    return write_din(raw, files)


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "model"), [("din_samples", "mian"), ("din_samples", "din"),
                                                *(("taobao_ad", m) for m in names.MODELS)])
def test_one_epoch_of_every_model_on_the_examples(compose_cfg, tracking_uri: str, tmp_path: Path, dataset: str,
                                                   model: str) -> None:
    from mlflow.tracking import MlflowClient

    from benchmark.run import run_job

    raw = (generated_taobao if dataset == "taobao_ad" else generated_din)(tmp_path / "raw")
    no_context = ["ablation=no_icim"] if (model, dataset) == ("mian", "din_samples") else []  # DIN's layout has none
    cfg = compose_cfg(f"model={model}", f"dataset={dataset}", f"dataset.raw_dir={raw}", "trainer.max_epochs=1",
                      *no_context, "trainer.batch_size=16", "trainer.progress=false", "embedding_dim=8", "trainer.device=cpu",
                      f"paths.cache_dir={tmp_path / 'cache'}", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}",
                      f"tracking.uri={tracking_uri}", "tracking.experiment=custom")
    final = run_job(cfg)
    assert 0.0 <= final["test_auc"] <= 1.0
    client = MlflowClient(tracking_uri)
    run = client.search_runs([client.get_experiment_by_name("custom").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.data.tags["dataset"] == dataset
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.name == dataset
