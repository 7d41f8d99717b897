"""MLflow tracking: where the store is, one run per job, and what every run records."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from benchmark import PROJECT_ROOT

DEFAULT_DB = PROJECT_ROOT / "mlflow.db"


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used: raised before any training starts."""


def resolve_tracking_uri(configured: str | None) -> str:
    """`tracking.uri` if set, else $MLFLOW_TRACKING_URI, else a SQLite file at the project root."""
    if configured:
        return str(configured)
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database file (an absolute path, not the job's cwd);
    a server decides for itself (None)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def dashboard_hint(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        return f"mlflow ui --backend-store-uri {uri}"
    return f"open {uri}"


def prepare_experiment(uri: str, name: str) -> str:
    """Create the store and the experiment if needed; returns the experiment id. Fails fast with a
    TrackingError when the store is unreachable, so no job trains for an hour and then loses its results."""
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    else:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=artifact_location(uri))
        except mlflow.exceptions.MlflowException:
            # another job created it in the meantime
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id
    except Exception as error:  # noqa: BLE001 - any failure here means the store is unusable
        raise TrackingError(
            f"cannot use the MLflow tracking store {uri!r}: {type(error).__name__}: {str(error)[:300]}\n"
            "Check tracking.uri / MLFLOW_TRACKING_URI (is the server running?)."
        ) from error


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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
    params = {k: str(v)[:500] for k, v in flatten(container).items()}
    items = list(params.items())
    for lo in range(0, len(items), 100):
        mlflow.log_params(dict(items[lo:lo + 100]))
    mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
