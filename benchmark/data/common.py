"""Helpers shared by the real-data pipelines: raw-file reading, option handling, sample building, writing."""
from __future__ import annotations

import codecs
import logging
import os
import queue
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import state_root
from benchmark.paths import default_raw_root
from benchmark.data.cache import CacheWriter
from benchmark.data.errors import DataError
from benchmark.data.schema import as_int32

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400
_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32", codecs.BOM_UTF16_LE: "UTF-16",
         codecs.BOM_UTF16_BE: "UTF-16"}


# ---------------------------------------------------------------------------------------------- config
def resolve_raw_dir(cfg: Any, raw_root: Path | str | None = None) -> tuple[Path, bool]:
    """The raw folder and whether it is the default one (`datasets/raw/<name>`, where downloads may go).

    A relative `raw_dir` is taken from the directory the command was started in (Hydra's original cwd when
    Hydra changed it), else from the state root (benchmark/paths.py: the checkout in a source checkout). The
    default folder is `<raw_root>/<name>`, `raw_root` defaulting to `<state root>/datasets/raw`.
    """
    raw_dir = cfg.get("raw_dir", None)
    if raw_dir is None:
        base = Path(os.path.expanduser(str(raw_root))) if raw_root else default_raw_root()
        return base / str(cfg.name), True
    path = Path(os.path.expanduser(str(raw_dir)))
    if path.is_absolute():
        return path, False
    bases = []
    try:  # Hydra may have changed the working directory (hydra.job.chdir)
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            bases.append(Path(get_original_cwd()))
    except ImportError:  # pragma: no cover
        pass
    bases += [Path.cwd(), state_root()]
    for base in bases:
        if (base / path).is_dir():
            return (base / path).resolve(), False
    return (bases[0] / path).resolve(), False


def check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise DataError(f"unknown text encoding {name!r} in the dataset config") from exc


# ---------------------------------------------------------------------------------------------- reading
_READ_CHUNK = 1 << 20  # compressed bytes per read


def _produce(path: Path, is_gzip: bool, out: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: puts decompressed chunks into `out`, then b"" (or the exception raised).

    zlib releases the GIL while inflating, so decompression runs on a second core while the caller parses.
    Multi-member gzip files are followed; the gzip trailer (CRC-32, size) is checked by zlib.
    """
    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        with open(path, "rb") as f:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if is_gzip else None
            while not stop.is_set():
                data = f.read(_READ_CHUNK)
                if inflate is None:
                    put(data)
                    if not data:
                        return
                    continue
                if not data:
                    if not inflate.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    put(b"")
                    return
                while data:
                    text = inflate.decompress(data, 1 << 24)  # bounded output, even for a zip bomb
                    if text:
                        put(text)
                    data = inflate.unconsumed_tail
                    if inflate.eof and inflate.unused_data:  # next gzip member
                        data = inflate.unused_data
                        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    except BaseException as exc:  # handed to the consumer, which raises it with the line number
        put(exc)


def read_blocks(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """Yield (number of the block's first line, block of whole lines, number of lines) of a file, streaming.

    Every block but the last ends with a newline. gzip is recognised by its magic bytes. A truncated or
    corrupt gzip stream and a UTF-16/32 byte-order mark are errors naming the file and the line reached:
    never a silently shorter dataset. A UTF-8 byte-order mark is dropped.
    """
    path = Path(path)
    with open(path, "rb") as probe:
        magic = probe.read(2)
    is_gzip = magic == b"\x1f\x8b"
    if path.suffix == ".gz" and not is_gzip and magic:
        raise DataError(f"{path} is named .gz but is not a gzip file; download it again")
    chunks: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    reader = threading.Thread(target=_produce, args=(path, is_gzip, chunks, stop), daemon=True)
    reader.start()
    line_no = 0  # lines yielded so far
    try:
        rest = b""
        while True:
            chunk = chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                rest += chunk
                continue
            block = rest + chunk[:cut]
            rest = chunk[cut:]
            if line_no == 0:
                block = _check_first_line(path, block)
            n_lines = block.count(b"\n")
            yield line_no + 1, block, n_lines
            line_no += n_lines
        if rest:
            yield line_no + 1, _check_first_line(path, rest) if line_no == 0 else rest, 1
    except (EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is truncated or corrupt after line {line_no} ({type(exc).__name__}: {exc}); "
            "delete it and download it again"
        ) from exc
    finally:
        stop.set()
        reader.join()


def index_ids(ids: tuple[bytes, ...] | list[bytes], index: dict[bytes, int]) -> np.ndarray:
    """Indices of `ids` in `index`, adding unseen ids in order of first appearance (0, 1, ...)."""
    for key in dict.fromkeys(ids):  # the block's distinct ids, in order: few Python-level steps
        if key not in index:
            index[key] = len(index)
    return np.fromiter(map(index.__getitem__, ids), dtype=np.int64, count=len(ids))


def split_block(block: bytes) -> list[bytes]:
    """The lines of a block, without their newlines."""
    lines = block.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its newline) of a plain or gzip file (see read_blocks)."""
    for first, block, _ in read_blocks(path):
        yield from enumerate(split_block(block), first)


def _check_first_line(path: Path, line: bytes) -> bytes:
    for bom, enc in _BOMS.items():
        if line.startswith(bom):
            raise DataError(f"{path} starts with a {enc} byte-order mark; expected UTF-8 "
                            "(or ISO-8859-1 where configured) text")
    return line.removeprefix(codecs.BOM_UTF8)


# ---------------------------------------------------------------------------------------------- features
def log2_bucket(x: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket non-negative counts: 0 -> 1, 1-2 -> 2, 3-6 -> 3, 7-14 -> 4, ... capped at `n_buckets`."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    return np.minimum(np.floor(np.log2(x + 1.0)).astype(np.int64) + 1, n_buckets)


def rank_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Re-index values to 1..V by sorted order; returns (ids, sorted unique values)."""
    uniq, inv = np.unique(values, return_inverse=True)
    return inv.reshape(-1).astype(np.int64) + 1, uniq


def time_parts(ts: np.ndarray) -> dict[str, np.ndarray]:
    """UTC calendar parts of unix timestamps: year, month 1-12, weekday 1-7 (Monday 1), hour 0-23."""
    ts = np.asarray(ts, dtype=np.int64)
    days = np.floor_divide(ts, SECONDS_PER_DAY)
    dt = ts.astype("datetime64[s]")
    years = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return {
        "year": years, "month": months, "weekday": (days + 3) % 7 + 1,
        "hour": np.floor_divide(ts % SECONDS_PER_DAY, 3600),
    }


def user_positions(sorted_users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For events sorted by user: (position of each event within its user, user start offset, user count)."""
    n = len(sorted_users)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    boundary = np.empty(n, dtype=bool)
    boundary[0] = True
    np.not_equal(sorted_users[1:], sorted_users[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    counts = np.diff(np.append(starts, n))
    start_of_event = np.repeat(starts, counts)
    return np.arange(n, dtype=np.int64) - start_of_event, start_of_event, np.repeat(counts, counts)


def sample_unseen(rng: np.random.Generator, users: np.ndarray, n_items: int, seen_keys: np.ndarray,
                  stride: int) -> np.ndarray:
    """For each entry of `users`, a uniform random item id in 1..n_items that this user never interacted with.

    `seen_keys` is the sorted unique array of `user * stride + item` over all of the data (past and future).
    Rejection sampling, vectorised; fails clearly if some user interacted with (nearly) every item.
    """
    users = np.asarray(users, dtype=np.int64)
    items = rng.integers(1, n_items + 1, size=len(users), dtype=np.int64)
    if len(seen_keys) == 0:
        return items
    todo = np.arange(len(users))
    for _ in range(1000):
        keys = users[todo] * stride + items[todo]
        pos = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        todo = todo[seen_keys[pos] == keys]
        if len(todo) == 0:
            return items
        items[todo] = rng.integers(1, n_items + 1, size=len(todo), dtype=np.int64)
    raise DataError(f"cannot sample unseen items for {len(np.unique(users[todo]))} user(s): they interacted with "
                    f"(nearly) all {n_items} items")


# ---------------------------------------------------------------------------------------------- writing
def write_sequences(writer: CacheWriter, seq_item: np.ndarray, seq_neg: np.ndarray) -> None:
    """The dataset's behaviour sequences, stored once (schema.py): `seq_item` and its aligned negatives."""
    writer.add_sequence("hist", as_int32(seq_item, "the behaviour sequence"))
    writer.add_sequence("neg_hist", as_int32(seq_neg, "the negative behaviour sequence"))


def write_split(writer: CacheWriter, split: str, event: np.ndarray, item: np.ndarray, label: np.ndarray,
                per_event: dict[str, np.ndarray]) -> None:
    """One split's per-sample arrays, as int32 (schema.py).

    `event[n]` indexes the per-event arrays (`user`, `context`, `user_id`, `hist_end`, `hist_len`) for sample n;
    the history of sample n is rows `hist_end - hist_len : hist_end` of the sequences (`write_sequences`).
    """
    writer.add_array(split, "item", as_int32(item, f"{split}/item"))
    writer.add_array(split, "label", np.asarray(label, dtype=np.float32))
    for key in ("hist_end", "hist_len", "user", "context", "user_id"):
        writer.add_array(split, key, as_int32(per_event[key][event], f"{split}/{key}"))


def write_next_item(writer: CacheWriter, user: np.ndarray, item: np.ndarray, pos: np.ndarray,
                    split_of: np.ndarray, item_fields: np.ndarray, per_event: dict[str, np.ndarray], negatives: int,
                    seed: int) -> dict[str, int]:
    """Next-item samples, as in DIN's Amazon protocol (Amazon, and MovieLens as next-item data).

    Events sorted by user and time, `pos` each event's position within its user: every event after a user's
    first is a positive whose history is the user's events before it (`per_event`'s hist_end/hist_len), and each
    positive gets `negatives` uniform random items the user never interacted with (in all the data; drawn with
    replacement), with the
    same history, user and context fields. `split_of[n]` (0 train, 1 valid, 2 test) is the split of the n-th
    positive. Writes the behaviour sequences (every event, with a random unseen item per event for neg_hist) and
    the three splits; returns the positives per split.
    """
    n_items = len(item_fields) - 1
    stride = n_items + 1
    seen = np.unique(user * stride + item)
    neg_event_item = sample_unseen(np.random.default_rng([seed, 2]), user, n_items, seen, stride)
    positives = np.flatnonzero(pos >= 1)
    k = negatives
    neg_items = sample_unseen(np.random.default_rng([seed, 1]), np.repeat(user[positives], k), n_items, seen,
                              stride).reshape(-1, k)
    del seen
    write_sequences(writer, item_fields[item], item_fields[neg_event_item])
    del neg_event_item
    counts: dict[str, int] = {}
    for s, split in enumerate(("train", "valid", "test")):
        rows = np.flatnonzero(split_of == s)
        ev = positives[rows]
        cand = np.empty((len(ev), 1 + k), dtype=np.int64)
        cand[:, 0] = item[ev]
        cand[:, 1:] = neg_items[rows]
        label = np.zeros((len(ev), 1 + k), dtype=np.float32)
        label[:, 0] = 1.0
        write_split(writer, split, np.repeat(ev, 1 + k), item_fields[cand.reshape(-1)], label.reshape(-1),
                    per_event)
        counts[split] = len(ev)
    return counts


def format_table(rows: list[tuple[str, Any, Any]], title: str, reference: str = "paper") -> str:
    """A plain-text table: statistic, ours, reference."""
    def fmt(v: Any) -> str:
        if v is None or v == "":
            return "-"
        if isinstance(v, (tuple, list)):
            return " / ".join(fmt(x) for x in v)
        return f"{v:,}" if isinstance(v, (int, np.integer)) else str(v)

    lines = [title, f"  {'statistic':<30}{'ours':>22}{reference:>14}"]
    lines += [f"  {name:<30}{fmt(ours):>22}{fmt(paper):>14}" for name, ours, paper in rows]
    return "\n".join(lines)
