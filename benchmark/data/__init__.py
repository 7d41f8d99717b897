"""Dataset pipelines. Each `benchmark/data/<loader>.py` exposes `load(cfg, cache_dir) -> Dataset`."""
from __future__ import annotations

import importlib
from pathlib import Path

from omegaconf import DictConfig

from benchmark import PROJECT_ROOT
from benchmark.data.schema import Dataset, Field, Schema

__all__ = ["Dataset", "Field", "Schema", "load_dataset", "default_cache_dir"]


def default_cache_dir() -> Path:
    return PROJECT_ROOT / "datasets" / "cache"


def load_dataset(cfg: DictConfig, cache_dir: Path | None = None) -> Dataset:
    """Build (or read from cache) the dataset named by `cfg.loader`, and validate it."""
    module = importlib.import_module(f"benchmark.data.{cfg.loader}")
    dataset: Dataset = module.load(cfg, Path(cache_dir) if cache_dir else default_cache_dir())
    dataset.validate()
    return dataset
