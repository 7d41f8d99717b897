"""Remote tracking: a sweep logs into an `mlflow server` on 127.0.0.1; an unreachable server fails the job fast."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT, tracking
from benchmark.run import run_job
from benchmark.tracking import TrackingBacklog, TrackingError, runlog
from benchmark.trainer import Trainer
from conftest import TINY_SYNTHETIC, MlflowServer, free_port, mlflow_server

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


# ------------------------------------------------------------------------------ a server that goes away mid-run
OUTAGE_JOB = ("model=lr", "trainer.max_epochs=4", "trainer.patience=4")


def epoch_steps(client: MlflowClient, run_id: str, metric: str = "val_auc") -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, metric)]


def test_the_run_log_holds_calls_while_the_server_does_not_answer_and_sends_them_in_order(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """RunLog alone, with the server made unreachable for a while: no call waits, nothing is lost or reordered."""
    client = MlflowClient(server)
    experiment_id = tracking.prepare_experiment(server, "run-log")
    run_id = client.create_run(experiment_id).info.run_id
    down = {"until": time.monotonic() + 1.5}
    real_send = runlog._rest_send

    def flaky(uri: str, run: str, op: dict) -> None:
        if time.monotonic() < down["until"]:
            raise mlflow.exceptions.MlflowException("API request failed: Connection refused")
        real_send(uri, run, op)

    monkeypatch.setattr(runlog, "_rest_send", flaky)  # where RunLog's sender looks them up
    monkeypatch.setattr(runlog, "RETRY_INTERVAL_S", 0.1)
    log = tracking.RunLog(server, run_id, tmp_path / "pending")
    started = time.monotonic()
    for step in range(1, 6):
        log.log_metrics({"val_auc": step / 10}, step=step)
    log.set_tags({"learned": "true"})
    assert time.monotonic() - started < 0.5, "logging waited for the server"
    assert log.close(30)
    assert not (tmp_path / "pending").exists(), "a journal whose calls were all sent is removed"
    assert [m.value for m in client.get_metric_history(run_id, "val_auc")] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert client.get_run(run_id).data.tags["learned"] == "true"
    err = capfd.readouterr().err
    assert f"the tracking server {server} does not answer" in err and "training goes on" in err
    lasted = float(re.search(r"did not answer for (\d+\.\d) s", err).group(1))
    assert 1.0 <= lasted < 10


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[MlflowServer]:
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stop_and_restart_at(monkeypatch: pytest.MonkeyPatch, server: MlflowServer, stop_epoch: int,
                        restart_epoch: int | None) -> dict[str, float]:
    """Stop `server` as epoch `stop_epoch` starts and start it again as epoch `restart_epoch` starts; returns
    when each epoch's training started and ended."""
    times: dict[str, float] = {}
    original = Trainer.train_epoch

    def train_epoch(self: Trainer, epoch: int, progress: bool) -> float:
        times[f"start{epoch}"] = time.monotonic()
        if epoch == stop_epoch:
            server.stop()
        if epoch == restart_epoch:
            server.start()
        loss = original(self, epoch, progress)
        times[f"end{epoch}"] = time.monotonic()
        return loss

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    return times


@pytest.mark.slow
def test_training_goes_on_while_the_server_is_stopped_and_the_run_is_complete_once_it_is_back(
        restartable: MlflowServer, compose_cfg: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # MLflow's own retries would block
    times = stop_and_restart_at(monkeypatch, restartable, stop_epoch=2, restart_epoch=4)
    final = run_job(compose_cfg(*TINY_SYNTHETIC, *OUTAGE_JOB, f"tracking.uri={restartable.url}",
                                "tracking.experiment=outage", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}"))
    # epochs 2 and 3 were logged while the server was down: the next epoch started at once all the same
    assert times["start3"] - times["end2"] < 5 and times["start4"] - times["end3"] < 5
    client = MlflowClient(restartable.url)
    (run,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
    assert run.info.status == "FINISHED"
    assert epoch_steps(client, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.metrics["test_auc"] == pytest.approx(final["test_auc"])
    err = capfd.readouterr().err
    lasted = float(re.search(r"tracking server \S+ did not answer for (\d+\.\d) s", err).group(1))
    assert lasted >= times["start4"] - times["end2"] - 1
    assert not (tmp_path / "ckpt" / tracking.PENDING_DIR).exists()


@pytest.mark.slow
def test_a_server_still_away_at_the_end_leaves_a_journal_that_replays_the_whole_run(
        restartable: MlflowServer, compose_cfg: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop_and_restart_at(monkeypatch, restartable, stop_epoch=3, restart_epoch=None)
    cfg = compose_cfg(*TINY_SYNTHETIC, "model=mian", "trainer.max_epochs=3", f"tracking.uri={restartable.url}",
                      "tracking.experiment=away", "tracking.flush_timeout_s=1", "tracking.log_model=true",
                      f"trainer.checkpoint_dir={tmp_path / 'ckpt'}")
    with pytest.raises(TrackingBacklog, match=r"(?s)did not answer.*-m benchmark.tracking replay \S+\.jsonl") as caught:
        run_job(cfg)
    journal = Path(re.search(r"replay (\S+\.jsonl)", str(caught.value)).group(1))
    assert journal.parent == tmp_path / "ckpt" / tracking.PENDING_DIR
    assert not list((tmp_path / "ckpt").glob("*/last.pt")), "the journal, not a checkpoint, holds the results"
    assert mlflow.active_run() is None

    restartable.start()
    proc = subprocess.run([sys.executable, "-m", "benchmark.tracking", "replay", str(journal.parent)],
                          cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sent" in proc.stdout and not journal.exists()
    client = MlflowClient(restartable.url)
    (run,) = client.search_runs([client.get_experiment_by_name("away").experiment_id])
    assert run.info.status == "FINISHED"
    assert epoch_steps(client, run.info.run_id) == [1, 2, 3]
    assert {"test_auc", "test_logloss", "best_epoch"} <= set(run.data.metrics)
    assert run.data.tags["learned"] in ("true", "false")
    mlflow.set_tracking_uri(restartable.url)
    assert "prob" in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/gim_weights.csv")
    model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model", map_location="cpu")
    local = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(tmp_path / "m"))
    example = mlflow.models.Model.load(local).load_input_example(local)  # saved offline: no run id in MLmodel
    assert model({k: torch.as_tensor(v) for k, v in example.items()}).shape == (len(example["item"]),)
