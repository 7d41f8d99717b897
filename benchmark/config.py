"""Validation of the composed config, run before any data is loaded or model built.

Hydra already rejects unknown config groups and options; this catches invalid values and names the key.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from models.mian import ENCODERS, GIM_COMBINES, POSITIONALS


class ConfigError(ValueError):
    """An invalid config value; the message names the key and what is allowed."""


def _check(cfg: DictConfig, key: str, ok: Callable[[Any], bool], allowed: str) -> None:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(f"{key} is missing from the config")
        node = node[part]
    try:
        valid = ok(node)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(f"{key}={node!r} is invalid: {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _choice(*options: str) -> Callable[[Any], bool]:
    return lambda v: str(v).lower() in options


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid value found."""
    _check(cfg, "seed", lambda v: _is_int(v) and v >= 0, "must be an integer >= 0")
    _check(cfg, "embedding_dim", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    t = "trainer."
    _check(cfg, t + "batch_size", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    _check(cfg, t + "eval_batch_size", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    _check(cfg, t + "max_epochs", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    _check(cfg, t + "patience", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    _check(cfg, t + "lr", lambda v: _is_number(v) and v > 0, "must be a number > 0")
    _check(cfg, t + "l2", lambda v: _is_number(v) and v >= 0, "must be a number >= 0")
    _check(cfg, t + "betas", lambda v: len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v),
           "must be two numbers in [0, 1)")
    _check(cfg, t + "amp", _choice("none", "bf16"), "one of none, bf16")
    _check(cfg, t + "cuda_graph", _choice("auto", "true", "false"), "one of auto, true, false")
    _check(cfg, t + "progress", _choice("auto", "true", "false"), "one of auto, true, false")
    _check(cfg, t + "device", lambda v: str(v) == "auto" or str(v).split(":")[0] in ("cpu", "cuda"),
           "auto, cpu, cuda or cuda:N")
    _check(cfg, "dataset.max_len", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    _check(cfg, "model.dropout", lambda v: _is_number(v) and 0 <= v < 1, "must be a number in [0, 1)")
    _check(cfg, "model.embedding_dim", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
    if cfg.model.name == "mian":
        m = "model."
        _check(cfg, m + "encoder", lambda v: v in ENCODERS, f"one of {', '.join(ENCODERS)}")
        _check(cfg, m + "gim_combine", lambda v: v in GIM_COMBINES, f"one of {', '.join(GIM_COMBINES)}")
        _check(cfg, m + "positional", lambda v: v in POSITIONALS, f"one of {', '.join(POSITIONALS)}")
        _check(cfg, m + "num_heads", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
        _check(cfg, m + "ffn_dim", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
        _check(cfg, m + "gim_dim", lambda v: _is_int(v) and v >= 1, "must be an integer >= 1")
        _check(cfg, m + "mlp_dims", lambda v: all(_is_int(x) and x >= 1 for x in v),
               "must be a list of integers >= 1")
    elif cfg.ablation.name != "full":
        raise ConfigError(
            f"ablation={cfg.ablation.name} applies to model=mian only, not model={cfg.model.name}: "
            "drop the ablation override"
        )
