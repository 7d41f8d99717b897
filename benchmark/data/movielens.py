"""MovieLens-1M as the stand-in for the paper's private commercial dataset (rich profile, shorter histories).

Protocol (datasets/movielens/README.md has the full description):
- every rating is a sample, label 1 when rating >= `positive_threshold` (4), else 0: real negatives;
- a user's ratings sorted by (timestamp, line in the file); the history of a rating is the user's earlier
  positively rated movies (`history: positive`, default) or all earlier rated movies (`history: all`),
  last `max_len`, oldest first; `neg_hist` holds, per history step, a random movie the user never rated;
- per user, the last round(test_fraction * n) ratings (at least 1) are test, the round(valid_fraction * n)
  before them validation, the rest train; users with fewer than 3 ratings go to train only;
- item fields (movie_id, genre_id = first listed genre, year_id = release year from the title);
- user fields (gender, age, occupation, zip prefix) from users.dat; context fields (hour, weekday of the
  rating in UTC, days since the user's previous rating, log2 buckets, 0 for the first rating).
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from benchmark.data.cache import CacheWriter, load_or_build
from benchmark.data.common import (SECONDS_PER_DAY, check_encoding, format_table, log2_bucket, rank_ids,
                                   read_blocks, read_lines, resolve_raw_dir, sample_unseen, split_block, time_parts,
                                   user_positions, write_sequences, write_split)
from benchmark.data.download import ensure_raw_files
from benchmark.data.errors import BadLines, DataError
from benchmark.data.schema import Dataset, Field, Schema

log = logging.getLogger(__name__)
T = TypeVar("T")

PIPELINE_VERSION = 1  # bump whenever the produced arrays change for the same config and raw files
FULL_ML1M = {"users": 6_040, "items": 3_706, "ratings": 1_000_209}
DAY_BUCKETS = 14
_YEAR_RE = re.compile(r"\((\d{4})\)\s*$")
_RATING_RE = re.compile(rb"^(\d{1,18})::(\d{1,18})::(\d{1,18})::(\d{1,18})\r?$", re.M)


@dataclass(frozen=True)
class MovieLensOptions:
    """Every preprocessing knob; all of them are part of the cache key. Defaults and allowed values: the dataset
    schema `MovieLens` (benchmark/config/schema.py), checked before a job loads any data."""

    name: str
    ratings_file: str
    max_len: int
    seed: int
    positive_threshold: int
    history: str  # positive: earlier ratings >= threshold | all: every earlier rating
    valid_fraction: float
    test_fraction: float
    zip_prefix_len: int
    on_bad_line: str
    max_bad_fraction: float
    encoding: str  # of movies.dat and users.dat (ratings.dat is ASCII digits)

    @classmethod
    def from_cfg(cls, cfg: Any, ratings_file: str) -> "MovieLensOptions":
        return options_from_cfg(cls, cfg, ratings_file)


def options_from_cfg(cls: type[T], cfg: Any, ratings_file: str) -> T:
    """A MovieLens task's options (every field of `cls` but the ratings file's name, which the raw folder decides)
    from a dataset config composed over its schema (a job's, or benchmark.config.group_config's)."""
    options = {f.name: cfg[f.name] for f in fields(cls) if f.name != "ratings_file"}
    return cls(**{**options, "ratings_file": ratings_file, "encoding": check_encoding(options["encoding"])})


def load(cfg: Any, cache_dir: Path, raw_root: Path | str | None = None) -> Dataset:
    """Build (or read from the cache) MovieLens-1M from ratings.dat(.gz), users.dat and movies.dat."""
    raw_dir, is_default = resolve_raw_dir(cfg, raw_root)
    ensure_raw_files("movielens", raw_dir,
                     (("ratings.dat", "ratings.dat.gz"), ("users.dat",), ("movies.dat",)),
                     allow_download=is_default and bool(cfg.download))
    ratings = raw_dir / "ratings.dat" if (raw_dir / "ratings.dat").is_file() else raw_dir / "ratings.dat.gz"
    opts = MovieLensOptions.from_cfg(cfg, ratings.name)
    files = [ratings, raw_dir / "users.dat", raw_dir / "movies.dat"]
    key_config = {"loader": "movielens", "pipeline_version": PIPELINE_VERSION, **asdict(opts)}
    dataset = load_or_build(cache_dir, opts.name, key_config, files, lambda w: build(w, opts, *files))
    log.info("\n%s", stats_table(dataset.stats))
    return dataset


# ---------------------------------------------------------------------------------------------- parsing
def parse_ratings(path: Path, opts: MovieLensOptions) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """UserID::MovieID::Rating::Timestamp per line; a block of well-formed lines is read by one regex pass."""
    parts: list[np.ndarray] = []
    bad = BadLines(path, opts.on_bad_line, opts.max_bad_fraction)
    total = 0
    for first, block, n_lines in read_blocks(path):
        total = first + n_lines - 1
        rows = _RATING_RE.findall(block)
        if len(rows) == n_lines:
            values = np.array(rows).astype(np.int64)
            if _valid_ratings(values).all():
                parts.append(values)
                continue
        values = np.zeros((n_lines, 4), dtype=np.int64)
        keep = np.zeros(n_lines, dtype=bool)
        for k, line in enumerate(split_block(block)):
            fields = line.split(b"::")
            try:
                if len(fields) != 4:
                    raise ValueError(f"{len(fields)} fields, expected UserID::MovieID::Rating::Timestamp")
                values[k] = [int(f) for f in fields]
                if not _valid_ratings(values[k:k + 1])[0]:
                    raise ValueError("value out of range")
            except (ValueError, OverflowError) as exc:
                bad.bad(first + k, "empty line" if not line.strip() else str(exc)[:200])
                continue
            keep[k] = True
        parts.append(values[keep])
    n_bad = bad.finish(total)
    values = np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)
    if len(values) == 0:
        raise DataError(f"{path} holds no ratings ({total} lines, {n_bad} malformed)")
    cols = {k: np.ascontiguousarray(values[:, j]) for j, k in enumerate(("user", "movie", "rating", "time"))}
    return cols, {"rating_lines": total, "rating_bad_lines": n_bad}


def _valid_ratings(values: np.ndarray) -> np.ndarray:
    return (values[:, 0] > 0) & (values[:, 1] > 0) & (values[:, 2] >= 1) & (values[:, 2] <= 5) & (values[:, 3] >= 0)


def _split_fields(path: Path, opts: MovieLensOptions, n_fields: int, what: str) -> tuple[list[list[str]], int]:
    """Lines of a '::'-separated text file as lists of str fields (decoded with `opts.encoding`)."""
    rows: list[list[str]] = []
    bad = BadLines(path, opts.on_bad_line, opts.max_bad_fraction)
    total = 0
    for total, line in read_lines(path):
        try:
            text = line.decode(opts.encoding).rstrip("\r\n")
        except UnicodeDecodeError as exc:
            bad.bad(total, f"not {opts.encoding} text ({exc})")
            continue
        if n_fields == 3:  # a title may contain '::' in principle: split id from the left, genres from the right
            head, _, rest = text.partition("::")
            title, sep, genres = rest.rpartition("::")
            parts = [head, title, genres] if sep else [text]
        else:
            parts = text.split("::")
        if len(parts) != n_fields or not parts[0].strip().isdigit():
            bad.bad(total, f"expected {what}" if text.strip() else "empty line")
            continue
        rows.append(parts)
    n_bad = bad.finish(total)
    if not rows:
        raise DataError(f"{path} is empty or holds no {what} lines")
    return rows, n_bad


# ---------------------------------------------------------------------------------------------- building
@dataclass
class Ratings:
    """The three files read and re-indexed, events sorted by (user, timestamp, line in the file): what both MovieLens
    tasks (rating here, next-item in movielens_seq.py) are built from."""

    user: np.ndarray          # [N] user index 1..U, sorted
    movie: np.ndarray         # [N] movie index 1..M
    time: np.ndarray          # [N] unix seconds
    rating: np.ndarray        # [N] 1..5
    profile: np.ndarray       # [N, 4] gender, age, occupation, zip prefix ids of the event's user (0: unknown)
    profile_vocab: tuple      # the four profile vocabularies (sorted unique values)
    item_fields: np.ndarray   # [M + 1, 3] movie_id, genre_id, year_id per movie index (row 0: padding)
    genres: int               # genre vocabulary size (without the 0)
    years: int                # year vocabulary size (without the 0)
    user_vocab: np.ndarray    # raw user id of each user index - 1
    stats: dict[str, Any]     # parse counters


def read_ratings(opts: Any, ratings_path: Path, users_path: Path, movies_path: Path, zip_prefix_len: int) -> Ratings:
    """Parse ratings.dat(.gz), users.dat and movies.dat (`opts`: on_bad_line, max_bad_fraction, encoding) and sort
    the events by user, time and line."""
    cols, stats = parse_ratings(ratings_path, opts)
    user_rows, stats["user_bad_lines"] = _split_fields(users_path, opts, 5, "UserID::Gender::Age::Occupation::Zip")
    movie_rows, stats["movie_bad_lines"] = _split_fields(movies_path, opts, 3, "MovieID::Title::Genres")

    # profiles, indexed by raw user id; vocabularies from the whole of users.dat
    profile_uid = np.array([int(r[0]) for r in user_rows], dtype=np.int64)
    profile_cols = [
        [r[1].strip() for r in user_rows], [r[2].strip() for r in user_rows], [r[3].strip() for r in user_rows],
        [r[4].strip()[:zip_prefix_len] for r in user_rows],
    ]
    profile_ids, profile_vocab = zip(*(rank_ids(np.array(c)) for c in profile_cols))
    max_uid = max(int(profile_uid.max()), int(cols["user"].max()))
    profile = np.zeros((max_uid + 1, 4), dtype=np.int64)
    profile[profile_uid] = np.stack(profile_ids, axis=1)

    # movie metadata, indexed by raw movie id
    movie_id = np.array([int(r[0]) for r in movie_rows], dtype=np.int64)
    genre_first = np.array([r[2].split("|")[0].strip() for r in movie_rows])
    genre_ids, genre_vocab = rank_ids(genre_first)
    years = [_YEAR_RE.search(r[1].strip()) for r in movie_rows]
    year_val = np.array([int(m.group(1)) if m else 0 for m in years], dtype=np.int64)
    year_vocab = np.unique(year_val[year_val > 0])
    year_ids = np.where(year_val > 0, np.searchsorted(year_vocab, year_val) + 1, 0)
    max_mid = max(int(movie_id.max()), int(cols["movie"].max()))
    movie_meta = np.zeros((max_mid + 1, 2), dtype=np.int64)
    movie_meta[movie_id] = np.stack([genre_ids, year_ids], axis=1)

    raw_user, raw_movie = cols["user"], cols["movie"]
    stats["users_without_profile"] = int(len(np.setdiff1d(np.unique(raw_user), profile_uid)))
    stats["movies_missing_meta"] = int(len(np.setdiff1d(np.unique(raw_movie), movie_id)))
    for what, n in (("user(s) are not in users.dat", stats["users_without_profile"]),
                    ("movie(s) are not in movies.dat", stats["movies_missing_meta"])):
        if n:
            log.warning("%s: %d %s; their fields are 0 (unknown)", ratings_path, n, what)

    # re-index users and movies that have ratings, by raw id
    user, user_vocab = rank_ids(raw_user)
    movie, movie_vocab = rank_ids(raw_movie)
    n_movies = len(movie_vocab)
    item_fields = np.zeros((n_movies + 1, 3), dtype=np.int64)
    item_fields[1:, 0] = np.arange(1, n_movies + 1)
    item_fields[1:, 1:] = movie_meta[movie_vocab]

    order = np.lexsort((np.arange(len(user)), cols["time"], user))
    return Ratings(user=user[order], movie=movie[order], time=cols["time"][order], rating=cols["rating"][order],
                   profile=profile[raw_user[order]], profile_vocab=profile_vocab, item_fields=item_fields,
                   genres=len(genre_vocab), years=len(year_vocab), user_vocab=user_vocab, stats=stats)


def context_fields(time: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[N, 3] hour + 1, weekday, log2 days since the user's previous rating (0 for the first) of sorted events."""
    parts = time_parts(time)
    day = np.floor_divide(time, SECONDS_PER_DAY)
    has_prev = pos >= 1
    prev = np.where(has_prev, np.arange(len(time)) - 1, 0)
    return np.stack([parts["hour"] + 1, parts["weekday"],
                     np.where(has_prev, log2_bucket(day - day[prev], DAY_BUCKETS), 0)], axis=1)


def subset_name(n_ratings: int, user_vocab: np.ndarray) -> tuple[bool, str]:
    """(whether this is the full ML-1M, the words results on it must carry)."""
    full = n_ratings == FULL_ML1M["ratings"] and len(user_vocab) == FULL_ML1M["users"]
    if not full:
        return False, (f"ML-1M, users {int(user_vocab.min())}-{int(user_vocab.max())} ({n_ratings:,} of "
                       f"{FULL_ML1M['ratings']:,} ratings)")
    return True, "full ML-1M"


def build(writer: CacheWriter, opts: MovieLensOptions, ratings_path: Path, users_path: Path,
          movies_path: Path) -> None:
    data = read_ratings(opts, ratings_path, users_path, movies_path, opts.zip_prefix_len)
    stats = data.stats
    user, movie, time, item_fields = data.user, data.movie, data.time, data.item_fields
    n_users, n_movies = len(data.user_vocab), len(item_fields) - 1
    label = (data.rating >= opts.positive_threshold).astype(np.float32)
    n_events = len(user)
    pos, start, count = user_positions(user)

    # history: the user's earlier (positive) ratings, as rows of the behaviour arrays
    if opts.history == "positive":
        is_beh = label > 0
        before = np.cumsum(is_beh) - is_beh  # behaviours before each event, over all users
        hist_end = before
        n_prior = before - before[start]
        behaviours = np.flatnonzero(is_beh)
    else:
        hist_end, n_prior, behaviours = np.arange(n_events), pos, np.arange(n_events)
    stride = n_movies + 1
    seen = np.unique(user * stride + movie)
    neg = sample_unseen(np.random.default_rng([opts.seed, 2]), user[behaviours], n_movies, seen, stride)
    seq_item, seq_neg = item_fields[movie[behaviours]], item_fields[neg]

    per_event = {
        "user": data.profile,
        "context": context_fields(time, pos),
        "user_id": user, "hist_end": hist_end, "hist_len": np.minimum(n_prior, opts.max_len),
    }

    # per-user time split: last ~test_fraction test, the ~valid_fraction before validation
    big = count >= 3
    n_test = np.where(big, np.maximum(1, np.floor(opts.test_fraction * count + 0.5)), 0).astype(np.int64)
    n_valid = np.where(big, np.maximum(1, np.floor(opts.valid_fraction * count + 0.5)), 0).astype(np.int64)
    from_end = count - 1 - pos
    split_of = np.where(from_end < n_test, 2, np.where(from_end < n_test + n_valid, 1, 0))
    write_sequences(writer, seq_item, seq_neg)
    for s, split in enumerate(("train", "valid", "test")):
        ev = np.flatnonzero(split_of == s)
        write_split(writer, split, ev, item_fields[movie[ev]], label[ev], per_event)
        stats[f"{split}_samples"] = len(ev)
        stats[f"{split}_positive_rate"] = round(float(label[ev].mean()), 4) if len(ev) else 0.0

    full, subset = subset_name(n_events, data.user_vocab)
    stats.update(
        dataset=opts.name, users=n_users, items=n_movies, genres=data.genres, years=data.years,
        ratings=n_events, samples=n_events, positive_rate=round(float(label.mean()), 4),
        mean_hist_len=round(float(per_event["hist_len"].mean()), 3), max_len=opts.max_len,
        history=opts.history, positive_threshold=opts.positive_threshold,
        subset=subset,
        **{f"full_ml1m_{k}": v for k, v in FULL_ML1M.items()},
    )
    if not full:
        log.warning("MovieLens: this is a part of ML-1M (%s); results on it must say so", stats["subset"])
    writer.name = opts.name
    writer.stats = stats
    writer.schema = Schema(item_fields=item_schema(data), user_fields=profile_schema(data, 4),
                           context_fields=CONTEXT_SCHEMA, max_len=opts.max_len)


CONTEXT_SCHEMA = (Field("hour", 25), Field("weekday", 8), Field("days_since_prev", DAY_BUCKETS + 1))


def item_schema(data: Ratings) -> tuple[Field, ...]:
    return (Field("movie_id", len(data.item_fields)), Field("genre_id", data.genres + 1),
            Field("year_id", data.years + 1))


def profile_schema(data: Ratings, n: int) -> tuple[Field, ...]:
    """The first `n` profile fields: gender, age, occupation, zip prefix."""
    names = ("gender", "age", "occupation", "zip_prefix")
    return tuple(Field(name, len(vocab) + 1) for name, vocab in zip(names[:n], data.profile_vocab[:n]))


def stats_table(stats: dict[str, Any]) -> str:
    rows = [
        ("users", stats.get("users"), stats.get("full_ml1m_users")),
        ("movies", stats.get("items"), stats.get("full_ml1m_items")),
        ("genres (first listed)", stats.get("genres"), None),
        ("ratings = samples", stats.get("ratings"), stats.get("full_ml1m_ratings")),
        ("positive rate (rating >= 4)", stats.get("positive_rate"), None),
        ("train / valid / test", tuple(stats.get(f"{s}_samples") for s in ("train", "valid", "test")), None),
        ("mean history length", stats.get("mean_hist_len"), None),
    ]
    return format_table(rows, f"MovieLens statistics ({stats.get('subset')}) vs the full ML-1M", "full ML-1M")
