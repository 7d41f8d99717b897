"""MovieLens-1M as next-item data: the paper's Amazon protocol (DIN's) on real data.

The rating task (movielens.py) asks which of the movies a user watched they rated >= 4; the paper's Amazon
claims (C2-C4, C6) were made on next-item data, where the behaviours are a user's items in time order and a
sample asks whether the candidate is the next one. This loader builds that task from the same files:
- a user's ratings sorted by (timestamp, line in the file) are the behaviour sequence, whatever the rating;
- every rating after a user's first is a positive whose history is the movies rated before it (last `max_len`,
  oldest first); each positive gets `negatives` uniform random movies the user never rated (in all the data),
  with the same history, user and context fields (common.write_next_item, shared with amazon.py);
- split per user in time: `split=fraction` (default) makes the last round(test_fraction * m) of a user's m
  positives (at least one) test and the round(valid_fraction * m) before them (at least one) validation, each
  with its negatives; users with fewer than 3 positives go to train only. `split=last_one` is DIN's: the last
  positive is test, the one before validation;
- item fields: movie, first listed genre, release year; user fields: gender, age, occupation (users.dat);
  context: hour, weekday, days since the previous rating (log2 buckets), as in the rating task.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.cache import CacheWriter, load_or_build
from benchmark.data.common import format_table, resolve_raw_dir, user_positions, write_next_item
from benchmark.data.download import ensure_raw_files
from benchmark.data.errors import DataError
from benchmark.data.movielens import (CONTEXT_SCHEMA, FULL_ML1M, context_fields, item_schema, options_from_cfg,
                                      profile_schema, read_ratings, subset_name)
from benchmark.data.schema import Dataset, Schema

log = logging.getLogger(__name__)

PIPELINE_VERSION = 1  # bump whenever the produced arrays change for the same config and raw files
USER_FIELDS = 3  # gender, age, occupation
MIN_POSITIVES_FOR_SPLIT = 3  # split=fraction: a user with fewer positives goes to train only


@dataclass(frozen=True)
class MovieLensSeqOptions:
    """Every preprocessing knob; all of them are part of the cache key. Defaults and allowed values: the dataset
    schema `MovieLensSeq` (benchmark/config/schema.py), checked before a job loads any data."""

    name: str
    ratings_file: str
    max_len: int
    seed: int
    negatives: int
    split: str  # fraction | last_one
    valid_fraction: float
    test_fraction: float
    on_bad_line: str
    max_bad_fraction: float
    encoding: str

    @classmethod
    def from_cfg(cls, cfg: Any, ratings_file: str) -> "MovieLensSeqOptions":
        return options_from_cfg(cls, cfg, ratings_file)


def load(cfg: Any, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Build (or read from the cache) next-item MovieLens from ratings.dat(.gz), users.dat and movies.dat."""
    raw_dir, is_default = resolve_raw_dir(cfg, raw_root)
    # the rating task's raw folder: one download serves both tasks
    ensure_raw_files("movielens", raw_dir, (("ratings.dat", "ratings.dat.gz"), ("users.dat",), ("movies.dat",)),
                     allow_download=is_default and bool(cfg.download))
    ratings = raw_dir / "ratings.dat" if (raw_dir / "ratings.dat").is_file() else raw_dir / "ratings.dat.gz"
    opts = MovieLensSeqOptions.from_cfg(cfg, ratings.name)
    files = [ratings, raw_dir / "users.dat", raw_dir / "movies.dat"]
    key_config = {"loader": "movielens_seq", "pipeline_version": PIPELINE_VERSION, **asdict(opts)}
    dataset = load_or_build(cache_dir, opts.name, key_config, files, lambda w: build(w, opts, *files))
    log.info("\n%s", stats_table(dataset.stats))
    return dataset


def split_positives(pos: np.ndarray, count: np.ndarray, opts: MovieLensSeqOptions) -> np.ndarray:
    """0 train, 1 valid, 2 test for every positive (an event with pos >= 1), in event order."""
    is_pos = pos >= 1
    from_end = (count - 1 - pos)[is_pos]  # 0 for a user's last positive
    if opts.split == "last_one":
        return np.where(from_end == 0, 2, np.where(from_end == 1, 1, 0))
    m = (count - 1)[is_pos]  # the user's positives
    big = m >= MIN_POSITIVES_FOR_SPLIT
    n_test = np.where(big, np.maximum(1, np.floor(opts.test_fraction * m + 0.5)), 0).astype(np.int64)
    n_valid = np.where(big, np.maximum(1, np.floor(opts.valid_fraction * m + 0.5)), 0).astype(np.int64)
    return np.where(from_end < n_test, 2, np.where(from_end < n_test + n_valid, 1, 0))


def build(writer: CacheWriter, opts: MovieLensSeqOptions, ratings_path: Path, users_path: Path,
          movies_path: Path) -> None:
    data = read_ratings(opts, ratings_path, users_path, movies_path, zip_prefix_len=1)
    stats = data.stats
    user, movie, item_fields = data.user, data.movie, data.item_fields
    n_users, n_movies = len(data.user_vocab), len(item_fields) - 1
    pos, _, count = user_positions(user)
    if not (count >= 2).any():
        raise DataError(f"{ratings_path}: no user has two ratings, so no positive has a history; next-item "
                        "MovieLens needs users with at least 2 ratings (at least 4 for a validation and a test "
                        "positive under dataset.split=fraction)")
    rated = np.bincount(user, minlength=n_users + 1)
    fewest_unseen = n_movies - int(rated.max())
    if fewest_unseen < opts.negatives:
        raise DataError(f"dataset.negatives={opts.negatives} is larger than the unseen catalogue: a user rated all "
                        f"but {fewest_unseen} of the {n_movies} movies; set dataset.negatives to at most "
                        f"{max(fewest_unseen, 1)}")
    split_of = split_positives(pos, count, opts)
    for s, split in enumerate(("train", "valid", "test")):
        if not (split_of == s).any():
            raise DataError(f"{ratings_path}: dataset.split={opts.split} leaves the {split} split empty (users "
                            f"need at least {MIN_POSITIVES_FOR_SPLIT + 1} ratings under split=fraction, 3 under "
                            "last_one); use more users or dataset.split=last_one")

    per_event = {"user": data.profile[:, :USER_FIELDS], "context": context_fields(data.time, pos), "user_id": user,
                 "hist_end": np.arange(len(user)), "hist_len": np.minimum(pos, opts.max_len)}
    k = opts.negatives
    counts = write_next_item(writer, user, movie, pos, split_of, item_fields, per_event, k, opts.seed)
    for split, n in counts.items():
        stats[f"{split}_samples"] = n * (1 + k)
        stats[f"{split}_positives"] = n

    full, subset = subset_name(len(user), data.user_vocab)
    hist_len = per_event["hist_len"][pos >= 1]
    stats.update(
        dataset=opts.name, users=n_users, items=n_movies, categories=data.genres, years=data.years,
        ratings=len(user), samples=int(sum(counts.values())) * (1 + k), negatives_per_positive=k,
        split=opts.split, max_len=opts.max_len, mean_hist_len=round(float(hist_len.mean()), 3), subset=subset,
        **{f"full_ml1m_{key}": v for key, v in FULL_ML1M.items()},
    )
    if not full:
        log.warning("MovieLens: this is a part of ML-1M (%s); results on it must say so", subset)
    writer.name = opts.name
    writer.stats = stats
    writer.schema = Schema(item_fields=item_schema(data), user_fields=profile_schema(data, USER_FIELDS),
                           context_fields=CONTEXT_SCHEMA, max_len=opts.max_len)


def stats_table(stats: dict[str, Any]) -> str:
    """Table-1-style statistics (the paper's columns: users, items, categories, samples)."""
    rows = [
        ("users", stats.get("users"), stats.get("full_ml1m_users")),
        ("items (movies)", stats.get("items"), stats.get("full_ml1m_items")),
        ("categories (first genre)", stats.get("categories"), None),
        ("ratings = behaviours", stats.get("ratings"), stats.get("full_ml1m_ratings")),
        ("samples (pos + neg)", stats.get("samples"), None),
        ("  train / valid / test", tuple(stats.get(f"{s}_samples") for s in ("train", "valid", "test")), None),
        ("  test positives", stats.get("test_positives"), None),
        ("mean history length", stats.get("mean_hist_len"), None),
    ]
    return format_table(rows, f"Next-item MovieLens statistics ({stats.get('subset')}, split={stats.get('split')}) "
                              "vs the full ML-1M", "full ML-1M")
