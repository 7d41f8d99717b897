"""Remote tracking: a sweep logs into an `mlflow server` on 127.0.0.1; an unreachable server fails the job fast."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT
from benchmark.run import run_job
from benchmark.tracking import TrackingError
from conftest import TINY_SYNTHETIC, free_port, mlflow_server

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on a free 127.0.0.1 port with its own SQLite store and artifact folder; stopped after."""
    with mlflow_server(tmp_path_factory.mktemp("server")) as url:
        yield url


def check_runs(server: str, experiment: str, seeds: list[str]) -> None:
    """One FINISHED run per seed, with its metrics, per-epoch history and config artifact, on the server."""
    client = MlflowClient(server)
    found = client.get_experiment_by_name(experiment)
    runs = [r for r in client.search_runs([found.experiment_id]) if r.data.tags.get("sweep") != "true"]
    assert sorted(r.data.tags["seed"] for r in runs) == seeds
    mlflow.set_tracking_uri(server)  # artifacts travel through the server too
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {"test_auc", "test_logloss", "test_gauc"} <= set(run.data.metrics)
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")] == [1, 2]
        assert "encoder: pre_ln" in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml")


def test_jobs_log_into_the_server_named_by_the_environment(server: str, compose_cfg: Callable, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    for seed in (0, 1):
        run_job(compose_cfg(*TINY_SYNTHETIC, "tracking.experiment=remote-jobs", f"seed={seed}",
                            f"trainer.checkpoint_dir={tmp_path}"))
    check_runs(server, "remote-jobs", ["0", "1"])


@pytest.mark.slow
def test_a_sweep_logs_into_the_server(server: str, tmp_path: Path) -> None:
    """The command line, with the sweep's parent run: `MLFLOW_TRACKING_URI=<server> python -m benchmark -m ...`."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "-m", "seed=0,1", *TINY_SYNTHETIC, "tracking.experiment=remote",
         f"trainer.checkpoint_dir={tmp_path / 'ckpt'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=PROJECT_ROOT, env={**ENV, "MLFLOW_TRACKING_URI": server}, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_runs(server, "remote", ["0", "1"])


def test_an_unreachable_server_fails_fast_before_any_data_is_loaded(
        compose_cfg: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was loaded although the store is unreachable")

    monkeypatch.setattr("benchmark.run.load_dataset", no_data)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    started = time.monotonic()
    with pytest.raises(TrackingError, match=f"(?s)cannot use the MLflow tracking store '{uri}': no answer.*server running"):
        run_job(compose_cfg(*TINY_SYNTHETIC, f"tracking.uri={uri}", f"trainer.checkpoint_dir={tmp_path}"))
    assert time.monotonic() - started < 10
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ, "later logging keeps MLflow's retries"


def test_the_cli_names_the_unreachable_uri_without_a_traceback(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", *TINY_SYNTHETIC, f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=PROJECT_ROOT, env={**ENV, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert f"cannot use the MLflow tracking store '{uri}'" in proc.stderr
    assert "Traceback" not in proc.stderr
