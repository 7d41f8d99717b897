"""What a run records besides its metrics: the resolved config (params and YAML), the dataset (MLflow's Dataset
column) and, when asked, the model."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.meta_dataset import MetaDataset
from omegaconf import DictConfig, OmegaConf

from benchmark.tracking.store import log_params, log_text, retrying


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become their string form."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_config(cfg: DictConfig) -> None:
    """Every resolved config value as a param (filterable in the dashboard) and the YAML as an artifact."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container.pop("paths", None)  # this machine's folders: no part of the job (the checkpoint_dir tag names its own)
    params = {k: str(v)[:500] for k, v in flatten(container).items()}
    items = list(params.items())
    for lo in range(0, len(items), 100):
        log_params(dict(items[lo:lo + 100]))
    log_text(OmegaConf.to_yaml(OmegaConf.create(container)), "config.yaml")



class _SplitsDataset(MetaDataset):
    """The dataset as MLflow's Dataset column shows it: name, digest (the cache key) and, as its profile, the
    size of each split. No data is uploaded."""

    def __init__(self, name: str, digest: str, sizes: dict[str, int], source: Any) -> None:
        self._sizes = sizes
        super().__init__(source=source, name=name, digest=digest)

    @property
    def profile(self) -> dict[str, int]:
        return {f"{split}_samples": n for split, n in self._sizes.items()}

    def to_dict(self) -> dict[str, str]:
        return dict(super().to_dict(), profile=json.dumps(self.profile))


def dataset_digest(stats: dict[str, Any], dataset_cfg: DictConfig) -> str:
    """The dataset's cache key: from its cache entry (`<name>-<key>`), else (data generated, never cached) the
    key of its resolved config as the cache would compute it."""
    entry = str(stats.get("cache_entry", ""))
    if "-" in entry:
        return entry.rsplit("-", 1)[1]
    from benchmark.data.cache import cache_key

    container = OmegaConf.to_container(dataset_cfg, resolve=True)
    assert isinstance(container, dict)
    return cache_key(container, [])


def log_dataset(name: str, digest: str, sizes: dict[str, int], loader: str) -> None:
    """`mlflow.log_input` of the dataset (context `training`), with the split sizes as its profile and tags."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    source = CodeDatasetSource(tags={"loader": f"benchmark.data.{loader}"})
    dataset = _SplitsDataset(name, digest, sizes, source)
    retrying(mlflow.log_input, dataset, context="training", tags={f"{k}_samples": str(v) for k, v in sizes.items()})


MODEL_NAME = "model"


def log_model(model: Any, example: dict[str, Any], path: Path | None = None) -> None:
    """The model (best weights) as an MLflow PyTorch model named `model` in the active run (or saved in the
    folder `path`, for a replay), with `example` (a batch of numpy arrays, the model's input) and the signature
    inferred from it. Load it and predict:
    `torch.sigmoid(mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location="cpu")(batch))`."""
    import mlflow.pytorch
    import numpy as np
    import torch

    from mlflow.models import infer_signature

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model({k: torch.as_tensor(v, device=device) for k, v in example.items()}).float().cpu().numpy()
    signature = infer_signature({k: np.asarray(v) for k, v in example.items()}, out)
    if path is not None:
        mlflow.pytorch.save_model(model, str(path), input_example=example, signature=signature,
                                  serialization_format="pickle")
    else:
        retrying(mlflow.pytorch.log_model, model, name=MODEL_NAME, input_example=example, signature=signature,
                 serialization_format="pickle")
