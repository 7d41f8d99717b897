"""The MLflow store: where it is, writing to it under concurrent SQLite writers (retries), and the experiment
each job logs into, with the view of its runs the UI opens."""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.tracking import MlflowClient

from benchmark.io import file_lock
from benchmark.paths import default_db

T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used: raised before any training starts."""


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


# MLflow 3's UI opens an experiment of this kind on its runs table ("Model training"), not the GenAI overview
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


# A view of the runs table that MLflow 3's UI opens from `#/experiments/<id>/runs?viewStateShareKey=comparison`
# (the state its "Share" button stores as an experiment tag): every run, best test AUC first, with the test
# metrics, model and seed as columns.
COMPARISON_VIEW = "comparison"
COMPARISON_COLUMNS = ("metrics.`test_auc`", "metrics.`test_gauc`", "metrics.`test_logloss`", "tags.`model`",
                      "tags.`seed`", "attributes.`Dataset`")


def comparison_url(base: str, experiment_id: str) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={COMPARISON_VIEW}"


def _get_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
    experiment_id = _find_or_create_experiment(client, uri, name)
    tags = client.get_experiment(experiment_id).tags
    if EXPERIMENT_KIND[0] not in tags:  # the user's choice is kept
        client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    view_tag = f"mlflow.sharedViewState.{COMPARISON_VIEW}"
    if view_tag not in tags:
        client.set_experiment_tag(experiment_id, view_tag, json.dumps(
            {"orderByKey": "metrics.`test_auc`", "orderByAsc": False, "selectedColumns": list(COMPARISON_COLUMNS)}))
    return experiment_id


def _find_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
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
