"""Amazon Books / Electronics (McAuley et al. 2015, 5-core) as in DIN, with derived user and context fields.

Protocol (see datasets/<name>/README.md for the full description):
- a user's reviews sorted by (unixReviewTime, line in the file) are the behaviour sequence; every review
  after the first is a positive sample whose history is the reviews before it (last `max_len`, oldest first);
- each positive gets `negatives` samples with a uniform random item the user never reviewed (in all the data),
  with the same history, user and context fields;
- per user, the last positive is test, the one before validation, the rest train;
- item fields (item_id, cate_id): category = the last level of the item's last category path in the meta file;
- user fields, from the events before the target only: activity (past reviews, log2 buckets), tenure (days
  since the first review, log2 buckets), mean past rating (half-star buckets);
- context fields, from the target's own timestamp and the past: year, month, weekday, days since the
  previous review (log2 buckets).
"""
from __future__ import annotations

import ast
import json
import logging
import re
from time import perf_counter, process_time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.cache import CacheWriter, load_or_build
from benchmark.data.common import (SECONDS_PER_DAY, check_encoding, format_table, index_ids, log2_bucket,
                                   read_blocks, resolve_raw_dir, split_block, time_parts, user_positions,
                                   write_next_item)
from benchmark.data.download import ensure_raw_files
from benchmark.data.errors import BadLines, DataError
from benchmark.data.schema import Dataset, Field, Schema

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1  # bump whenever the produced arrays change for the same config and raw files

# Table 1 of the paper; "samples" there equals the number of 5-core reviews
PAPER_TABLE1 = {
    "books": {"users": 603_668, "items": 367_982, "categories": 1_600, "samples": 8_900_038},
    "electronics": {"users": 192_403, "items": 63_001, "categories": 801, "samples": 1_689_188},
}

ACTIVITY_BUCKETS = 12  # log2 buckets of the number of past reviews
DAY_BUCKETS = 14  # log2 buckets of day counts (tenure, gap), 2^13 days > 22 years
RATING_BUCKETS = 9  # mean past rating rounded to half stars: 1.0 -> 1 ... 5.0 -> 9

# A review line in the original layout (keys in the original order, ids without escapes): the four fields are
# read by this regex, a whole block of lines at a time; any other line goes through json.loads. In valid JSON
# an unescaped '"key": ' can only be structural, so the greedy '.*' finds the real keys; a cut-off line does
# not match the anchored end.
_REVIEW_LINE_RE = re.compile(
    rb'^\{"reviewerID": "([^"\\\n]+)", "asin": "([^"\\\n]+)", .*"overall": ([0-9.]+), "summary": .*'
    rb'"unixReviewTime": ([0-9]+), "reviewTime": "[^"\\\n]*"\}[ \t\r]*$', re.M)
_ASIN_RE = re.compile(rb"'asin': u?'([^'\\]*)'")
# a line's first key; searched as "\n{'asin': '" in "\n" + block: a literal prefix is found by a fast scan,
# while "^" in MULTILINE mode would make the engine try every position of every line
_META_HEAD_RE = re.compile(rb"\n\{'asin': u?'([^'\\\n]*)'")
_CATS_RE = re.compile(rb"'categories': (\[\[.*?\]\])(?=, '|, \"|\}$)")


@dataclass(frozen=True)
class AmazonOptions:
    """Every preprocessing knob; all of them are part of the cache key. Defaults and allowed values: the dataset
    schema `Amazon` (benchmark/config/schema.py), checked before a job loads any data."""

    name: str
    reviews_file: str
    meta_file: str
    max_len: int
    negatives: int
    seed: int
    min_user_reviews: int  # users with fewer reviews give no sample and are dropped (counted)
    on_bad_line: str  # error | skip (counted, logged, bounded by max_bad_fraction)
    max_bad_fraction: float
    on_missing_meta: str  # unknown: category 0 (counted) | skip: drop those items' reviews | error
    meta_encoding: str

    @classmethod
    def from_cfg(cls, cfg: Any) -> "AmazonOptions":
        """From a dataset config composed over its schema (a job's, or benchmark.config.group_config's)."""
        options = {f.name: cfg[f.name] for f in fields(cls)}
        return cls(**{**options, "meta_encoding": check_encoding(options["meta_encoding"])})


def load(cfg: Any, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Build (or read from the cache) the Amazon dataset described by the `dataset` config node."""
    opts = AmazonOptions.from_cfg(cfg)
    raw_dir, is_default = resolve_raw_dir(cfg, raw_root)
    files = [raw_dir / opts.reviews_file, raw_dir / opts.meta_file]
    ensure_raw_files(opts.name, raw_dir, ((opts.reviews_file,), (opts.meta_file,)),
                     allow_download=is_default and bool(cfg.download))
    key_config = {"loader": "amazon", "pipeline_version": PIPELINE_VERSION, **asdict(opts)}
    dataset = load_or_build(cache_dir, opts.name, key_config, files, lambda w: build(w, opts, files[0], files[1]))
    log.info("\n%s", stats_table(dataset.stats))
    return dataset


# ---------------------------------------------------------------------------------------------- parsing
def parse_reviews(path: Path, opts: AmazonOptions) -> tuple[list[str], list[str], dict[str, np.ndarray], dict]:
    """Stream the reviews file, keeping only (user, item, rating, time) per review.

    Returns user names, item names (index = order of first appearance), the columns, and counters. Blocks of
    lines in the original layout are read with one regex pass per block (`_REVIEW_LINE_RE`); a block with any
    other line is read line by line, with `json.loads` for lines the regex does not match.
    """
    users: dict[bytes, int] = {}
    items: dict[bytes, int] = {}
    parts: dict[str, list[np.ndarray]] = {"user": [], "item": [], "time": [], "rating": []}
    bad = BadLines(path, opts.on_bad_line, opts.max_bad_fraction)
    total = 0
    for first, block, lines in read_blocks(path):
        total = first + lines - 1
        rows = _REVIEW_LINE_RE.findall(block)
        cols = None
        if len(rows) == lines:
            cols = _fast_columns(rows)
        if cols is None:
            cols = _slow_columns(split_block(block), first, bad)
        u, i, t, r = cols
        parts["user"].append(index_ids(u, users))
        parts["item"].append(index_ids(i, items))
        parts["time"].append(t)
        parts["rating"].append(r)
    n_bad = bad.finish(total)
    n = sum(len(p) for p in parts["user"])
    if n == 0:
        raise DataError(f"{path} holds no reviews ({total} lines, {n_bad} malformed)")
    columns = {k: np.concatenate(v) for k, v in parts.items()}
    return ([u.decode("utf-8", "backslashreplace") for u in users],
            [i.decode("utf-8", "backslashreplace") for i in items], columns,
            {"review_lines": total, "review_bad_lines": n_bad})


def _fast_columns(rows: list[tuple[bytes, ...]]) -> tuple | None:
    """Columns of regex-matched rows, or None when a value is out of range (the slow path then names it)."""
    users, items, ratings, times = zip(*rows)
    try:
        rating = np.array(ratings).astype(np.float64)
        ts = np.array(times).astype(np.int64)
    except (ValueError, OverflowError):
        return None
    if not (((rating >= 0.0) & (rating <= 5.0) & (ts > 0)).all()):
        return None
    return users, items, ts, rating


def _slow_columns(lines: list[bytes], first: int, bad: BadLines) -> tuple:
    """Line by line: the regex where it matches, else json.loads; bad lines go to `bad`."""
    users, items, times, ratings = [], [], [], []
    for line_no, line in enumerate(lines, first):
        try:
            m = _REVIEW_LINE_RE.fullmatch(line)
            if m is not None:
                user, item, rating, ts = m.group(1), m.group(2), float(m.group(3)), int(m.group(4))
            else:
                d = json.loads(line)
                user, item = d["reviewerID"], d["asin"]
                rating, ts = float(d["overall"]), int(d["unixReviewTime"])
                if not (isinstance(user, str) and isinstance(item, str) and user and item):
                    raise ValueError("reviewerID/asin empty or not a string")
                user, item = user.encode(), item.encode()
            if not 0.0 <= rating <= 5.0 or not 0 < ts < 2**63:  # int64 column
                raise ValueError(f"overall={rating} or unixReviewTime={ts} out of range")
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            bad.bad(line_no, "empty line" if not line.strip() else f"{type(exc).__name__}: {exc}"[:200])
            continue
        users.append(user)
        items.append(item)
        times.append(ts)
        ratings.append(rating)
    return users, items, np.array(times, dtype=np.int64), np.array(ratings, dtype=np.float64)


def _category_from_literal(text: str) -> str | None:
    """categories[-1][-1] of a parsed `categories` value; None when absent or empty."""
    cats = ast.literal_eval(text) if isinstance(text, str) else text
    if not isinstance(cats, list):
        raise ValueError("categories is not a list")
    if not cats or not isinstance(cats[-1], list) or not cats[-1]:
        return None
    leaf = cats[-1][-1]
    if not isinstance(leaf, str):
        raise ValueError("category is not a string")
    return leaf


def parse_meta(path: Path, wanted: set[str], opts: AmazonOptions) -> tuple[dict[str, str | None], dict]:
    """Stream the metadata file (Python dict literals), returning {asin: leaf category or None} for `wanted`.

    Lines of items that are not wanted are not parsed beyond their asin. Fast path: a line that starts with
    `{'asin': '...'` names its item there (only the first key can sit at the start of a line); in a wanted
    line a regex picks out the 'categories' literal when it occurs exactly once, and only that short, heavily
    repeated (memoised) literal is evaluated. Any line the fast path cannot vouch for goes through
    `ast.literal_eval` of the whole line.
    """
    wanted_b = {a.encode() for a in wanted}
    found: dict[str, str | None] = {}
    memo: dict[bytes, str | None] = {}
    bad = BadLines(path, opts.on_bad_line, opts.max_bad_fraction)
    counters = {"duplicates": 0, "slow": 0}
    total = 0

    def add(asin: str, category: str | None) -> None:
        if asin in found:
            counters["duplicates"] += 1
        else:
            found[asin] = category

    def one_line(line_no: int, line: bytes, asin: bytes | None) -> None:
        s = line.strip()
        if asin is None and s[:1] == b"{" and s.count(b"'asin':") == 1:
            m = _ASIN_RE.search(s)
            asin = m.group(1) if m else None
        if asin is not None:
            if asin not in wanted_b:
                return
            c = _CATS_RE.search(s) if s[-1:] == b"}" and s.count(b"'categories':") == 1 else None
            if c is not None:
                key = c.group(1)
                if key not in memo:
                    try:
                        memo[key] = _category_from_literal(key.decode(opts.meta_encoding))
                    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
                        c = None
                if c is not None:
                    add(asin.decode(), memo[key])
                    return
        counters["slow"] += 1
        try:
            d = ast.literal_eval(s.decode(opts.meta_encoding))
            if not isinstance(d, dict) or not isinstance(d.get("asin"), str):
                raise ValueError("not a dict with a string 'asin'")
            category = _category_from_literal(d["categories"]) if "categories" in d else None
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError) as exc:
            bad.bad(line_no, "empty line" if not s else f"{type(exc).__name__}: {exc}"[:200])
            return
        if d["asin"] in wanted:
            add(d["asin"], category)

    for first, block, n_lines in read_blocks(path):
        total = first + n_lines - 1
        heads = _META_HEAD_RE.findall(b"\n" + block)
        if len(heads) == n_lines:  # every line starts with its asin: look only at the wanted ones
            hits = [k for k, a in enumerate(heads) if a in wanted_b]
            if hits:
                lines = split_block(block)
                for k in hits:
                    one_line(first + k, lines[k], heads[k])
        else:
            for line_no, line in enumerate(split_block(block), first):
                one_line(line_no, line, None)
    n_bad = bad.finish(total)
    if total == 0:
        raise DataError(f"{path} is empty")
    return found, {"meta_lines": total, "meta_bad_lines": n_bad, "meta_duplicate_items": counters["duplicates"],
                   "meta_lines_slow_path": counters["slow"]}


# ---------------------------------------------------------------------------------------------- building
def _reindex(old: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Map the old indices in use to 1..V in sorted-name order; returns (new ids of `old`, names by new id - 1)."""
    used = np.unique(old)
    used_names = np.array([names[i] for i in used])
    order = np.argsort(used_names, kind="stable")
    new = np.zeros(len(names), dtype=np.int64)
    new[used[order]] = np.arange(1, len(used) + 1)
    return new[old], used_names[order]


def build(writer: CacheWriter, opts: AmazonOptions, reviews_path: Path, meta_path: Path) -> None:
    """Parse the raw files and stream the three splits into the cache writer."""
    started, cpu = perf_counter(), process_time()
    user_names, item_names, cols, stats = parse_reviews(reviews_path, opts)
    log.info("read %d reviews from %s in %.1f s (%.1f s CPU)", len(cols["user"]), reviews_path,
             perf_counter() - started, process_time() - cpu)
    started, cpu = perf_counter(), process_time()
    category_of, meta_stats = parse_meta(meta_path, set(item_names), opts)
    log.info("read %d metadata lines from %s in %.1f s (%.1f s CPU)", meta_stats["meta_lines"], meta_path,
             perf_counter() - started, process_time() - cpu)
    started, cpu = perf_counter(), process_time()
    stats.update(meta_stats)

    # items without metadata
    has_meta = np.array([name in category_of for name in item_names], dtype=bool)
    missing_items = int((~has_meta).sum())
    missing_reviews = int((~has_meta[cols["item"]]).sum())
    stats.update(items_missing_meta=missing_items, reviews_of_items_missing_meta=missing_reviews)
    if missing_items:
        example = next(n for n, ok in zip(item_names, has_meta) if not ok)
        msg = f"{missing_items} item(s) ({missing_reviews} reviews) are not in {meta_path}, e.g. {example!r}"
        if opts.on_missing_meta == "error":
            raise DataError(msg + " (dataset.on_missing_meta=error)")
        log.warning("%s: %s", msg, "their reviews are dropped" if opts.on_missing_meta == "skip"
                    else "their category is 0 (unknown)")
    keep = has_meta[cols["item"]] if opts.on_missing_meta == "skip" else np.ones(len(cols["item"]), dtype=bool)

    # users with too few reviews give no positive sample with a history
    per_user = np.bincount(cols["user"][keep], minlength=len(user_names))
    few = (per_user > 0) & (per_user < opts.min_user_reviews)
    keep &= ~few[cols["user"]]
    stats.update(users_dropped_few_reviews=int(few.sum()),
                 reviews_dropped_few_reviews=int(per_user[few].sum()))
    if few.any():
        log.warning("%s: dropped %d user(s) with fewer than %d reviews (%d reviews)", reviews_path, int(few.sum()),
                    opts.min_user_reviews, int(per_user[few].sum()))
    if not keep.any():
        raise DataError(f"{reviews_path}: no user has at least {opts.min_user_reviews} reviews; nothing to build")

    line_order = np.flatnonzero(keep)
    user, user_vocab = _reindex(cols["user"][keep], user_names)
    item, item_vocab = _reindex(cols["item"][keep], item_names)
    time, rating = cols["time"][keep], cols["rating"][keep]
    del cols
    order = np.lexsort((line_order, time, user))
    user, item, time, rating = user[order], item[order], time[order], rating[order]
    n_users, n_items, n_events = len(user_vocab), len(item_vocab), len(user)

    leaves = [category_of.get(str(a)) for a in item_vocab]
    cate_names = sorted({c for c in leaves if c is not None})
    cate_id = {c: i + 1 for i, c in enumerate(cate_names)}
    item_cate = np.zeros(n_items + 1, dtype=np.int64)
    item_cate[1:] = [cate_id.get(c, 0) if c is not None else 0 for c in leaves]
    stats["items_without_category"] = int((item_cate[1:] == 0).sum())

    # per-event derived fields, from the past only
    pos, start, count = user_positions(user)
    has_prev = pos >= 1
    prev = np.where(has_prev, np.arange(n_events) - 1, 0)
    past_rating_sum = np.cumsum(rating) - rating
    past_rating_sum -= past_rating_sum[start]
    mean_past = past_rating_sum / np.maximum(pos, 1)
    rating_bucket = np.where(has_prev, np.clip(np.rint(mean_past * 2).astype(np.int64) - 1, 1, RATING_BUCKETS), 0)
    parts = time_parts(time)
    year_min, year_max = int(parts["year"].min()), int(parts["year"].max())
    day = np.floor_divide(time, SECONDS_PER_DAY)
    user_f = np.stack([
        np.where(has_prev, log2_bucket(pos, ACTIVITY_BUCKETS), 0),
        np.where(has_prev, log2_bucket(day - day[start], DAY_BUCKETS), 0),
        rating_bucket,
    ], axis=1)
    context_f = np.stack([
        parts["year"] - year_min + 1, parts["month"], parts["weekday"],
        np.where(has_prev, log2_bucket(day - day[prev], DAY_BUCKETS), 0),
    ], axis=1)
    del parts, past_rating_sum, mean_past, rating_bucket

    # every review after a user's first is a positive (common.write_next_item); the last test, the one before valid
    per_event = {"user": user_f, "context": context_f, "user_id": user, "hist_end": np.arange(n_events),
                 "hist_len": np.minimum(pos, opts.max_len)}
    positives = np.flatnonzero(has_prev)
    split_of = np.where(pos == count - 1, 2, np.where(pos == count - 2, 1, 0))[positives]
    item_fields = np.stack([np.arange(n_items + 1), item_cate], axis=1)
    k = opts.negatives
    counts = write_next_item(writer, user, item, pos, split_of, item_fields, per_event, k, opts.seed)
    for split, n in counts.items():
        stats[f"{split}_samples"] = n * (1 + k)
        stats[f"{split}_positives"] = n

    paper = PAPER_TABLE1.get(opts.name, {})
    hist_len = per_event["hist_len"][positives]
    stats.update(
        dataset=opts.name, users=n_users, items=n_items, categories=len(cate_names), reviews=n_events,
        samples=len(positives) * (1 + k), negatives_per_positive=k, max_len=opts.max_len,
        mean_hist_len=round(float(hist_len.mean()), 3) if len(hist_len) else 0.0,
        first_review_year=year_min, last_review_year=year_max,
        **{f"paper_{key}": value for key, value in paper.items()},
    )
    log.info("built and wrote %d samples in %.1f s (%.1f s CPU)", stats["samples"], perf_counter() - started,
             process_time() - cpu)
    writer.name = opts.name
    writer.stats = stats
    writer.schema = Schema(
        item_fields=(Field("item_id", n_items + 1), Field("cate_id", len(cate_names) + 1)),
        user_fields=(Field("user_activity", ACTIVITY_BUCKETS + 1), Field("user_tenure", DAY_BUCKETS + 1),
                     Field("user_mean_rating", RATING_BUCKETS + 1)),
        context_fields=(Field("year", year_max - year_min + 2), Field("month", 13), Field("weekday", 8),
                        Field("days_since_prev", DAY_BUCKETS + 1)),
        max_len=opts.max_len,
    )


def stats_table(stats: dict[str, Any]) -> str:
    """The dataset statistics beside the paper's Table 1."""
    rows = [
        ("users", stats.get("users"), stats.get("paper_users")),
        ("items", stats.get("items"), stats.get("paper_items")),
        ("categories", stats.get("categories"), stats.get("paper_categories")),
        ("reviews (= paper's samples)", stats.get("reviews"), stats.get("paper_samples")),
        ("samples (pos + neg)", stats.get("samples"), None),
        ("  train / valid / test", tuple(stats.get(f"{s}_samples") for s in ("train", "valid", "test")), None),
        ("mean history length", stats.get("mean_hist_len"), None),
        ("items missing from meta", stats.get("items_missing_meta"), None),
        ("bad lines reviews / meta", (stats.get("review_bad_lines"), stats.get("meta_bad_lines")), None),
        ("users dropped (< min reviews)", stats.get("users_dropped_few_reviews"), None),
    ]
    return format_table(rows, f"Amazon {stats.get('dataset', '')} statistics vs the paper's Table 1")
