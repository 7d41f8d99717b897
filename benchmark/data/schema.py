"""The shared data contract: one `Schema`, and integer arrays in a compact layout that every model reads.

Histories are stored once. A dataset holds its behaviour sequences as flat per-event arrays
(`Dataset.sequences`, E events, Fi = len(schema.item_fields)):
    hist      int32 [E, Fi]     behaviours, grouped by user and in time order within a user
    neg_hist  int32 [E, Fi]     a sampled negative behaviour aligned with each row of `hist` (DIEN's auxiliary loss)
and each split holds per sample only where its history window ends in them and how long it is
(N samples, T = schema.max_len):
    item      int32 [N, Fi]     candidate item fields (schema.item_fields; field 0 is the item id)
    hist_end  int32 [N]         the sample's history is sequences[...][hist_end - hist_len : hist_end]
    hist_len  int32 [N]         true history length, 0 <= hist_len <= T
    user      int32 [N, J]      user-specific fields (schema.user_fields)
    context   int32 [N, K]      context fields (schema.context_fields)
    label     float32 [N]       1.0 click / 0.0 no click
    user_id   int32 [N]         raw user index, for gAUC only (never a model input)
Index 0 means padding/unknown in every vocabulary.

What a model sees is a batch of the dense form (`BATCH_KEYS`, int64, `hist`/`neg_hist` as [B, T, Fi] windows,
oldest first, right-padded with 0), built from the layout by `window_positions`: on the device by the trainer
(benchmark/batches.py), on the host by `Dataset.dense` (tests, DeepCTR-Torch's own fit()).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

SPLITS = ("train", "valid", "test")
SPLIT_KEYS = ("item", "hist_end", "hist_len", "user", "context", "label", "user_id")
SEQUENCE_KEYS = ("hist", "neg_hist")
BATCH_KEYS = ("item", "hist", "hist_len", "neg_hist", "user", "context", "label", "user_id")
ID_DTYPE = np.dtype(np.int32)
INT32_MAX = int(np.iinfo(np.int32).max)


@dataclass(frozen=True)
class Field:
    """One categorical field; `vocab_size` counts index 0 (padding/unknown)."""

    name: str
    vocab_size: int


@dataclass(frozen=True)
class Schema:
    item_fields: tuple[Field, ...]
    user_fields: tuple[Field, ...]
    context_fields: tuple[Field, ...]
    max_len: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Schema":
        def fields(key: str) -> tuple[Field, ...]:
            return tuple(Field(**f) for f in d[key])

        return cls(fields("item_fields"), fields("user_fields"), fields("context_fields"), int(d["max_len"]))

    def check_int32(self) -> None:
        """Refuse a vocabulary whose ids do not fit the layout's int32, naming the field."""
        for f in (*self.item_fields, *self.user_fields, *self.context_fields):
            if f.vocab_size - 1 > INT32_MAX:
                raise ValueError(f"field {f.name!r} has {f.vocab_size:,} ids, more than int32 holds "
                                 f"({INT32_MAX:,}); the stored layout keeps ids as int32")


def as_int32(values: np.ndarray, what: str) -> np.ndarray:
    """`values` as int32, refusing (with `what` in the message) values that do not fit."""
    values = np.asarray(values)
    if values.size and (values.max() > INT32_MAX or values.min() < -INT32_MAX - 1):
        raise ValueError(f"{what} has values up to {int(values.max()):,}, more than int32 holds ({INT32_MAX:,})")
    return values.astype(ID_DTYPE, copy=False)


def window_positions(hist_end: torch.Tensor, hist_len: torch.Tensor, max_len: int, pad_row: int) -> torch.Tensor:
    """[B, T] (dtype of `hist_end`) rows of the sequence arrays that make up each sample's history window: oldest first, and
    `pad_row` (an all-zero row appended to the sequences) at positions >= hist_len. Index arithmetic only,
    no host synchronisation, so it runs inside a captured CUDA graph."""
    end = hist_end[:, None]
    positions = (end - hist_len[:, None]) + torch.arange(max_len, device=hist_end.device, dtype=hist_end.dtype)
    return positions.masked_fill_(positions >= end, pad_row)


def with_pad_row(sequence: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The sequence array with one zero row appended: the row that padded window positions read."""
    sequence = torch.as_tensor(sequence)
    return torch.cat([sequence, sequence.new_zeros((1, *sequence.shape[1:]))])


@dataclass
class Dataset:
    """A preprocessed dataset: schema, the shared behaviour sequences, the three splits, and statistics."""

    name: str
    schema: Schema
    splits: dict[str, dict[str, np.ndarray]]
    sequences: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dense(cls, name: str, schema: Schema, splits: Mapping[str, Mapping[str, np.ndarray]],
                   stats: dict[str, Any] | None = None) -> "Dataset":
        """A dataset in the stored layout from splits in the dense form (`hist`/`neg_hist` as [N, T, Fi]
        windows): each sample's window becomes its own run of the sequence arrays. For generators whose windows
        share nothing (the synthetic data's negatives are drawn per sample) and for tests."""
        schema.check_int32()
        rows = {key: [] for key in SEQUENCE_KEYS}
        out: dict[str, dict[str, np.ndarray]] = {}
        offset = 0
        for split, dense in splits.items():
            length = np.asarray(dense["hist_len"], dtype=np.int64)
            valid = np.arange(schema.max_len)[None, :] < length[:, None]
            for key in SEQUENCE_KEYS:
                rows[key].append(np.asarray(dense[key])[valid])  # row-major: sample by sample, oldest first
            out[split] = {key: as_int32(dense[key], f"{split}/{key}") for key in ("item", "user", "context",
                                                                                  "user_id", "hist_len")}
            out[split]["hist_end"] = as_int32(offset + np.cumsum(length), f"{split}/hist_end")
            out[split]["label"] = np.asarray(dense["label"], dtype=np.float32)
            offset += int(length.sum())
        fi = len(schema.item_fields)
        sequences = {key: as_int32(np.concatenate(v) if v else np.zeros((0, fi)), key).reshape(-1, fi)
                     for key, v in rows.items()}
        return cls(name=name, schema=schema, splits=out, sequences=sequences, stats=dict(stats or {}))

    def dense(self, split: str) -> dict[str, np.ndarray]:
        """One split in the dense form a model's batch has (BATCH_KEYS, int64 ids), built on the host."""
        a = self.splits[split]
        index = window_positions(torch.from_numpy(np.asarray(a["hist_end"])),
                                 torch.from_numpy(np.asarray(a["hist_len"])), self.schema.max_len,
                                 len(self.sequences["hist"])).long()
        out = {key: np.asarray(a[key], dtype=np.int64) for key in ("item", "hist_len", "user", "context", "user_id")}
        for key in SEQUENCE_KEYS:
            out[key] = with_pad_row(np.asarray(self.sequences[key], dtype=np.int64))[index].numpy()
        out["label"] = np.asarray(a["label"], dtype=np.float32)
        return out

    def validate(self) -> None:
        """Check shapes, dtypes, windows and id ranges; raises ValueError naming the problem."""
        s = self.schema
        fi, j, k, t = len(s.item_fields), len(s.user_fields), len(s.context_fields), s.max_len
        for key in SEQUENCE_KEYS:
            seq = self.sequences.get(key)
            if seq is None:
                raise ValueError(f"dataset {self.name!r}: sequence array {key!r} is missing")
            if seq.ndim != 2 or seq.shape[1] != fi or seq.dtype != ID_DTYPE:
                raise ValueError(f"dataset {self.name!r}: sequences/{key} is {seq.dtype}{list(seq.shape)}, "
                                 f"expected int32[E, {fi}]")
            self._check_ids(f"sequences/{key}", seq, s.item_fields)
        n_events = len(self.sequences["hist"])
        if len(self.sequences["neg_hist"]) != n_events:
            raise ValueError(f"dataset {self.name!r}: sequences/neg_hist has {len(self.sequences['neg_hist'])} "
                             f"rows, sequences/hist {n_events}")
        for split in SPLITS:
            if split not in self.splits:
                raise ValueError(f"dataset {self.name!r}: split {split!r} is missing")
            a = self.splits[split]
            missing = [key for key in SPLIT_KEYS if key not in a]
            if missing:
                raise ValueError(f"dataset {self.name!r}/{split}: arrays missing: {missing}")
            n = len(a["label"])
            expected = {"item": (n, fi), "hist_end": (n,), "hist_len": (n,), "user": (n, j), "context": (n, k),
                        "label": (n,), "user_id": (n,)}
            for key, shape in expected.items():
                if a[key].shape != shape:
                    raise ValueError(f"dataset {self.name!r}/{split}: {key} has shape {a[key].shape}, expected {shape}")
                dtype = np.float32 if key == "label" else ID_DTYPE
                if a[key].dtype != dtype:
                    raise ValueError(f"dataset {self.name!r}/{split}: {key} is {a[key].dtype}, expected {np.dtype(dtype)}")
            if not n:
                continue
            if a["hist_len"].min() < 0 or a["hist_len"].max() > t:
                raise ValueError(f"dataset {self.name!r}/{split}: hist_len outside [0, {t}]")
            start = a["hist_end"].astype(np.int64) - a["hist_len"]
            if start.min() < 0 or a["hist_end"].max() > n_events:
                raise ValueError(f"dataset {self.name!r}/{split}: a history window falls outside the "
                                 f"{n_events} rows of the sequence arrays")
            for key, fields in (("item", s.item_fields), ("user", s.user_fields), ("context", s.context_fields)):
                self._check_ids(f"{split}/{key}", a[key], fields)

    def _check_ids(self, what: str, values: np.ndarray, fields: tuple[Field, ...]) -> None:
        for col, f in enumerate(fields):
            column = values[:, col]
            if len(column) and (column.min() < 0 or column.max() >= f.vocab_size):
                raise ValueError(f"dataset {self.name!r}/{what}: field {f.name!r} has ids outside [0, {f.vocab_size})")
