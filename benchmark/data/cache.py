"""Atomic on-disk cache of preprocessed datasets.

An entry is a folder `<cache_dir>/<name>-<key>/` holding one `.npy` file per array (`<split>.<key>.npy`, and
`events.<key>.npy` for the behaviour sequences stored once: schema.py), `stats.json`, and `meta.json` (schema, stats, the key config, raw-file fingerprints and, per array, its
shape, dtype, file size and CRC-32). `key` hashes the layout's version (FORMAT_VERSION), the preprocessing
config (which must include the pipeline's version constant) and the raw files' names, sizes and modification
times, so a changed layout, knob or raw file never reads a stale entry (an entry of an older layout keeps its
folder, untouched, and is simply never read); the raw folder's spelling is not part of the key.

Entries are written into a temporary folder beside the final one and renamed into place, so a crash
never leaves a half-written entry under the final name. One `.npy` per array (instead of one `.npz`)
lets builders stream large arrays to disk in chunks and lets readers memory-map them. On load every
file is checked (size and CRC-32); a damaged entry is reported, removed (that entry only) and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.errors import DataError
from benchmark.io import file_lock
from benchmark.data.schema import SEQUENCE_KEYS, SPLIT_KEYS, SPLITS, Dataset, Schema


log = logging.getLogger(__name__)

# 1: dense [N, T, Fi] int64 histories per sample; 2: histories stored once as int32 sequences (schema.py)
FORMAT_VERSION = 2
EVENTS = "events"  # the pseudo-split of the sequence arrays in file and array names
_CHUNK = 1 << 24


class CorruptEntry(Exception):
    """Raised internally when an entry on disk does not match its meta.json."""


def fingerprint(raw_files: Sequence[Path]) -> list[dict[str, Any]]:
    """Name, size and mtime of each raw file: what the cache key knows about the raw data."""
    out = []
    for p in raw_files:
        st = Path(p).stat()
        out.append({"name": Path(p).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def cache_key(key_config: dict[str, Any], raw_files: Sequence[Path]) -> str:
    """16 hex digits of SHA-256 over the layout's version, the config (sorted JSON) and the raw files'
    fingerprints."""
    blob = json.dumps({"format": FORMAT_VERSION, "config": key_config, "raw": fingerprint(raw_files)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


class ArraySink:
    """An `.npy` file of known shape and dtype, written in row chunks without holding the whole array."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self._rows = 0
        self._f = open(path, "wb")
        np.lib.format.write_array_header_1_0(
            self._f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        )
        self._f.flush()
        self.crc = _file_crc(path)  # of the header; extended chunk by chunk

    def write(self, chunk: np.ndarray) -> None:
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if chunk.shape[1:] != self.shape[1:] or self._rows + len(chunk) > self.shape[0]:
            raise ValueError(f"{self.path.name}: chunk of shape {chunk.shape} does not fit {self.shape}")
        self._f.write(chunk.data)
        self.crc = zlib.crc32(chunk.data, self.crc)
        self._rows += len(chunk)

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.close()
        if self._rows != self.shape[0]:
            raise ValueError(f"{self.path.name}: wrote {self._rows} rows, expected {self.shape[0]}")


class CacheWriter:
    """What a build function fills: arrays (whole or streamed), the schema and the stats."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.schema: Schema | None = None
        self.stats: dict[str, Any] = {}
        self.name: str = ""
        self._sinks: dict[str, ArraySink] = {}

    def open_array(self, split: str, key: str, shape: tuple[int, ...], dtype: Any) -> ArraySink:
        sink = ArraySink(self.folder / f"{split}.{key}.npy", shape, dtype)
        self._sinks[f"{split}/{key}"] = sink
        return sink

    def add_array(self, split: str, key: str, array: np.ndarray) -> None:
        sink = self.open_array(split, key, array.shape, array.dtype)
        sink.write(array)
        sink.close()

    def add_sequence(self, key: str, array: np.ndarray) -> None:
        """One of the dataset's behaviour sequences (schema.SEQUENCE_KEYS), written once for all splits."""
        self.add_array(EVENTS, key, array)

    def write_dataset(self, dataset: Dataset) -> None:
        """Convenience for small builders that produce a whole `Dataset` in memory."""
        self.name, self.schema, self.stats = dataset.name, dataset.schema, dict(dataset.stats)
        for key, array in dataset.sequences.items():
            self.add_sequence(key, array)
        for split, arrays in dataset.splits.items():
            for key, array in arrays.items():
                self.add_array(split, key, array)

    def finish(self, entry_meta: dict[str, Any]) -> None:
        if self.schema is None:
            raise ValueError("the build function did not set writer.schema")
        arrays = {}
        for name, sink in self._sinks.items():
            sink.close()
            arrays[name] = {
                "file": sink.path.name, "shape": list(sink.shape), "dtype": sink.dtype.str,
                "bytes": sink.path.stat().st_size, "crc32": sink.crc,
            }
        expected = [f"{s}/{k}" for s in SPLITS for k in SPLIT_KEYS] + [f"{EVENTS}/{k}" for k in SEQUENCE_KEYS]
        missing = [name for name in expected if name not in arrays]
        if missing:
            raise ValueError(f"the build function did not write arrays {missing}")
        meta = dict(entry_meta, name=self.name, schema=self.schema.to_dict(), stats=self.stats, arrays=arrays)
        (self.folder / "stats.json").write_text(json.dumps(self.stats, indent=2, sort_keys=True, default=str))
        # meta.json last: an entry folder without it is never complete
        (self.folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))


def _read_entry(folder: Path, key: str, mmap: bool, verify: bool = True) -> Dataset:
    """Load and verify an entry; raises CorruptEntry describing the first problem found."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise CorruptEntry(f"meta.json unreadable ({exc})") from exc
    if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
        raise CorruptEntry("meta.json does not match this cache key or format")
    splits: dict[str, dict[str, np.ndarray]] = {s: {} for s in SPLITS}
    sequences: dict[str, np.ndarray] = {}
    try:
        for name, info in meta["arrays"].items():
            split, array_key = name.split("/")
            path = folder / info["file"]
            if not path.is_file() or path.stat().st_size != info["bytes"]:
                raise CorruptEntry(f"{info['file']} is missing or has the wrong size")
            if verify and _file_crc(path) != info["crc32"]:
                raise CorruptEntry(f"{info['file']} fails its CRC-32 check")
            array = np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)
            if list(array.shape) != info["shape"] or array.dtype.str != info["dtype"]:
                raise CorruptEntry(f"{info['file']} has shape {array.shape}/{array.dtype}, meta says {info}")
            (sequences if split == EVENTS else splits[split])[array_key] = array
        schema = Schema.from_dict(meta["schema"])
    except CorruptEntry:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CorruptEntry(f"unreadable ({type(exc).__name__}: {exc})") from exc
    stats = dict(meta.get("stats", {}), cache_entry=folder.name)
    return Dataset(name=meta["name"], schema=schema, splits=splits, sequences=sequences, stats=stats)


def _remove(folder: Path) -> None:
    """Remove one folder of ours: renamed aside first, so a crash mid-removal never looks like an entry."""
    aside = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def load_or_build(
    cache_dir: Path,
    name: str,
    key_config: dict[str, Any],
    raw_files: Sequence[Path],
    build_fn: Callable[[CacheWriter], None],
    mmap: bool = True,
) -> Dataset:
    """Return the cached dataset for (key_config, raw files), building it with `build_fn(writer)` if needed.

    `build_fn` fills the writer: `writer.schema`, `writer.stats`, `writer.name`, and every split's arrays via
    `writer.add_array` / `writer.open_array` (streamed) or all at once via `writer.write_dataset(dataset)`.
    With `mmap`, arrays are memory-mapped copy-on-write (writable, paged in on use).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(key_config, raw_files)
    entry = f"{name}-{key}"
    folder = cache_dir / entry
    if (folder / "meta.json").exists():
        try:
            return _read_entry(folder, key, mmap)
        except CorruptEntry as exc:
            log.warning("cache entry %s is damaged (%s); rebuilding it", folder, exc)
    with file_lock(cache_dir / f".{entry}.lock"):
        if folder.exists():  # built by another process meanwhile, or damaged
            try:
                return _read_entry(folder, key, mmap)
            except CorruptEntry as exc:
                log.warning("cache entry %s is damaged or incomplete (%s); removing it", folder, exc)
                _remove(folder)
        for stale in cache_dir.glob(f".tmp-{entry}-*"):  # left by a killed build; we hold the entry's lock
            log.warning("removing the stale temporary folder %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = cache_dir / f".tmp-{entry}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            writer = CacheWriter(tmp)
            writer.name = name
            build_fn(writer)
            writer.finish({
                "format": FORMAT_VERSION, "key": key, "key_config": key_config, "raw_files": fingerprint(raw_files),
            })
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("cached %s in %s", name, folder)
    return _read_entry(folder, key, mmap, verify=False)  # just written and checksummed


__all__ = ["ArraySink", "CacheWriter", "DataError", "cache_key", "fingerprint", "load_or_build"]
