"""Model registry: `build_model` turns the `model` (and `ablation`) config into an nn.Module.

Contract every model follows (the shared trainer relies on it):
    forward(batch: dict[str, Tensor]) -> logits [B]   (the batch dict of benchmark/data/schema.py)
    extra_loss() -> Tensor | None                      (optional: e.g. DIEN's auxiliary loss of the last forward)
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from benchmark.data.schema import Schema
from benchmark.names import CONTROL_MODELS, DEEPCTR_MODELS, NATIVE_MODELS


def build_model(
    model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int, device: torch.device
) -> nn.Module:
    """Build on `device` directly (DeepCTR-Torch models keep the device they were built with)."""
    name = model_cfg.name
    if name == "mian":
        from models.mian import MIAN, MIANConfig

        return MIAN(schema, MIANConfig.from_config(model_cfg, ablation_cfg)).to(device)
    if name in DEEPCTR_MODELS:
        from models.deepctr_adapter import build_deepctr_model

        return build_deepctr_model(model_cfg, schema, seed, device)
    if name in CONTROL_MODELS:  # the calibrated effects benchmark's controls
        from models.controls import build_control

        return build_control(model_cfg, schema).to(device)
    raise ValueError(f"model.name={name!r} is unknown; known: {NATIVE_MODELS + DEEPCTR_MODELS + CONTROL_MODELS}")
