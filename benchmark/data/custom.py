"""Your own click log (`dataset=custom`, README "Your own data"): declared columns of CSV, TSV or Parquet files
built into the same stored-once layout, cache and statistics as the built-in datasets.

What the declaration means (the schema `Custom` in benchmark/config/schema.py lists every key):
- a row of the log (`files`: one file, or train, valid, test) is an event of `columns.user_id` with the candidate
  item's fields `columns.item` (its id first), user fields `columns.user` and context fields `columns.context`; a
  field the log lacks is taken from `item_table` (joined on the item id) or `user_table` (joined on the user id);
- events are ordered per user by `columns.timestamp` (ties: file order), or by file order when it is null;
  `sorted: true` says each user's rows are already in time order and checks it;
- the label is `columns.label` (0/1, or value >= `label_threshold`); with `negatives: k > 0` the positive rows (all
  rows when the label is null) are the samples and each gets k uniform random items the user never interacted
  with, sharing its history, user and context fields (as in DIN's Amazon protocol);
- the history of a sample (last `max_len`, oldest first): `sequence.source=log`, the user's earlier events
  (`events: positive`, the clicks, or `all`), as the MovieLens and Amazon loaders do; `file`, the user's events
  strictly before the sample's time in a behaviour log of its own; `column`, the ids held by the sample's row
  (a `sequence.delimiter`-separated string or a Parquet list per item field, aligned); `none`. Item fields a
  history source does not hold (`sequence.fields` leaves them out) are 0 (unknown) in the history and in its
  sampled negatives;
- `neg_hist` (DIEN's auxiliary loss) holds per history event a random item the user never interacted with;
- ids: per field, values seen fewer than `min_count` times (`min_counts` per field) share the OOV id 1, missing
  values are 0 (custom_read.py); vocabularies count every occurrence (candidates, joins, histories);
- split: `time` (per user, the last round(test_fraction * n) of a user's n samples, at least 1, are test, the
  round(valid_fraction * n) before them valid; users with fewer than 3 samples train only), `column`
  (`columns.split` holds one of `split_values`) or `files`.
Every check of the input runs before anything is written: an error leaves no cache entry behind.
"""
from __future__ import annotations

import logging
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import numpy as np
import pyarrow as pa
from omegaconf import DictConfig, OmegaConf

from benchmark.data import custom_read as rd
from benchmark.data.cache import CacheWriter, load_or_build
from benchmark.data.common import (format_table, resolve_raw_dir, sample_unseen, time_parts, user_positions,
                                   write_sequences, write_split)
from benchmark.data.custom_files import Log, Options, read_behaviours
from benchmark.data.errors import DataError
from benchmark.data.schema import INT32_MAX, Dataset, Field, Schema, as_int32

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1  # bump whenever the produced arrays change for the same config and raw files
TIME_VOCAB = {"hour": 25, "weekday": 8, "month": 13}  # year: the span of years in the log + 2
MIN_SAMPLES_FOR_SPLIT = 3  # split=time: a user with fewer samples goes to train only


def options(cfg: Any) -> Options:
    """The dataset config as plain data (composed over its schema and validated by the caller)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def raw_paths(o: Options, raw_dir: Path) -> dict[str, Any]:
    """Every file the dataset reads, by role; a missing one is an error naming it."""
    def at(name: str) -> Path:
        return Path(name) if Path(name).is_absolute() else raw_dir / name

    paths: dict[str, Any] = {"log": [at(f) for f in o["files"]]}
    for table in ("item_table", "user_table"):
        if o.get(table):
            paths[table] = at(o[table]["file"])
    if o["sequence"]["source"] == "file":
        paths["behaviours"] = at(o["sequence"]["file"])
    every = [*paths["log"], *(p for k, p in paths.items() if k != "log")]
    missing = [str(p) for p in every if not p.is_file()]
    if missing:
        raise DataError(f"dataset {o['name']!r}: file(s) not found: {', '.join(missing)} (dataset.raw_dir="
                        f"{raw_dir}; dataset.files and the tables' `file` name them)")
    paths["all"] = every
    return paths


def load(cfg: Any, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Build (or read from the cache) the dataset that `cfg` declares."""
    o = options(cfg)
    raw_dir, _ = resolve_raw_dir(cfg, raw_root)
    paths = raw_paths(o, raw_dir)
    key_config = {"loader": "custom", "pipeline_version": PIPELINE_VERSION,
                  **{k: v for k, v in o.items() if k not in ("raw_dir", "effects")}}
    dataset = load_or_build(cache_dir, o["name"], key_config, paths["all"], lambda w: build(w, o, paths))
    log.info("\n%s", stats_table(dataset.stats))
    return dataset


# ---------------------------------------------------------------------------------------------- building
def check_sorted(user: np.ndarray, time: np.ndarray, where: rd.Where, column: str) -> None:
    """sorted: true: each user's rows are in time order in the files; the first that is not is an error."""
    o = np.argsort(user, kind="stable")
    t = time[o]
    bad = (user[o][1:] == user[o][:-1]) & (t[1:] < t[:-1])
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{where(int(o[i + 1]), column)}: time {t[i + 1]} is earlier than the same user's previous "
                        f"row (time {t[i]}, {where(int(o[i]), column)}); dataset.sorted=true says each user's rows are "
                        "in time order: sort the file or set dataset.sorted=false")


def split_by_time(users: np.ndarray, valid_fraction: float, test_fraction: float) -> np.ndarray:
    """0/1/2 per sample of samples sorted by user and time: each user's last samples test, the ones before valid."""
    pos, _, count = user_positions(users)
    big = count >= MIN_SAMPLES_FOR_SPLIT
    n_test = np.where(big, np.maximum(1, np.floor(test_fraction * count + 0.5)), 0).astype(np.int64)
    n_valid = np.where(big, np.maximum(1, np.floor(valid_fraction * count + 0.5)), 0).astype(np.int64)
    from_end = count - 1 - pos
    return np.where(from_end < n_test, 2, np.where(from_end < n_test + n_valid, 1, 0)).astype(np.int8)


def sample_items(seed: list[int], users: np.ndarray, n_real: int, seen: np.ndarray, stride: int,
                 strict: bool) -> np.ndarray:
    """Uniform item ids in 2..n_real + 1 the user never interacted with (`seen`: user * stride + id - 1); with
    `strict` False a user who saw every item gets any item instead of an error (neg_hist only)."""
    rng = np.random.default_rng(seed)
    try:
        return sample_unseen(rng, users, n_real, seen, stride) + 1
    except DataError:
        if strict:
            raise
        log.warning("some user interacted with every item: their history's negatives may be items they saw")
        return rng.integers(1, n_real + 1, size=len(users), dtype=np.int64) + 1


def build(writer: CacheWriter, o: Options, paths: dict[str, Any]) -> None:
    started, cpu, lap = perf_counter(), process_time(), _Laps()
    c, seq, t_max = o["columns"], o["sequence"], int(o["max_len"])
    data = Log(o, paths)
    beh = read_behaviours(o, paths["behaviours"]) if seq["source"] == "file" else None
    lap(f"read {data.n} rows")
    stats: dict[str, Any] = {"rows": data.n, **data.stats}
    if beh is not None:
        stats["bad_rows"] += beh["bad_rows"]

    # ids: users by their own vocabulary; every field by one vocabulary over all its occurrences
    item_names, user_names, ctx_names = list(c["item"]), list(c["user"]), list(c["context"])
    user_text = data.fields[c["user_id"]] if c["user_id"] in (*item_names, *user_names, *ctx_names) else \
        data.fields.pop(c["user_id"])
    user_vocab, _ = rd.vocabulary([user_text], 1)
    if len(user_vocab) > INT32_MAX - 2:
        raise DataError(f"{len(user_vocab):,} users: more than the layout's int32 ids hold")
    user = rd.encode(user_text, user_vocab) - 1  # 1..U
    del user_text

    def min_count(name: str) -> int:
        return int(o["min_counts"].get(name, o["min_count"]))

    vocab_sizes: dict[str, int] = {}

    def field_ids(name: str, extra: list[pa.ChunkedArray]) -> tuple[np.ndarray, pa.Array]:
        """The field's ids in the log (its text column is dropped once read) and its vocabulary."""
        values = data.fields.pop(name)
        vocab, counts = rd.vocabulary([values, *extra], min_count(name))
        vocab_sizes[name] = len(vocab) + rd.FIRST_ID
        if vocab_sizes[name] - 1 > INT32_MAX:
            raise DataError(f"field {name!r} has {len(vocab):,} values: more than the layout's int32 ids hold")
        stats[f"oov_{name}"] = counts["rare_occurrences"]
        return rd.encode(values, vocab), vocab

    hist_parts = data.seq_flat if seq["source"] == "column" else (beh["fields"] if beh is not None else {})
    fi = len(item_names)
    item = np.zeros((data.n, fi), dtype=np.int32)
    seq_codes: dict[str, np.ndarray] = {}
    for j, name in enumerate(item_names):
        extra = [hist_parts[name]] if name in hist_parts else []
        item[:, j], vocab = field_ids(name, extra)
        if name in hist_parts:
            seq_codes[name] = rd.encode(hist_parts[name], vocab)
    user_f = np.stack([field_ids(n, [])[0] for n in user_names], axis=1) if user_names else \
        np.zeros((data.n, 0), dtype=np.int32)
    ctx = [field_ids(n, [])[0] for n in ctx_names]
    data.fields.clear()
    hist_parts, data.seq_flat = {}, {}
    if beh is not None:
        beh["fields"] = {}
    pa.default_memory_pool().release_unused()  # the text columns are gone

    lap("ids")
    # time order per user
    if data.time is not None and o["sorted"]:
        check_sorted(user, data.time, data.where, c["timestamp"])
    order = np.lexsort((data.time, user)) if data.time is not None else np.argsort(user, kind="stable")  # stable:
    # ties keep file order
    user, item, user_f = user[order], item[order], user_f[order]
    time = data.time[order] if data.time is not None else None
    ctx = [x[order] for x in ctx]
    label = data.label[order] if data.label is not None else np.ones(data.n, dtype=np.float32)
    negatives = int(o["negatives"])
    is_sample = label > 0 if negatives else np.ones(data.n, dtype=bool)

    lap("time order")
    # histories: rows of the behaviour sequence, and where each event's window ends in it
    absent = [j for j, name in enumerate(item_names) if seq["source"] in ("file", "column") and name not in seq_codes]
    if seq["source"] == "log":
        is_beh = label > 0 if (seq["events"] == "positive" and data.label is not None) else np.ones(data.n, bool)
        _, start, _ = user_positions(user)
        before = np.cumsum(is_beh) - is_beh
        hist_end, n_prior = before, before - before[start]
        beh_rows = np.flatnonzero(is_beh)
        seq_item, seq_user = item[beh_rows], user[beh_rows]
        del beh_rows
    elif seq["source"] == "file":
        b_user = rd.encode(beh["user"], user_vocab) - 1  # 0: a user the log does not have
        keep = b_user >= 1
        b_user, b_time = b_user[keep], beh["time"][keep]
        b_item = np.zeros((len(b_user), fi), dtype=np.int32)
        for j, name in enumerate(item_names):
            if name in seq_codes:
                b_item[:, j] = seq_codes[name][keep]
        b_order = np.lexsort((b_time, b_user))
        seq_user, seq_item = b_user[b_order], b_item[b_order]
        times = np.unique(np.concatenate([time, b_time]))
        stride = len(times) + 1
        b_key = seq_user * stride + np.searchsorted(times, b_time[b_order])
        hist_end = np.searchsorted(b_key, user * stride + np.searchsorted(times, time), side="left")
        n_prior = hist_end - np.searchsorted(seq_user, user, side="left")
        stats["behaviours"], stats["behaviours_of_unknown_users"] = int(keep.sum()), int((~keep).sum())
        del b_item, b_key, times
    elif seq["source"] == "column":
        lengths = data.seq_lengths[order]
        k = np.minimum(lengths, t_max)
        starts = (np.cumsum(data.seq_lengths) - data.seq_lengths)[order] + lengths - k
        hist_end = np.cumsum(k)
        take = np.repeat(starts - (hist_end - k), k) + np.arange(int(hist_end[-1]) if len(k) else 0)
        seq_item = np.zeros((len(take), fi), dtype=np.int32)
        for j, name in enumerate(item_names):
            if name in seq_codes:
                seq_item[:, j] = seq_codes[name][take]
        seq_user, n_prior = np.repeat(user, k), k
        stats["history_ids_truncated"] = int((lengths - k).sum())
        del take
    else:
        hist_end = n_prior = np.zeros(data.n, dtype=np.int64)
        seq_item, seq_user = np.zeros((0, fi), dtype=np.int32), np.zeros(0, dtype=np.int32)
    hist_len = np.minimum(n_prior, t_max)

    lap("histories")
    # the item table (an item id's fields, from its first occurrence: candidates, then histories) and the items each
    # user interacted with; a history from the log holds candidates only
    n_real = vocab_sizes[item_names[0]] - rd.FIRST_ID
    if n_real < 1:
        raise DataError(f"{paths['log'][0]}: no item id occurs dataset.min_count times; nothing to sample from")
    sources = [(item, user)] + ([(seq_item, seq_user)] if seq["source"] in ("file", "column") else [])
    table = np.zeros((vocab_sizes[item_names[0]], fi), dtype=np.int32)
    stride, keys = n_real + 1, []
    for rows, owners in reversed(sources):  # the earlier source wins
        uniq, first = np.unique(rows[:, 0], return_index=True)
        table[uniq] = rows[first]
        real = rows[:, 0] >= rd.FIRST_ID
        keys.append(owners[real].astype(np.int64) * stride + rows[real, 0] - 1)
    table[:rd.FIRST_ID] = 0
    table[:, 0] = np.arange(len(table))
    seen = np.unique(np.concatenate(keys))
    del keys, real, uniq, first, sources
    neg_seq = table[sample_items([int(o["seed"]), 2], seq_user, n_real, seen, stride, strict=False)]
    seq_item[:, absent] = 0
    neg_seq[:, absent] = 0

    lap("item table, history negatives")
    # samples and splits
    samples = np.flatnonzero(is_sample)
    if o["split"] == "time":
        split_of = split_by_time(user[samples], float(o["valid_fraction"]), float(o["test_fraction"]))
    else:
        split_of = (data.split if o["split"] == "column" else data.file_of)[order][samples]
    for s, name in enumerate(("train", "valid", "test")):
        if not (split_of == s).any():
            raise DataError(_empty_split_message(o, name, paths, negatives))
    neg_items = None
    if negatives:
        neg_items = sample_items([int(o["seed"]), 1], np.repeat(user[samples], negatives), n_real, seen, stride,
                                 strict=True).reshape(-1, negatives)
    del seen

    context = np.stack(ctx + [_time_field(f, time) for f in o["time_fields"]], axis=1) if (ctx or o["time_fields"]) \
        else np.zeros((data.n, 0), dtype=np.int64)
    time_vocab = {f: TIME_VOCAB.get(f, 0) for f in o["time_fields"]}
    if "year" in time_vocab:
        years = time_parts(time)["year"]
        time_vocab["year"] = int(years.max() - years.min()) + 2
    per_event = {"user": user_f, "context": context.astype(np.int32, copy=False), "user_id": user,
                 "hist_end": as_int32(hist_end, "the history's end"), "hist_len": hist_len.astype(np.int32)}
    del context, ctx, hist_end, n_prior, time

    lap("splits, negatives")
    # writing: only now, every check passed
    write_sequences(writer, seq_item, neg_seq)
    del seq_item, neg_seq
    k = negatives
    for s, name in enumerate(("train", "valid", "test")):
        rows = np.flatnonzero(split_of == s)
        ev = samples[rows]
        if k:
            cand = np.empty((len(ev), 1 + k, fi), dtype=np.int32)
            cand[:, 0] = item[ev]
            cand[:, 1:] = table[neg_items[rows]]
            lab = np.zeros((len(ev), 1 + k), dtype=np.float32)
            lab[:, 0] = 1.0
            write_split(writer, name, np.repeat(ev, 1 + k), cand.reshape(-1, fi), lab.reshape(-1), per_event)
        else:
            write_split(writer, name, ev, item[ev], label[ev], per_event)
        stats[f"{name}_samples"] = len(ev) * (1 + k)
        stats[f"{name}_positive_rate"] = round(float(label[ev].mean()) / (1 + k), 4)

    n_samples = int(len(samples) * (1 + k))
    stats.update(
        dataset=o["name"], users=len(user_vocab), items=n_real, samples=n_samples, negatives_per_positive=k,
        history=seq["source"], max_len=t_max, split=o["split"],
        mean_hist_len=round(float(hist_len[samples].mean()), 3),
        positive_rate=round(float(label[samples].mean()) / (1 + k), 4),
        **{f"vocab_{name}": size for name, size in vocab_sizes.items()},
    )
    lap(f"writing {n_samples} samples")
    log.info("built %s in %.1f s (%.1f s CPU): %s", o["name"], perf_counter() - started, process_time() - cpu,
             ", ".join(lap.done))
    writer.name = o["name"]
    writer.stats = stats
    writer.schema = Schema(
        item_fields=tuple(Field(n, vocab_sizes[n]) for n in item_names),
        user_fields=tuple(Field(n, vocab_sizes[n]) for n in user_names),
        context_fields=(*(Field(n, vocab_sizes[n]) for n in ctx_names),
                        *(Field(f, size) for f, size in time_vocab.items())),
        max_len=t_max,
    )


class _Laps:
    """Wall time of each stage of a build, for its log line (what dominates at scale)."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self._t = perf_counter()

    def __call__(self, what: str) -> None:
        now = perf_counter()
        self.done.append(f"{what} {now - self._t:.1f} s")
        self._t = now


def _time_field(name: str, time: np.ndarray) -> np.ndarray:
    parts = time_parts(time)
    if name == "hour":
        return parts["hour"] + 1
    if name == "year":
        return parts["year"] - parts["year"].min() + 1
    return parts[name]


def _empty_split_message(o: Options, split: str, paths: dict[str, Any], negatives: int) -> str:
    what = "positive rows (the samples, with dataset.negatives > 0)" if negatives else "rows"
    if o["split"] == "time":
        return (f"{paths['log'][0]}: the {split} split is empty: with dataset.split=time a user needs at least "
                f"{MIN_SAMPLES_FOR_SPLIT} {what} to have validation and test samples")
    if o["split"] == "column":
        value = o["split_values"][("train", "valid", "test").index(split)]
        return (f"{paths['log'][0]}: the {split} split is empty: no {what} with {value!r} in column "
                f"{o['columns']['split']!r}")
    path = paths["log"][("train", "valid", "test").index(split)]
    return f"{path}: the {split} split is empty: the file has no {what}"


def stats_table(stats: dict[str, Any]) -> str:
    rows = [
        ("rows read (bad rows skipped)", (stats.get("rows"), stats.get("bad_rows")), None),
        ("users / items", (stats.get("users"), stats.get("items")), None),
        ("samples (pos + neg)", stats.get("samples"), None),
        ("  train / valid / test", tuple(stats.get(f"{s}_samples") for s in ("train", "valid", "test")), None),
        ("positive rate", stats.get("positive_rate"), None),
        (f"mean history length ({stats.get('history')})", stats.get("mean_hist_len"), None),
    ]
    return format_table(rows, f"{stats.get('dataset')} statistics", "")

