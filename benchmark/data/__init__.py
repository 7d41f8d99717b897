"""Dataset pipelines. Each `benchmark/data/<loader>.py` exposes `load(cfg, cache_dir) -> Dataset`."""
from __future__ import annotations

import importlib
from pathlib import Path

from omegaconf import DictConfig

from benchmark.data.schema import Dataset, Field, Schema
from benchmark.paths import default_cache_dir

__all__ = ["Dataset", "Field", "Schema", "load_dataset", "default_cache_dir"]


def load_dataset(cfg: DictConfig, cache_dir: Path | str | None = None, raw_root: Path | str | None = None) -> Dataset:
    """Build (or read from cache) the dataset named by `cfg.loader`, and validate it. `raw_root` holds the default
    raw folders (`<raw_root>/<name>`, used when `cfg.raw_dir` is unset; a job's `paths.raw_dir`)."""
    module = importlib.import_module(f"benchmark.data.{cfg.loader}")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    dataset: Dataset = module.load(cfg, cache, raw_root=raw_root)
    dataset.validate()
    return dataset
