"""The atomic dataset cache: keys, reuse, corruption detection and rebuild, no half-written entries."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.cache import cache_key, load_or_build
from benchmark.data.schema import SEQUENCE_KEYS, SPLIT_KEYS, SPLITS, Dataset, Field, Schema

SCHEMA = Schema((Field("item_id", 10), Field("cate_id", 4)), (Field("u", 3),), (Field("c", 5),), max_len=3)


def tiny_dataset(n: int = 4, fill: int = 1) -> Dataset:
    splits = {}
    for s in SPLITS:
        splits[s] = {
            "item": np.full((n, 2), fill, dtype=np.int64), "hist": np.zeros((n, 3, 2), dtype=np.int64),
            "hist_len": np.zeros(n, dtype=np.int64), "neg_hist": np.zeros((n, 3, 2), dtype=np.int64),
            "user": np.ones((n, 1), dtype=np.int64), "context": np.ones((n, 1), dtype=np.int64),
            "label": np.arange(n, dtype=np.float32) % 2, "user_id": np.arange(n, dtype=np.int64),
        }
    return Dataset.from_dense("tiny", SCHEMA, splits, {"rows": n})


class Builder:
    def __init__(self, fill: int = 1) -> None:
        self.calls = 0
        self.fill = fill

    def __call__(self, writer) -> None:
        self.calls += 1
        writer.write_dataset(tiny_dataset(fill=self.fill))


@pytest.fixture
def raw(tmp_path: Path) -> list[Path]:
    f = tmp_path / "raw" / "data.txt"
    f.parent.mkdir()
    f.write_text("hello")
    return [f]


def test_reuse_and_keys(tmp_path: Path, raw: list[Path]) -> None:
    build = Builder()
    a = load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, build)
    b = load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, build)
    assert build.calls == 1
    a.validate()
    for s in SPLITS:
        for key in SPLIT_KEYS:
            np.testing.assert_array_equal(a.splits[s][key], b.splits[s][key])
    for key in SEQUENCE_KEYS:
        np.testing.assert_array_equal(a.sequences[key], b.sequences[key])
    assert b.schema == SCHEMA and b.stats["rows"] == 4 and b.stats["cache_entry"].startswith("tiny-")
    assert json.loads((tmp_path / "c" / b.stats["cache_entry"] / "stats.json").read_text()) == {"rows": 4}
    b.splits["train"]["item"][0, 0] = 7  # copy-on-write map: writable, the file is untouched
    assert load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, build).splits["train"]["item"][0, 0] == 1
    load_or_build(tmp_path / "c", "tiny", {"k": 2}, raw, build)
    assert build.calls == 2  # another config: another entry


def test_key_follows_raw_content_not_folder_spelling(tmp_path: Path, raw: list[Path]) -> None:
    key = cache_key({"k": 1}, raw)
    assert cache_key({"k": 1}, [tmp_path / "raw" / ".." / "raw" / "data.txt"]) == key
    raw[0].write_text("hello, changed")
    assert cache_key({"k": 1}, raw) != key


def _entry(cache: Path) -> Path:
    (entry,) = [p for p in cache.iterdir() if p.name.startswith("tiny-")]
    return entry


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "meta"])
def test_damaged_entry_is_detected_and_rebuilt(tmp_path: Path, raw: list[Path], damage: str, caplog) -> None:
    cache = tmp_path / "c"
    build = Builder()
    load_or_build(cache, "tiny", {"k": 1}, raw, build)
    entry = _entry(cache)
    target = entry / "events.hist.npy"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-8])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-1] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (entry / "meta.json").write_text("{not json")
    keep = cache / "unrelated.txt"
    keep.write_text("mine")
    with caplog.at_level(logging.WARNING):
        ds = load_or_build(cache, "tiny", {"k": 1}, raw, build)
    assert build.calls == 2 and "damaged" in caplog.text
    ds.validate()
    assert not ds.dense("train")["hist"].any()
    assert keep.read_text() == "mine"
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [entry.name, "unrelated.txt"]


def test_failed_build_leaves_nothing(tmp_path: Path, raw: list[Path]) -> None:
    def failing(writer) -> None:
        writer.add_array("train", "item", np.zeros((2, 2), dtype=np.int64))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, failing)
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")] == []

    def incomplete(writer) -> None:
        writer.schema = SCHEMA
        writer.add_array("train", "item", np.zeros((2, 2), dtype=np.int64))

    with pytest.raises(ValueError, match="did not write arrays"):
        load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, incomplete)
    assert [p.name for p in (tmp_path / "c").iterdir() if not p.name.endswith(".lock")] == []


def test_stale_temporary_folder_of_a_killed_build_is_cleared(tmp_path: Path, raw: list[Path]) -> None:
    cache = tmp_path / "c"
    cache.mkdir()
    stale = cache / f".tmp-tiny-{cache_key({'k': 1}, raw)}-99999-deadbeef"
    stale.mkdir()
    (stale / "train.item.npy").write_bytes(b"partial")
    other = cache / ".tmp-other-0000000000000000-1-x"
    other.mkdir()
    load_or_build(cache, "tiny", {"k": 1}, raw, Builder())
    assert not stale.exists() and other.exists()


def test_streamed_arrays_must_be_complete(tmp_path: Path, raw: list[Path]) -> None:
    def short(writer) -> None:
        writer.schema = SCHEMA
        sink = writer.open_array("train", "item", (4, 2), np.int64)
        sink.write(np.zeros((3, 2), dtype=np.int64))

    with pytest.raises(ValueError, match="wrote 3 rows, expected 4"):
        load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, short)
    assert not any(p.name.startswith(("tiny-", ".tmp-")) for p in (tmp_path / "c").iterdir())


def test_entry_is_renamed_into_place(tmp_path: Path, raw: list[Path], monkeypatch) -> None:
    """The final name appears only through one rename of a complete folder."""
    renames = []
    real = os.rename

    def spy(src, dst):
        renames.append((Path(src).name, Path(dst).name, sorted(os.listdir(src))))
        return real(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    load_or_build(tmp_path / "c", "tiny", {"k": 1}, raw, Builder())
    ((src, dst, files),) = renames
    assert src.startswith(".tmp-tiny-") and dst.startswith("tiny-") and "meta.json" in files
    assert len([f for f in files if f.endswith(".npy")]) == len(SPLITS) * len(SPLIT_KEYS) + len(SEQUENCE_KEYS)
