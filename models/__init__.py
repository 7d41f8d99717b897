"""Model registry: `build_model` turns the `model` (and `ablation`) config into an nn.Module.

Contract every model follows (the shared trainer relies on it):
    forward(batch: dict[str, Tensor]) -> logits [B]   (the batch dict of benchmark/data/schema.py)
    extra_loss() -> Tensor | None                      (optional: e.g. DIEN's auxiliary loss of the last forward)
"""
from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmark.data.schema import Schema

NATIVE_MODELS = ("mian",)
DEEPCTR_MODELS = ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm", "din", "dien")


def build_model(
    model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int, device: torch.device
) -> nn.Module:
    """Build on `device` directly (DeepCTR-Torch models keep the device they were built with)."""
    name = model_cfg.name
    if name == "mian":
        from models.mian import MIAN, MIANConfig

        options: dict[str, Any] = OmegaConf.to_container(model_cfg, resolve=True)  # type: ignore[assignment]
        options.pop("name")
        options["mlp_dims"] = tuple(options["mlp_dims"])
        if ablation_cfg is not None:
            for module in ("ibim", "iuim", "icim", "gim", "field_inputs"):
                options[module] = bool(ablation_cfg[module])
        return MIAN(schema, MIANConfig(**options)).to(device)
    if name in DEEPCTR_MODELS:
        from models.deepctr_adapter import build_deepctr_model

        return build_deepctr_model(model_cfg, schema, seed, device)
    raise ValueError(f"model.name={name!r} is unknown; known: {NATIVE_MODELS + DEEPCTR_MODELS}")
