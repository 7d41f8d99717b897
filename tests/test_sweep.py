"""Experiment configs, launcher configs and the sweep callback (one parent MLflow run per multirun)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, read_write

from benchmark import PROJECT_ROOT
from benchmark.names import ALL_MODELS, MODELS
from benchmark.config import ConfigError, validate_config
from benchmark.run import run_job
from benchmark.sweep import PARENT_ENV, SweepCallback, benchmark_command, sweep_axes
from conftest import CONF_DIR, TINY_SYNTHETIC

CONF = PROJECT_ROOT / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_hydra(*overrides: str) -> DictConfig:
    """The config with its `hydra` node, as the launching process of a multirun sees it."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def compose_task(*overrides: str) -> DictConfig:
    """The config a job's task function gets (no `hydra` node)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def split(values: str) -> list[str]:
    return [v.strip() for v in str(values).split(",")]


def test_experiment_configs_sweep_what_their_table_needs() -> None:
    sweeps = ["effects", "efficiency", "readings", "sensitivity", "table2", "table3", "table4"]
    # `tune` labels the trials of python -m benchmark.tune (tests/test_tune.py): not a sweep of its own
    assert options("experiment") == sorted([*sweeps, "tune"])
    for name in sweeps:
        cfg = compose_hydra(f"experiment={name}")
        assert cfg.experiment_name == name
        assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
        assert cfg.hydra.sweeper.params.seed == ("range(3)" if name in ("effects", "readings") else "range(5)")
        assert "sweep" in cfg.hydra.callbacks
    sensitivity = compose_hydra("experiment=sensitivity").hydra.sweeper.params
    # every protocol but `tuned`, whose values come from a tuning study of the same data (docs/tuning.md)
    assert sorted(split(sensitivity.protocol)) == sorted(set(options("protocol")) - {"tuned"})
    assert set(split(sensitivity.arm)) <= set(options("arm"))
    params = lambda name: compose_hydra(f"experiment={name}").hydra.sweeper.params  # noqa: E731
    # the paper's eight models; the control models of the effects experiment are options too (conf/model/)
    assert options("model") == sorted(ALL_MODELS)
    assert sorted(split(params("table2").model)) == sorted(MODELS)
    assert sorted(split(params("efficiency").model)) == sorted(MODELS)
    assert sorted(split(params("table3").ablation)) == options("ablation")
    assert split(params("table4")["model.encoder"]) == ["pre_ln", "post_ln", "none"]
    assert compose_hydra("experiment=efficiency").trainer.max_epochs == 3
    assert sorted(split(params("effects").mechanism)) == options("mechanism")
    assert split(params("effects")["dataset.seed"]) == ["range(3)"] and split(params("effects").seed) == ["range(3)"]
    assert sorted(split(params("effects").arm)) == sorted(set(options("arm")) - {
        "mian_no_iuim_icim", "mian_din_no_iuim_icim", "mian_per_position", "mian_bahdanau", "mian_bilinear"})
    assert compose_hydra("experiment=effects").dataset.loader == "calibrated"
    assert split(params("readings")["model.ibim_score"]) == ["additive", "bahdanau", "din"]


@pytest.mark.parametrize("arm", options("arm"))
def test_each_arm_composes_its_model_and_reading(arm: str) -> None:
    cfg = compose_task(f"arm={arm}", "effects=sequence")
    validate_config(cfg)
    if arm.startswith("mian_"):
        assert cfg.model.name == "mian"
        choice = arm.removeprefix("mian_")
        if "no_" in choice:  # mian_<ablation> or mian_<reading>_<ablation>
            reading, _, ablation = choice.partition("no_")
            assert cfg.ablation.name == f"no_{ablation}"
            assert cfg.model.ibim_score == (reading.rstrip("_") or "additive")
        elif choice == "product":  # the literal scores with the product readout
            assert cfg.ablation.name == "full" and cfg.model.readout == "product"
            assert cfg.model.ibim_score == cfg.model.field_score == "additive"
        else:
            assert cfg.ablation.name == "full" and cfg.model.ibim_score == choice
            assert cfg.model.field_score == ("additive" if choice == "per_position" else choice)
    else:
        assert cfg.model.name == arm and cfg.ablation.name == "full"


def test_launcher_configs_extend_the_plugins() -> None:
    joblib = compose_hydra("experiment=table2", "hydra/launcher=local_parallel").hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2
    slurm = compose_hydra("experiment=table2", "hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher")
    assert (slurm.partition, slurm.gpus_per_node, slurm.timeout_min) == ("gpu", 1, 240)
    local = compose_hydra("hydra/launcher=submitit_local").hydra.launcher
    assert local._target_.endswith("LocalLauncher")


def test_sweep_axes_counts_jobs_and_lets_the_command_line_win() -> None:
    axes = sweep_axes({"seed": "range(5)", "model": "lr,din,mian"}, ["seed=0,1", "dataset=movielens"])
    assert axes == {"seed": ["0", "1"], "model": ["lr", "din", "mian"], "dataset": ["movielens"]}
    assert sweep_axes({}, ["model=lr", "seed=3"]) == {"model": ["lr"], "seed": ["3"]}
    assert sweep_axes({"x": "interval(0, 1)"}, []) is None  # not a grid: count unknown


def test_benchmark_command_quotes_for_the_shell() -> None:
    command = benchmark_command(["model=lr", "tracking.uri=sqlite:////tmp/a b/db"], multirun=True)
    assert command == "python -m benchmark -m model=lr 'tracking.uri=sqlite:////tmp/a b/db'"


def _callback_sweep(tracking_uri: str, jobs: list[list[str]], expected_extra: list[str],
                    experiment: tuple[str, ...] = ("experiment=table2",)) -> tuple[MlflowClient, str]:
    """Drive the callback in-process as Hydra's basic launcher does: multirun start, each job between
    on_job_start and on_job_end, multirun end. `experiment=()` is an ad-hoc sweep (no hydra.sweeper.params).
    Returns the client and the parent run id."""
    base = [*experiment, *TINY_SYNTHETIC, f"tracking.uri={tracking_uri}", "tracking.experiment=cb"]
    callback = SweepCallback()
    start = compose_hydra(*base)
    with read_write(start):  # the sweep's own overrides, which compose() does not take
        start.hydra.overrides.task = [*base, *expected_extra]
    callback.on_multirun_start(start)
    parent = callback.parent_run_id
    assert parent and os.environ[PARENT_ENV] == parent
    for job in jobs:
        cfg = compose_hydra(*base, *job)
        callback.on_job_start(cfg)
        try:
            run_job(compose_task(*base, *job))
        except ConfigError:
            pass  # a job that fails validation leaves no run, as in a real sweep
        callback.on_job_end(cfg, job_return=None)
    callback.on_multirun_end(compose_hydra(*base))
    assert PARENT_ENV not in os.environ
    return MlflowClient(tracking_uri), parent


def test_callback_makes_a_parent_run_with_one_child_per_job(tracking_uri: str) -> None:
    client, parent_id = _callback_sweep(tracking_uri, [["model=lr", "seed=0"], ["model=lr", "seed=1"]],
                                        ["model=lr", "seed=0,1"])
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["expected_jobs"] == "2" and parent.data.tags["experiment_name"] == "table2"
    assert parent.data.tags["command"].startswith("python -m benchmark -m experiment=table2 ")
    assert parent.data.metrics["children_finished"] == 2
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "cb" and experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(c.data.tags["seed"] for c in children) == ["0", "1"]
    for child in children:
        tags = child.data.tags
        assert tags["command"].startswith("python -m benchmark experiment=table2 ")
        assert f"seed={tags['seed']}" in tags["command"]
        assert tags["cpu_model"] and "torch==" in tags["packages"] and tags["experiment_name"] == "table2"
        assert child.data.params["experiment_name"] == "table2"


def test_callback_makes_a_parent_run_for_an_ad_hoc_sweep(tracking_uri: str) -> None:
    """`-m model=lr,dcn` without an experiment config: no hydra.sweeper.params, the grid is the command line."""
    client, parent_id = _callback_sweep(tracking_uri, [["model=lr"], ["model=dcn"]], ["model=lr,dcn"],
                                        experiment=())
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["expected_jobs"] == "2"
    assert parent.data.tags["experiment_name"] == "adhoc" and parent.data.tags["sweep_params"] == "{}"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(c.data.tags["model"] for c in children) == ["dcn", "lr"]


def test_callback_marks_the_parent_failed_when_a_job_left_no_finished_run(tracking_uri: str) -> None:
    # lr with an ablation fails validation before any run starts: 1 finished child of 2 expected jobs
    client, parent_id = _callback_sweep(tracking_uri, [["model=lr", "ablation=no_gim"], ["model=lr"]],
                                        ["model=lr", "seed=0", "ablation=no_gim,full"])
    parent = client.get_run(parent_id)
    assert parent.data.tags["expected_jobs"] == "2"
    assert parent.data.metrics["children_finished"] == 1
    assert parent.info.status == "FAILED"


def _sweep_cli(tmp_path: Path, seeds: str, *extra: str) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "-m", "experiment=table2", "model=lr", *TINY_SYNTHETIC,
         "trainer.max_epochs=1", f"seed={seeds}", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
         *extra],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return MlflowClient(uri)


def _assert_parent_with_children(client: MlflowClient, count: int) -> None:
    experiment = client.get_experiment_by_name("mian-table2")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == count and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags.get("command") for c in children)


def test_submitit_local_launcher_runs_a_sweep_under_one_parent(tmp_path: Path) -> None:
    """The cluster launcher's code path (submitit: the callback pickled into a job process of its own), on this
    machine. One job keeps it short; the slow joblib test below runs two at once."""
    client = _sweep_cli(tmp_path, "0", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    _assert_parent_with_children(client, 1)


@pytest.mark.slow
def test_joblib_launcher_runs_a_sweep_under_one_parent(tmp_path: Path) -> None:
    client = _sweep_cli(tmp_path, "0,1", "hydra/launcher=local_parallel")
    _assert_parent_with_children(client, 2)
