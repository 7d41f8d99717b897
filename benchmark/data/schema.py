"""The shared data contract: one `Schema` and integer arrays that every model consumes.

A split is a dict of numpy arrays with these keys (N samples, T = schema.max_len):
    item      int64 [N, Fi]     candidate item fields (schema.item_fields; field 0 is the item id)
    hist      int64 [N, T, Fi]  behaviour sequence, same fields/tables as `item`, oldest first,
                                right-padded with 0; positions >= hist_len are padding
    hist_len  int64 [N]         true history length, 0 allowed
    neg_hist  int64 [N, T, Fi]  sampled negative behaviours aligned with `hist` (DIEN's auxiliary loss)
    user      int64 [N, J]      user-specific fields (schema.user_fields)
    context   int64 [N, K]      context fields (schema.context_fields)
    label     float32 [N]       1.0 click / 0.0 no click
    user_id   int64 [N]         raw user index, for gAUC only (never a model input)
Index 0 means padding/unknown in every vocabulary.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")
ARRAY_KEYS = ("item", "hist", "hist_len", "neg_hist", "user", "context", "label", "user_id")


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


@dataclass
class Dataset:
    """A preprocessed dataset: schema, the three splits, and descriptive statistics."""

    name: str
    schema: Schema
    splits: dict[str, dict[str, np.ndarray]]
    stats: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Check shapes, dtypes and id ranges; raises ValueError naming the problem."""
        s = self.schema
        fi, j, k, t = len(s.item_fields), len(s.user_fields), len(s.context_fields), s.max_len
        for split in SPLITS:
            if split not in self.splits:
                raise ValueError(f"dataset {self.name!r}: split {split!r} is missing")
            a = self.splits[split]
            missing = [key for key in ARRAY_KEYS if key not in a]
            if missing:
                raise ValueError(f"dataset {self.name!r}/{split}: arrays missing: {missing}")
            n = len(a["label"])
            expected = {
                "item": (n, fi), "hist": (n, t, fi), "neg_hist": (n, t, fi), "hist_len": (n,),
                "user": (n, j), "context": (n, k), "label": (n,), "user_id": (n,),
            }
            for key, shape in expected.items():
                if a[key].shape != shape:
                    raise ValueError(f"dataset {self.name!r}/{split}: {key} has shape {a[key].shape}, expected {shape}")
            if n and (a["hist_len"].min() < 0 or a["hist_len"].max() > t):
                raise ValueError(f"dataset {self.name!r}/{split}: hist_len outside [0, {t}]")
            for key, fields in (("item", s.item_fields), ("user", s.user_fields), ("context", s.context_fields)):
                for col, f in enumerate(fields):
                    values = a[key][:, col]
                    if n and (values.min() < 0 or values.max() >= f.vocab_size):
                        raise ValueError(
                            f"dataset {self.name!r}/{split}: field {f.name!r} has ids outside [0, {f.vocab_size})"
                        )
            for key in ("hist", "neg_hist"):
                for col, f in enumerate(s.item_fields):
                    values = a[key][:, :, col]
                    if n and (values.min() < 0 or values.max() >= f.vocab_size):
                        raise ValueError(
                            f"dataset {self.name!r}/{split}: {key} field {f.name!r} has ids outside [0, {f.vocab_size})"
                        )
