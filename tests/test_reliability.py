"""Reliability: interrupted jobs resume to the same result, faults stay inside their job, parallel jobs into one
SQLite store lose nothing, killed writers leave nothing half-written."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from benchmark import PROJECT_ROOT, tracking
from benchmark.checkpoint import CHECKPOINT_FILE, FORMAT_VERSION, JobCheckpoint, job_folder, job_key, read_checkpoint
from benchmark.interrupt import Interrupted, deferred, stop_on_signals
from benchmark.io import atomic_path, atomic_write_text
from benchmark.run import run_job
from benchmark.tracking import prepare_experiment
from benchmark.trainer import NonFiniteLossError, Trainer
from conftest import TINY_SYNTHETIC

COMPARED = ("test_auc", "test_logloss", "test_gauc", "best_val_auc", "best_val_logloss", "best_epoch")
EPOCH_METRICS = ("train_loss", "val_auc", "val_logloss", "val_gauc")
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def overrides(*extra: str) -> list[str]:
    """TINY_SYNTHETIC with `extra` replacing the values of the same keys."""
    keys = {e.split("=", 1)[0].lstrip("+") for e in extra}
    return [o for o in TINY_SYNTHETIC if o.split("=", 1)[0] not in keys] + list(extra)


def runs_of(uri: str, experiment: str) -> list[mlflow.entities.Run]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def job_runs(uri: str, experiment: str) -> list[mlflow.entities.Run]:
    """The runs of jobs (a multirun's parent run, tagged sweep=true, left out)."""
    return [r for r in runs_of(uri, experiment) if r.data.tags.get("sweep") != "true"]


def steps(uri: str, run_id: str, metric: str) -> list[int]:
    return [m.step for m in MlflowClient(uri).get_metric_history(run_id, metric)]


def assert_same_result(a: dict[str, float], b: dict[str, float]) -> None:
    for key in COMPARED:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


# ---------------------------------------------------------------------------------------------- interrupts
# ~85 steps an epoch (about a second on a loaded 2-core machine), so that a signal lands inside an epoch
JOB = overrides("dataset.num_users=300", "trainer.batch_size=16", "trainer.max_epochs=4", "trainer.patience=4",
                "seed=1")


def compose_job(*extra: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*JOB, *extra])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for this module's jobs (creating a fresh one takes seconds); one experiment per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def reference(store: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], str]:
    """JOB run without interruption: (final metrics, run id)."""
    checkpoints = tmp_path_factory.mktemp("reference-checkpoints")
    final = run_job(compose_job(f"tracking.uri={store}", "tracking.experiment=reference", "trainer.resume=false",
                                f"trainer.checkpoint_dir={checkpoints}"))
    assert not any(checkpoints.iterdir()), "a FINISHED run removes its checkpoint"
    (run,) = runs_of(store, "reference")
    return final, run.info.run_id


def assert_resumed_like_reference(store: str, experiment: str, killed_id: str, kept_epoch: int,
                                  resumed: dict[str, float], reference: tuple[dict[str, float], str]) -> None:
    """The resumed job ends as the uninterrupted one, in a new run that holds each epoch once; the interrupted
    run is left KILLED."""
    assert_same_result(resumed, reference[0])
    client = MlflowClient(store)
    runs = {r.info.run_id: r for r in runs_of(store, experiment)}
    assert runs[killed_id].info.status == "KILLED"
    (new,) = [r for r in runs.values() if r.info.run_id != killed_id]
    assert new.info.status == "FINISHED"
    assert new.data.tags["resumed_from"] == killed_id and new.data.tags["resumed_at_epoch"] == str(kept_epoch)
    for metric in EPOCH_METRICS:
        assert steps(store, new.info.run_id, metric) == [1, 2, 3, 4]
        got = [m.value for m in client.get_metric_history(new.info.run_id, metric)]
        want = [m.value for m in client.get_metric_history(reference[1], metric)]
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_sigint_marks_the_run_killed_and_resume_from_a_path_ends_as_an_uninterrupted_run(
        store: str, reference: tuple[dict[str, float], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = (f"tracking.uri={store}", "tracking.experiment=sigint", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}")
    original = Trainer.train_epoch

    def interrupted_in_epoch_3(self: Trainer, epoch: int, progress: bool) -> float:
        if epoch == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, epoch, progress)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_3)
    cfg = compose_job(*job)
    with pytest.raises(Interrupted):
        run_job(cfg)
    monkeypatch.undo()
    (killed,) = runs_of(store, "sigint")
    assert killed.info.status == "KILLED"
    assert killed.data.tags["error"] == "interrupted by SIGINT" and killed.data.tags["checkpoint_epoch"] == "2"
    assert steps(store, killed.info.run_id, "val_auc") == [1, 2]
    saved = job_folder(cfg) / CHECKPOINT_FILE
    assert read_checkpoint(saved)["progress"]["epoch"] == 2

    moved = tmp_path / "kept.pt"
    saved.rename(moved)
    resumed = run_job(compose_job(*job, f"trainer.resume={moved}"))
    assert_resumed_like_reference(store, "sigint", killed.info.run_id, 2, resumed, reference)
    assert not job_folder(cfg).exists()


def wait_for_first_checkpoint(proc: subprocess.Popen, tmp_path: Path) -> None:
    """Until the job in `proc` has written its epoch-1 checkpoint under tmp_path/ckpt (it must stay alive)."""
    deadline = time.monotonic() + 240
    while not list((tmp_path / "ckpt").glob(f"*/{CHECKPOINT_FILE}")):
        assert proc.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint of epoch 1 within 240 s"
        time.sleep(0.05)


def test_sigterm_mid_epoch_then_rerunning_the_same_command_resumes(
        store: str, reference: tuple[dict[str, float], str], tmp_path: Path) -> None:
    """A real process, signalled in the middle of epoch 2 (once the checkpoint of epoch 1 exists)."""
    job = [*JOB, f"tracking.uri={store}", "tracking.experiment=sigterm", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}"]
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark", *job, f"hydra.run.dir={tmp_path / 'out'}"],
                                cwd=PROJECT_ROOT, env=SUBPROCESS_ENV, stdout=out, stderr=err)
        try:
            wait_for_first_checkpoint(proc, tmp_path)
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    stderr = (tmp_path / "stderr").read_text()
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "interrupted by SIGTERM" in stderr and "rerun the same command to resume" in stderr
    assert "Traceback" not in stderr
    (killed,) = runs_of(store, "sigterm")
    assert killed.info.status == "KILLED" and killed.data.tags["error"] == "interrupted by SIGTERM"
    kept_epoch = int(killed.data.tags["checkpoint_epoch"])
    assert 1 <= kept_epoch < 4

    resumed = run_job(compose_job(*job[len(JOB):]))  # the same job again: resumes by default
    assert_resumed_like_reference(store, "sigterm", killed.info.run_id, kept_epoch, resumed, reference)


def test_sigkill_mid_epoch_leaves_a_ghost_that_the_resumed_job_ends_killed(
        store: str, reference: tuple[dict[str, float], str], tmp_path: Path) -> None:
    """SIGKILL gives the job no chance to end its run: the run stays RUNNING with a dead owner (a ghost, listed by
    tracking.ghost_runs) until the same job resumes from its checkpoint and ends it KILLED, tagged replaced_by."""
    job = [*JOB, f"tracking.uri={store}", "tracking.experiment=sigkill", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}"]
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark", *job, f"hydra.run.dir={tmp_path / 'out'}"],
                                cwd=PROJECT_ROOT, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for_first_checkpoint(proc, tmp_path)
            (running,) = runs_of(store, "sigkill")
            assert running.info.status == "RUNNING" and not tracking.ghost_runs([running]), "its owner is alive"
            proc.kill()
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    (ghost,) = runs_of(store, "sigkill")
    assert ghost.info.status == "RUNNING" and ghost.data.tags["owner.pid"] == str(proc.pid)
    assert tracking.is_orphaned(ghost) and tracking.ghost_runs([ghost]) == [ghost]
    (saved,) = (tmp_path / "ckpt").glob(f"*/{CHECKPOINT_FILE}")
    kept_epoch = int(read_checkpoint(saved)["progress"]["epoch"])

    resumed = run_job(compose_job(*job[len(JOB):]))
    assert_resumed_like_reference(store, "sigkill", ghost.info.run_id, kept_epoch, resumed, reference)
    runs = {r.info.run_id: r for r in runs_of(store, "sigkill")}
    (new_id,) = set(runs) - {ghost.info.run_id}
    assert runs[ghost.info.run_id].data.tags["replaced_by"] == new_id
    assert not tracking.ghost_runs(list(runs.values()))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_runs_running_with_no_live_owner_are_ghosts_and_reap_ends_them(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = prepare_experiment(uri, "ghosts")
    client = MlflowClient(uri)
    mine = tracking.owner_tags()
    owners = {
        "alive": mine,
        "dead": dict(mine, **{"owner.pid": str(_dead_pid()), "owner.start": ""}),
        "pid reused": dict(mine, **{"owner.start": mine["owner.start"] + "0"}),  # this pid, another process
        "rebooted": dict(mine, **{"owner.start": "another-boot:1"}),
        "other host": dict(mine, **{"owner.host": "elsewhere", "owner.pid": str(_dead_pid())}),
        "no owner": {},
    }
    ids = {name: client.create_run(experiment_id, tags=tags, run_name=name).info.run_id for name, tags in owners.items()}
    finished = client.create_run(experiment_id, tags=owners["dead"], run_name="finished").info.run_id
    client.set_terminated(finished, "FINISHED")
    runs = client.search_runs([experiment_id])
    assert sorted(r.info.run_name for r in tracking.ghost_runs(runs)) == ["dead", "pid reused", "rebooted"]

    assert tracking.main(["reap", "--tracking-uri", uri, "--experiment", "ghosts"]) == 0
    status = {r.info.run_name: r.info.status for r in client.search_runs([experiment_id])}
    assert status == {"alive": "RUNNING", "dead": "KILLED", "pid reused": "KILLED", "rebooted": "KILLED",
                      "other host": "RUNNING", "no owner": "RUNNING", "finished": "FINISHED"}
    assert "ended without ending the run" in client.get_run(ids["dead"]).data.tags["reaped"]
    assert not tracking.ghost_runs(client.search_runs([experiment_id]))


def test_a_signal_inside_deferred_waits_for_the_block_to_end() -> None:
    events = []
    with pytest.raises(Interrupted), stop_on_signals():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            events.append("block finished")
        events.append("not reached")
    assert events == ["block finished"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "the previous handler is restored"


def test_the_same_job_running_twice_does_not_share_its_checkpoint(tmp_path: Path) -> None:
    first, second = JobCheckpoint(tmp_path / "job", "k"), JobCheckpoint(tmp_path / "job", "k")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert not (tmp_path / "job").exists(), "a folder without a checkpoint is removed"


def test_the_job_key_ignores_only_what_cannot_change_the_result(compose_cfg: Callable) -> None:
    base = compose_cfg()

    def key_with(dotted: str, value: object) -> str:
        cfg = base.copy()
        with open_dict(cfg):
            OmegaConf.update(cfg, dotted, value, merge=False)
        return job_key(cfg)

    for dotted, value in (("tracking.uri", "sqlite:////tmp/x.db"), ("tracking.experiment", "other"),
                          ("trainer.progress", True), ("trainer.resume", False), ("trainer.checkpoint_dir", "/c"),
                          ("experiment_name", "table2")):
        assert key_with(dotted, value) == job_key(base), dotted
    for dotted, value in (("seed", 1), ("trainer.lr", 0.01), ("model.name", "din"), ("dataset.num_users", 10),
                          ("trainer.max_epochs", 3), ("embedding_dim", 4)):
        assert key_with(dotted, value) != job_key(base), dotted


def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable.*trainer.resume=false"):
        read_checkpoint(tmp_path)
    torch.save({"format": FORMAT_VERSION, "model": {}}, tmp_path / CHECKPOINT_FILE)  # readable, but incomplete
    with pytest.raises(ValueError, match="incomplete \\(missing optimizer, progress\\).*trainer.resume=false"):
        read_checkpoint(tmp_path)


def test_a_checkpoint_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ckpt").write_text("a file")
    with pytest.raises(ValueError, match="trainer.checkpoint_dir: cannot make the folder .*give trainer.checkpoint_dir"):
        JobCheckpoint(tmp_path / "ckpt" / "job", "k").acquire()
    assert (tmp_path / "ckpt").read_text() == "a file"


# ---------------------------------------------------------------------------------------------- faults
POISON = """
import runpy
from benchmark.trainer import Trainer

_loss = Trainer._loss


def poisoned(self, batch):  # the job with seed 1 diverges: its loss becomes NaN
    total, data = _loss(self, batch)
    return (total * float("nan"), data * float("nan")) if self.seed == 1 else (total, data)


Trainer._loss = poisoned
runpy.run_module("benchmark", run_name="__main__", alter_sys=True)  # as `python -m benchmark`
"""


def test_a_diverged_job_and_a_job_without_data_fail_alone_and_the_sweep_goes_on(store: str, tmp_path: Path) -> None:
    uri = store
    # dataset keys with '++': they exist in synthetic's config and are added (unused) to movielens'
    job = [o if not o.startswith("dataset.") else f"++{o}" for o in TINY_SYNTHETIC]
    proc = subprocess.run(
        [sys.executable, "-c", POISON, "-m", "seed=0,1", "dataset=synthetic,movielens",
         f"++dataset.raw_dir={tmp_path / 'no-such-folder'}", *job, "trainer.max_epochs=1",
         f"tracking.uri={uri}", "tracking.experiment=faults", f"trainer.checkpoint_dir={tmp_path / 'ckpt'}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=PROJECT_ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    runs = {(r.data.tags["dataset"], r.data.tags["seed"]): r for r in job_runs(uri, "faults")}
    assert len(runs) == 4
    assert runs["synthetic", "0"].info.status == "FINISHED"
    diverged = runs["synthetic", "1"]
    assert diverged.info.status == "FAILED"
    assert diverged.data.tags["error_type"] == NonFiniteLossError.__name__
    assert "training loss is nan in epoch 1" in diverged.data.tags["error"]
    for seed in ("0", "1"):  # the job after the diverged one ran too
        missing = runs["movielens", seed]
        assert missing.info.status == "FAILED" and missing.data.tags["error_type"] == "DataError"
        assert "no-such-folder" in missing.data.tags["error"]
    assert proc.stderr.count("error in job") == 3
    assert "training loss is nan" in proc.stderr and "missing raw file" in proc.stderr


def test_a_nan_loss_fails_the_run_with_the_reason(compose_cfg: Callable, store: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tracking_uri = store
    original = Trainer._loss

    def exploding(self: Trainer, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        total, data = original(self, batch)
        return total * float("inf"), data * float("inf")

    monkeypatch.setattr(Trainer, "_loss", exploding)
    cfg = compose_cfg(*overrides(f"tracking.uri={tracking_uri}", "tracking.experiment=diverge",
                                 f"trainer.checkpoint_dir={tmp_path / 'ckpt'}"))
    with pytest.raises(NonFiniteLossError, match="training loss is (nan|inf) in epoch 1"):
        run_job(cfg)
    (run,) = runs_of(tracking_uri, "diverge")
    assert run.info.status == "FAILED" and run.data.tags["error_type"] == "NonFiniteLossError"
    assert not job_folder(cfg).exists(), "no epoch finished: no checkpoint left behind"


# ---------------------------------------------------------------------------------------------- parallel jobs
def _log_in_parallel(uri: str, barrier: multiprocessing.synchronize.Barrier, index: int) -> None:
    """One job's tracking calls, as benchmark/run.py makes them."""
    barrier.wait()
    experiment_id = prepare_experiment(uri, "race")
    tracking.retrying(mlflow.start_run, experiment_id=experiment_id, run_name=f"writer-{index}")
    for step in range(20):
        tracking.log_metrics({"a": float(step), "b": float(index)}, step=step)
    tracking.log_params({"index": index})
    tracking.end_run("FINISHED")


def test_parallel_first_use_of_a_fresh_sqlite_store(tmp_path: Path) -> None:
    """Four processes create the same fresh store and experiment at the same moment, then write at once."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    procs = [context.Process(target=_log_in_parallel, args=(uri, barrier, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(timeout=10)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    runs = runs_of(uri, "race")
    assert sorted(r.data.params["index"] for r in runs) == ["0", "1", "2", "3"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert steps(uri, run.info.run_id, "a") == list(range(20))
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow  # minutes on a loaded 2-core machine (each loky worker imports torch and MLflow)
def test_joblib_multirun_of_four_jobs_two_at_a_time_lands_every_run(tmp_path: Path) -> None:
    """The real thing behind the test above: Hydra's joblib launcher, 4 jobs 2 at a time, one fresh store."""
    db = tmp_path / "store" / "mlflow.db"  # a fresh store, in a folder that does not exist yet
    uri = f"sqlite:///{db}"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "seed=0,1,2,3", *TINY_SYNTHETIC, f"tracking.uri={uri}", "tracking.experiment=parallel",
         f"trainer.checkpoint_dir={tmp_path / 'ckpt'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=PROJECT_ROOT, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = job_runs(uri, "parallel")
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2", "3"], "exactly one run per job"
    for run in runs:
        assert run.info.status == "FINISHED"
        assert {"test_auc", "test_logloss", "test_gauc", "best_epoch", "epoch_time_mean_s"} <= set(run.data.metrics)
        for metric in EPOCH_METRICS:
            assert steps(uri, run.info.run_id, metric) == [1, 2]
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------------------------------- killed writers
KILLED_WRITER = """
import sys, time
from pathlib import Path
from benchmark.io import atomic_path

target, marker = Path(sys.argv[1]), Path(sys.argv[2])
with atomic_path(target) as tmp:
    with open(tmp, "w") as f:
        f.write("half of the new ")
        f.flush()
        marker.touch()
        time.sleep(60)
        f.write("results")
"""

KILLED_BUILD = """
import sys, time
from pathlib import Path
import numpy as np
from benchmark.data.cache import load_or_build

cache, marker = Path(sys.argv[1]), Path(sys.argv[2])

def build(writer):
    writer.add_array("train", "label", np.zeros(10, dtype=np.float32))
    marker.touch()
    time.sleep(60)

load_or_build(cache, "toy", {"v": 1}, [], build)
"""


def _run_until_marker_then_kill(script: str, *args: Path, marker: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args), str(marker)], cwd=PROJECT_ROOT,
                            env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_a_killed_results_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    atomic_write_text(target, "the old results\n")
    _run_until_marker_then_kill(KILLED_WRITER, target, marker=tmp_path / "marker")
    assert target.read_text() == "the old results\n"
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("broken")
        raise RuntimeError("failed mid-write")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["marker", "results.csv"]


def test_a_killed_preprocessing_run_leaves_no_readable_cache_entry(tmp_path: Path) -> None:
    from benchmark.data.cache import load_or_build
    from benchmark.data.schema import Dataset, Field, Schema

    cache = tmp_path / "cache"
    _run_until_marker_then_kill(KILLED_BUILD, cache, marker=tmp_path / "marker")
    assert [p.name for p in cache.iterdir() if p.name.startswith("toy-")] == [], "no entry under a final name"
    schema = Schema((Field("item_id", 3),), (Field("user", 2),), (Field("hour", 2),), max_len=1)
    split = {"item": np.ones((2, 1), np.int64), "hist": np.zeros((2, 1, 1), np.int64),
             "hist_len": np.zeros(2, np.int64), "neg_hist": np.zeros((2, 1, 1), np.int64),
             "user": np.ones((2, 1), np.int64), "context": np.ones((2, 1), np.int64),
             "label": np.array([0, 1], np.float32), "user_id": np.array([1, 2], np.int64)}
    built = []

    def build(writer) -> None:
        built.append(True)
        writer.write_dataset(Dataset.from_dense("toy", schema, {s: split for s in ("train", "valid", "test")}))

    dataset = load_or_build(cache, "toy", {"v": 1}, [], build)
    assert built == [True], "the later run rebuilt the entry instead of reading the killed build's files"
    assert len(dataset.splits["train"]["label"]) == 2
    assert not list(cache.glob(".tmp-*")), "the killed build's temporary folder was cleared"


def test_io_helpers_write_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "a\nb\n")
    assert path.read_bytes() == b"a\nb\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
