"""MLflow tracking: where the store is, one run per job, and what every run records."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from benchmark import PROJECT_ROOT, SOURCE_CHECKOUT, state_root
from benchmark.io import file_lock

T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used: raised before any training starts."""


def default_db() -> Path:
    """The SQLite store used when nothing names one: `mlflow.db` under the state root (benchmark/paths.py)."""
    return state_root() / "mlflow.db"


def resolve_tracking_uri(configured: str | None, default: str | Path | None = None) -> str:
    """`tracking.uri` if set, else $MLFLOW_TRACKING_URI, else the SQLite file `default` (a job's
    `paths.tracking_db`; without one, `default_db()`)."""
    if configured:
        return str(configured)
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default or default_db()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store, None for any other store."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database file (an absolute path, not the job's cwd);
    a server decides for itself (None)."""
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").resolve().as_uri() if db is not None else None


def mlflow_executable() -> str:
    """`mlflow` as the user can type it: the one installed beside this Python (e.g. `.venv/bin/mlflow`, which
    is not on PATH unless the environment is activated), else plain `mlflow`."""
    beside = Path(sys.executable).parent / "mlflow"
    on_path = shutil.which("mlflow")
    if not beside.exists() or (on_path is not None and Path(on_path).absolute() == beside.absolute()):
        return "mlflow"
    with contextlib.suppress(ValueError):
        return str(beside.absolute().relative_to(Path.cwd()))
    return str(beside)


def dashboard_hint(uri: str) -> str:
    if sqlite_path(uri) is not None:
        return f"{mlflow_executable()} ui --backend-store-uri {uri}"
    return f"open {uri}"


# Errors of a SQLite store under concurrent writers (parallel Hydra jobs): worth a retry after a short wait.
_TRANSIENT = ("database is locked", "database table is locked", "sqlite_busy")


def _is_transient(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}".lower()
    return any(marker in text for marker in _TRANSIENT)


def retrying(fn: Callable[..., T], *args: Any, attempts: int = 8, **kwargs: Any) -> T:
    """fn(*args, **kwargs), retried with a growing, jittered wait while it fails with a transient SQLite
    concurrency error (other errors are raised at once)."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - filtered by _is_transient
            if attempt == attempts - 1 or not _is_transient(error):
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    retrying(mlflow.log_metrics, metrics, step=step)


def log_params(params: dict[str, Any]) -> None:
    retrying(mlflow.log_params, params)


def set_tags(tags: dict[str, Any]) -> None:
    retrying(mlflow.set_tags, tags)


def log_text(text: str, artifact_file: str) -> None:
    retrying(mlflow.log_text, text, artifact_file)


def end_run(status: str) -> None:
    """End the active run with `status` (MLflow pops it only once the store has it, so a retry is safe)."""
    retrying(mlflow.end_run, status=status)


FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextlib.contextmanager
def _fail_fast_http() -> Iterator[None]:
    """For the reachability probe only: no retries and a short timeout, unless the user set them. MLflow's
    defaults (7 retries with exponential backoff, 120 s timeout) would hold a job for minutes on a dead
    server; later logging keeps the defaults, so a short network hiccup mid-run does not fail the job."""
    saved = {key: os.environ.get(key) for key in FAIL_FAST_HTTP}
    for key, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _get_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} in {uri!r} is deleted: restore it (mlflow experiments restore) or use "
                "another tracking.experiment"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except mlflow.exceptions.MlflowException:
        experiment = client.get_experiment_by_name(name)  # another process created it in the meantime
        if experiment is None:
            raise
        return experiment.experiment_id


def prepare_experiment(uri: str, name: str) -> str:
    """Create the store and the experiment if needed; returns the experiment id. Idempotent and safe to call
    from parallel processes (SQLite: under a lock file beside the database, with retries).

    Fails fast with a TrackingError when the store is unreachable or unusable, so that no job trains for an
    hour and then loses its results."""
    mlflow.set_tracking_uri(uri)
    try:
        db = sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(db.with_name(db.name + ".lock")):
                return retrying(lambda: _get_or_create_experiment(MlflowClient(uri), uri, name))
        with _fail_fast_http():
            return _get_or_create_experiment(MlflowClient(uri), uri, name)
    except TrackingError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure here means the store is unusable
        text = str(error)
        reason = f"{type(error).__name__}: {text[:300]}"
        if any(sign in text for sign in ("NewConnectionError", "Connection refused", "timed out", "Max retries")):
            reason = "no answer (connection refused or timed out)"
        hint = ("is it an MLflow SQLite database, and writable?" if uri.startswith("sqlite:")
                else "is the server running?")
        raise TrackingError(
            f"cannot use the MLflow tracking store {uri!r}: {reason}\n"
            f"Check tracking.uri / MLFLOW_TRACKING_URI ({hint})."
        ) from error


COMMIT_ENV = "BENCHMARK_GIT_COMMIT"


def git_commit() -> str:
    """git's HEAD (with "-dirty" when tracked files differ), or $BENCHMARK_GIT_COMMIT when set: a machine that
    received the working tree without its matching .git (a copy made for a GPU machine) must be told the commit."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    if not SOURCE_CHECKOUT:  # an installed package: git would answer for whatever repository holds the venv
        return "unknown"
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
    container.pop("paths", None)  # this machine's folders: no part of the job (the checkpoint_dir tag names its own)
    params = {k: str(v)[:500] for k, v in flatten(container).items()}
    items = list(params.items())
    for lo in range(0, len(items), 100):
        log_params(dict(items[lo:lo + 100]))
    log_text(OmegaConf.to_yaml(OmegaConf.create(container)), "config.yaml")
