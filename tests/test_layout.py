"""The stored layout (histories stored once, schema.py) and the batches built from it (benchmark/batches.py).

A hand-worked dataset of three users, written through the pipelines' own writers (`write_sequences`,
`write_split`) into a cache entry: its batches must hold, value for value, the dense windows each sample had in
the layout before (histories oldest first, right-padded with zeros, the aligned negatives, the lengths), with an
empty history and a history longer than T among them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.batches import DEFAULT_INPUTS, DeviceSplit, device_splits, model_inputs, resident_bytes
from benchmark.data import cache
from benchmark.data.cache import load_or_build
from benchmark.data.common import write_sequences, write_split
from benchmark.data.schema import BATCH_KEYS, SPLITS, Dataset, Field, Schema, as_int32
from models import build_model

T = 3  # max_len
SCHEMA = Schema((Field("item_id", 10), Field("cate_id", 4)), (Field("age", 3),), (Field("hour", 5),), max_len=T)
CATE = {1: 1, 2: 1, 3: 2, 4: 3, 5: 2, 6: 3, 7: 1, 8: 2, 9: 3}

# Per-event behaviour sequence, by user and in time order: user 1 has events 0-4 (items 1..5), user 2 events
# 5-6 (items 6, 7), user 3 none. Negatives: item + 4 (mod 9, 1-based).
SEQ_ITEMS = np.array([1, 2, 3, 4, 5, 6, 7])
NEG_ITEMS = (SEQ_ITEMS + 3) % 9 + 1


def rows(items: np.ndarray) -> np.ndarray:
    return np.stack([items, [CATE[int(i)] for i in items]], axis=1)


# Samples: (split, user, event whose history it sees, history end in the sequence, history length, candidate)
SAMPLES = [
    ("train", 1, 0, 0, 0, 2),  # first event of user 1: empty history
    ("train", 1, 1, 1, 1, 3),
    ("train", 2, 5, 5, 0, 7),  # user 2's first: empty
    ("train", 1, 4, 4, 3, 5),  # four earlier events, the last T = 3 kept
    ("valid", 1, 5, 5, 3, 6),  # five earlier: items 3, 4, 5
    ("valid", 2, 6, 6, 1, 8),
    ("test", 3, 7, 7, 0, 9),  # a user with no behaviours at all
    ("test", 2, 7, 7, 2, 1),
]


def expected_dense(split: str) -> dict[str, np.ndarray]:
    """The dense windows written out by hand: what today's batch dict holds for each sample."""
    picked = [s for s in SAMPLES if s[0] == split]
    hist = np.zeros((len(picked), T, 2), dtype=np.int64)
    neg = np.zeros((len(picked), T, 2), dtype=np.int64)
    for n, (_, _, _, end, length, _) in enumerate(picked):
        if length:
            hist[n, :length] = rows(SEQ_ITEMS[end - length:end])
            neg[n, :length] = rows(NEG_ITEMS[end - length:end])
    return {"hist": hist, "neg_hist": neg, "hist_len": np.array([s[4] for s in picked]),
            "item": rows(np.array([s[5] for s in picked])).reshape(-1, 2),
            "user_id": np.array([s[1] for s in picked])}


def build(writer) -> None:
    """A builder in the pipelines' way: per-event arrays, one sequence write, one write_split per split."""
    writer.name, writer.schema, writer.stats = "hand", SCHEMA, {}
    write_sequences(writer, rows(SEQ_ITEMS), rows(NEG_ITEMS))
    for split in SPLITS:
        picked = [s for s in SAMPLES if s[0] == split]
        n = len(picked)
        per_event = {"hist_end": np.array([s[3] for s in picked]), "hist_len": np.array([s[4] for s in picked]),
                     "user": np.ones((n, 1), dtype=np.int64), "context": np.full((n, 1), 2),
                     "user_id": np.array([s[1] for s in picked])}
        write_split(writer, split, np.arange(n), rows(np.array([s[5] for s in picked])).reshape(-1, 2),
                    np.arange(n) % 2, per_event)


@pytest.fixture
def hand(tmp_path: Path) -> Dataset:
    dataset = load_or_build(tmp_path / "cache", "hand", {"v": 1}, [], build)
    dataset.validate()
    return dataset


def test_the_stored_layout_is_int32_and_holds_each_behaviour_once(hand: Dataset) -> None:
    assert hand.sequences["hist"].shape == (len(SEQ_ITEMS), 2) and hand.sequences["hist"].dtype == np.int32
    np.testing.assert_array_equal(hand.sequences["neg_hist"][:, 0], NEG_ITEMS)
    for split in SPLITS:
        a = hand.splits[split]
        assert "hist" not in a and "neg_hist" not in a
        assert all(a[k].dtype == np.int32 for k in a if k != "label")


@pytest.mark.parametrize("split", SPLITS)
def test_batches_equal_the_dense_windows(hand: Dataset, split: str) -> None:
    expected = expected_dense(split)
    on_host = hand.dense(split)
    device = device_splits(hand, BATCH_KEYS, torch.device("cpu"))[split]
    n = len(expected["hist_len"])
    reversed_index = torch.arange(n - 1, -1, -1)
    from_device = device.batch(reversed_index)
    for key, value in expected.items():
        np.testing.assert_array_equal(on_host[key], value, err_msg=key)
        np.testing.assert_array_equal(from_device[key].numpy(), value[::-1], err_msg=key)
        assert from_device[key].dtype == torch.int64  # models see today's batch dtypes
    np.testing.assert_array_equal(device.rows(0, n)["hist"].numpy(), expected["hist"])  # evaluation's path


def test_from_dense_round_trips(hand: Dataset) -> None:
    dense = {s: hand.dense(s) for s in SPLITS}
    again = Dataset.from_dense("again", SCHEMA, dense)
    again.validate()
    for split in SPLITS:
        for key, value in again.dense(split).items():
            np.testing.assert_array_equal(value, dense[split][key], err_msg=f"{split}/{key}")


def test_batches_hold_only_what_the_model_reads(hand: Dataset, compose_cfg) -> None:
    """DIEN reads neg_hist only with negative sampling, LR and MIAN never; user_id nobody; label always."""
    cfg = compose_cfg("model=lr")
    lr = build_model(cfg.model, cfg.ablation, SCHEMA, 0, torch.device("cpu"))
    assert {"neg_hist", "user_id"}.isdisjoint(model_inputs(lr)) and "label" in model_inputs(lr)
    for flag, has_neg in (("true", True), ("false", False)):
        cfg = compose_cfg("model=dien", f"model.use_negsampling={flag}")
        dien = build_model(cfg.model, cfg.ablation, SCHEMA, 0, torch.device("cpu"))
        assert ("neg_hist" in model_inputs(dien)) is has_neg
    cfg = compose_cfg("model=mian")
    mian = build_model(cfg.model, cfg.ablation, SCHEMA, 0, torch.device("cpu"))
    keys = model_inputs(mian)
    splits = device_splits(hand, keys, torch.device("cpu"))
    assert "neg_hist" not in splits["train"].sequences
    assert set(splits["train"].batch(torch.tensor([0, 1]))) == set(keys)
    assert resident_bytes(splits) < resident_bytes(device_splits(hand, BATCH_KEYS, torch.device("cpu")))
    assert set(DEFAULT_INPUTS) == set(BATCH_KEYS) - {"neg_hist", "user_id"}


def test_an_entry_of_the_old_layout_is_never_read_and_kept(tmp_path: Path, monkeypatch) -> None:
    """The layout's version is part of the entry's key: an old entry is not read (a new one is built beside
    it) and not touched."""
    calls = []

    def counted(writer) -> None:
        calls.append(1)
        build(writer)

    monkeypatch.setattr(cache, "FORMAT_VERSION", 1)
    old = load_or_build(tmp_path / "c", "hand", {"v": 1}, [], counted)
    old_folder = tmp_path / "c" / old.stats["cache_entry"]
    old_meta = (old_folder / "meta.json").read_text()
    monkeypatch.setattr(cache, "FORMAT_VERSION", 2)
    new = load_or_build(tmp_path / "c", "hand", {"v": 1}, [], counted)
    assert len(calls) == 2 and new.stats["cache_entry"] != old.stats["cache_entry"]
    assert (old_folder / "meta.json").read_text() == old_meta and json.loads(old_meta)["format"] == 1
    assert json.loads((tmp_path / "c" / new.stats["cache_entry"] / "meta.json").read_text())["format"] == 2
    load_or_build(tmp_path / "c", "hand", {"v": 1}, [], counted)
    assert len(calls) == 2  # and the new entry is reused


def test_ids_that_do_not_fit_int32_are_refused_by_name() -> None:
    big = Schema((Field("item_id", 2**31 + 5),), (), (), max_len=2)
    with pytest.raises(ValueError, match="field 'item_id'.*int32"):
        big.check_int32()
    with pytest.raises(ValueError, match="train/user_id.*int32"):
        as_int32(np.array([1, 2**31]), "train/user_id")
    np.testing.assert_array_equal(as_int32(np.array([2**31 - 1]), "x"), [2**31 - 1])


def test_windows_outside_the_sequences_are_refused(hand: Dataset) -> None:
    hand.splits["train"]["hist_end"][0] = len(SEQ_ITEMS) + 1
    with pytest.raises(ValueError, match="outside"):
        hand.validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_captures_the_gather(hand: Dataset) -> None:
    device = torch.device("cuda")
    split: DeviceSplit = device_splits(hand, BATCH_KEYS, device)["train"]
    static_index = torch.zeros(3, dtype=torch.long, device=device)
    split.batch(static_index)  # warm-up outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = split.batch(static_index)
    for index in ([3, 1, 0], [2, 2, 3]):
        static_index.copy_(torch.tensor(index, device=device))
        graph.replay()
        eager = split.batch(torch.tensor(index, device=device))
        for key in BATCH_KEYS:
            torch.testing.assert_close(out[key], eager[key], rtol=0, atol=0)
