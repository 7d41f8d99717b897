"""Batches on the device from the stored layout (benchmark/data/schema.py).

A split lives on the device as its per-sample arrays plus the dataset's behaviour sequences, each held once
for all splits. `DeviceSplit.batch(index)` gathers the rows a model reads and builds their [B, T, Fi] history
windows by index arithmetic (`window_positions`): no host synchronisation, so a CUDA graph can capture it.
A model says which inputs it reads with an `inputs` attribute (names of schema.BATCH_KEYS); by default every
input but `neg_hist`, which only DIEN's auxiliary loss reads.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from benchmark.data.schema import BATCH_KEYS, SEQUENCE_KEYS, Dataset, window_positions, with_pad_row

DEFAULT_INPUTS = tuple(k for k in BATCH_KEYS if k not in ("neg_hist", "user_id"))


def model_inputs(model: nn.Module) -> tuple[str, ...]:
    """The batch keys the model reads, plus `label` (the loss's); `user_id` never (gAUC only)."""
    declared = getattr(model, "inputs", None)
    keys = tuple(declared) if declared is not None else DEFAULT_INPUTS
    unknown = [k for k in keys if k not in BATCH_KEYS]
    if unknown:
        raise ValueError(f"{type(model).__name__}.inputs names {unknown}, which are not batch keys {BATCH_KEYS}")
    return tuple(dict.fromkeys([*keys, "label"]))


class DeviceSplit:
    """One split on the device; `batch` returns the dense batch dict models take (int64 ids)."""

    def __init__(self, split: dict[str, np.ndarray], sequences: dict[str, Tensor], max_len: int,
                 keys: tuple[str, ...], device: torch.device) -> None:
        self.arrays = {k: torch.as_tensor(v, device=device) for k, v in split.items()}
        self.sequences = sequences  # with their pad row appended, shared by the splits
        self.pad_row = min((len(t) - 1 for t in sequences.values()), default=0)
        self.max_len = max_len
        self.keys = keys
        self.n = len(split["label"])

    def __len__(self) -> int:
        return self.n

    @property
    def label(self) -> Tensor:
        return self.arrays["label"]

    def batch(self, index: Tensor, keys: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        """The rows at `index` (a device tensor of sample indices) of the inputs in `keys` (default: the
        model's)."""
        keys = self.keys if keys is None else keys
        out: dict[str, Tensor] = {}
        if any(k in SEQUENCE_KEYS for k in keys):
            positions = window_positions(self.arrays["hist_end"].index_select(0, index),
                                         self.arrays["hist_len"].index_select(0, index), self.max_len,
                                         self.pad_row)
        for key in keys:
            if key in SEQUENCE_KEYS:
                rows = self.sequences[key].index_select(0, positions.view(-1))
                out[key] = rows.view(*positions.shape, rows.shape[-1]).long()
            elif key == "label":
                out[key] = self.arrays[key].index_select(0, index)
            else:
                out[key] = self.arrays[key].index_select(0, index).long()
        return out

    def rows(self, lo: int, hi: int, keys: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        """Rows lo..hi-1: evaluation's contiguous batches, through the same gather as training."""
        device = self.arrays["label"].device
        return self.batch(torch.arange(lo, min(hi, self.n), device=device), keys)


def device_splits(dataset: Dataset, keys: tuple[str, ...], device: torch.device) -> dict[str, DeviceSplit]:
    """Every split of the dataset on the device, sharing one copy of the sequences (only those `keys` read)."""
    sequences = {k: with_pad_row(dataset.sequences[k]).to(device) for k in SEQUENCE_KEYS if k in keys}
    return {name: DeviceSplit(split, sequences, dataset.schema.max_len, keys, device)
            for name, split in dataset.splits.items()}


def resident_bytes(splits: dict[str, DeviceSplit]) -> int:
    """Bytes the splits hold on their device (the shared sequences counted once)."""
    tensors = {id(t): t for s in splits.values() for t in (*s.arrays.values(), *s.sequences.values())}
    return sum(t.numel() * t.element_size() for t in tensors.values())
