"""The models, found by name: `build_model` turns the `model` (and `ablation`) config into an nn.Module through
the registry (models/registry.py), and every built model keeps the contract of models/spec.py `CTRModel`:
    inputs                                         (the batch keys it reads)
    forward(batch: dict[str, Tensor]) -> logits [B] (the batch dict of benchmark/data/schema.py)
    extra_loss() -> Tensor | None                   (optional: e.g. DIEN's auxiliary loss of the last forward)
Importing the package loads no torch (the config schema and the report read the registry); building does.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from models.registry import spec

if TYPE_CHECKING:
    import torch
    from omegaconf import DictConfig
    from torch import nn

    from benchmark.data.schema import Schema


def build_model(
    model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int, device: torch.device
) -> nn.Module:
    """Build on `device` directly (DeepCTR-Torch models keep the device they were built with)."""
    module, function = spec(model_cfg.name).build.split(":")
    return getattr(importlib.import_module(module), function)(model_cfg, ablation_cfg, schema, seed, device)
