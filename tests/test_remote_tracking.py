"""Remote tracking: a sweep logs into an `mlflow server` on 127.0.0.1; an unreachable server fails the job fast."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT
from benchmark.run import run_job
from benchmark.tracking import TrackingError
from conftest import TINY_SYNTHETIC

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)


def free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (uvicorn and its workers), SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on a free 127.0.0.1 port with its own SQLite store and artifact folder; stopped after."""
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination", str(folder / "art")],
        env={**ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so that stop() reaches every worker
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "mlflow server not healthy within 240 s"
            time.sleep(0.5)
        yield url
    finally:
        stop(proc)
        log.close()


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
