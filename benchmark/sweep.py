"""A Hydra callback that gives every multirun sweep one parent MLflow run, with each job's run as its child.

Registered under `hydra.callbacks.sweep` in conf/config.yaml. In the launching process, before any launcher
starts a job, `on_multirun_start` creates the store and the experiment once (parallel first-time creation of a
SQLite store races) and opens the parent run. Jobs learn its id from the environment variable
`BENCHMARK_PARENT_RUN_ID`, which benchmark/run.py reads when `tracking.parent_run_id` is not set. The variable
is set in the launching process (the basic launcher runs jobs there; joblib's and submitit's workers are
spawned after it is set) and again in `on_job_start`, which runs inside each job's process with a pickled
copy of this callback: that covers reused worker processes and remote SLURM jobs. `on_job_end` adds the job's
exact command, CPU model and package versions to the job's run; `on_multirun_end` closes the parent run as
FINISHED, or FAILED when a job has no finished run.
"""
from __future__ import annotations

import atexit
import math
import json
import os
import shlex
import sys
import time
from typing import Any

import mlflow
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from benchmark.config import composition_error
from benchmark.machine import cpu_model, git_commit, package_versions
from benchmark.tracking import owner_tags, prepare_experiment, resolve_tracking_uri
from benchmark.tracking.record import EXPERIMENT_TAG, experiment_of

PARENT_ENV = "BENCHMARK_PARENT_RUN_ID"
CONFIG_ERROR_ENV = "BENCHMARK_CONFIG_ERROR"  # a job's refusal, carried in hydra.job.env_set (keep_invalid_jobs)
def benchmark_command(overrides: list[str], multirun: bool) -> str:
    """The shell command that repeats a job (or sweep) with these overrides."""
    return shlex.join(["python", "-m", "benchmark", *(["-m"] if multirun else []), *overrides])


def launching_command(hydra_cfg: DictConfig) -> str:
    """The command line that started this sweep: argv as typed when launched by `python -m benchmark`, else
    rebuilt from Hydra's overrides (Hydra keeps its own overrides apart from the task's)."""
    if sys.argv and sys.argv[0].replace(os.sep, "/").endswith("benchmark/__main__.py"):
        return shlex.join(["python", "-m", "benchmark", *sys.argv[1:]])
    overrides = [*map(str, hydra_cfg.overrides.hydra), *map(str, hydra_cfg.overrides.task)]
    return benchmark_command(overrides, multirun=True)


def sweep_axes(params: dict[str, str], task_overrides: list[str]) -> dict[str, list[str]] | None:
    """The values each key takes in the basic sweeper's grid: `hydra.sweeper.params` plus the command line's
    overrides (the command line wins for a key given twice); None when they cannot be parsed here."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + task_overrides)
    except Exception:  # noqa: BLE001 - another sweeper's syntax: the grid is only informative
        return None
    axes: dict[str, list[str]] = {}
    for override in parsed:
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                return None
            axes[override.get_key_element()] = [str(v) for v in override.sweep_string_iterator()]
        else:
            axes[override.get_key_element()] = [str(override.get_value_element_as_str())]
    return axes


def keep_invalid_jobs(loader: Any) -> None:
    """Let a job whose overrides do not compose fail alone, as a job with a value out of range does.

    Hydra composes every job of a sweep before it launches any (BasicSweeper.validate_batch_is_legal), so one
    value of the wrong type for its schema (trainer.lr=abc) would stop the whole sweep. With the launching
    process's config loader wrapped here, such a job is composed without the override Hydra refused and carries
    the refusal, in validate_config's words, in `hydra.job.env_set`; benchmark/__main__.py then ends the job with
    it and the sweep goes on. Jobs composed elsewhere (SLURM nodes) still fail with Hydra's own message."""
    if getattr(loader, "keeps_invalid_jobs", False):
        return
    compose = loader.load_sweep_config

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        try:
            return compose(master_config, sweep_overrides)
        except ConfigCompositionException as error:
            refusal = composition_error(error)
            if refusal is None:
                raise
            kept = [o for o in sweep_overrides if f"override {o}" not in str(error)]
            try:
                cfg = compose(master_config, kept)
            except ConfigCompositionException:
                cfg = compose(master_config, [])
        with open_dict(cfg):
            cfg.hydra.job.env_set[CONFIG_ERROR_ENV] = str(refusal)
            cfg.hydra.overrides.task = list(sweep_overrides)
            cfg.hydra.job.override_dirname = ",".join(sorted(sweep_overrides))
        return cfg

    loader.load_sweep_config = load_sweep_config
    loader.keeps_invalid_jobs = True


class SweepCallback(Callback):
    """One parent MLflow run per multirun; every job's run is its child (see the module docstring)."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None
        self.expected_jobs: int | None = None
        self._run_before_job: str | None = None

    # --- in the launching process -------------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if GlobalHydra.instance().is_initialized():
            keep_invalid_jobs(GlobalHydra.instance().config_loader())
        self.tracking_uri = resolve_tracking_uri(config.tracking.uri, OmegaConf.select(config, "paths.tracking_db"))
        experiment_id = prepare_experiment(self.tracking_uri, str(config.tracking.experiment))
        hydra_cfg = config.hydra
        task = [str(o) for o in hydra_cfg.overrides.task]
        command = launching_command(hydra_cfg)
        # `hydra.sweeper.params` is set by the experiment configs and absent (None) in an ad-hoc `-m a=1,2`
        params_node = hydra_cfg.sweeper.get("params")
        params = OmegaConf.to_container(params_node, resolve=False) if params_node is not None else {}
        assert isinstance(params, dict)
        axes = sweep_axes({str(k): str(v) for k, v in params.items()}, task)
        self.expected_jobs = math.prod(len(v) for v in axes.values()) if axes is not None else None
        dataset = "+".join(axes["dataset"]) if axes and "dataset" in axes else str(config.dataset.name)
        experiment_name = experiment_of(config)
        tags = {
            "sweep": "true", EXPERIMENT_TAG: experiment_name, "dataset": dataset, "command": command,
            "sweep_params": json.dumps({str(k): str(v) for k, v in params.items()}),
            "sweep_overrides": shlex.join(task), "sweep_dir": str(hydra_cfg.sweep.dir),
            "launcher": str(hydra_cfg.launcher.get("_target_", "")).rsplit(".", 1)[-1],
            "expected_jobs": str(self.expected_jobs if self.expected_jobs is not None else "unknown"),
            "git_commit": git_commit(), "packages": package_versions(), "cpu_model": cpu_model(),
            "mlflow.note.content": (
                f"Sweep `{experiment_name}`: one child run per job.\n\nCommand: `{command}`\n\n"
                "Compare the children: expand this run, pick the metric and param columns (test_auc, "
                "test_logloss, model, seed), or select the children and press Compare."
            ),
        }
        tags.update(owner_tags())  # a parent left RUNNING by a killed launcher is a ghost (tracking.is_orphaned)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        client = MlflowClient(self.tracking_uri)
        # MLflow 3's UI shows a "model training" experiment's runs table rather than the GenAI overview
        if "mlflow.experimentKind" not in client.get_experiment(experiment_id).tags:
            client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
        run = client.create_run(
            experiment_id, run_name=f"sweep-{experiment_name}-{dataset}-{stamp}", tags=tags)
        self.parent_run_id = run.info.run_id
        os.environ[PARENT_ENV] = self.parent_run_id
        atexit.register(self._close, "KILLED")
        print(f"MLflow parent run {self.parent_run_id} ({self.tracking_uri}), {tags['expected_jobs']} jobs")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close(None)

    def _close(self, status: str | None) -> None:
        """End the parent run: `status` if given (KILLED at an unexpected exit), else FINISHED when every
        expected job left a finished child run, FAILED otherwise."""
        if self.parent_run_id is None or self.tracking_uri is None:
            return
        run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(PARENT_ENV, None)
        client = MlflowClient(self.tracking_uri)
        experiment_id = client.get_run(run_id).info.experiment_id
        children = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                                      max_results=50000)
        finished = sum(c.info.status == "FINISHED" for c in children)
        client.log_metric(run_id, "children_finished", finished)
        client.log_metric(run_id, "children_not_finished", len(children) - finished)
        if status is None:
            missing = self.expected_jobs is not None and finished < self.expected_jobs
            status = "FAILED" if missing or finished < len(children) else "FINISHED"
        client.set_terminated(run_id, status)

    # --- in each job's process ----------------------------------------------------------------------------
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id:
            os.environ[PARENT_ENV] = self.parent_run_id
        last = _last_run()
        self._run_before_job = last.info.run_id if last is not None else None

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Tag the job's own run (if it started one) with its exact command, CPU model and packages (its identity,
        the experiment included, is the RunRecord's tags that benchmark/run.py wrote when the run started). A
        failure here is reported and does not stop the sweep: the tags only add provenance."""
        last = _last_run()
        if last is None or last.info.run_id == self._run_before_job:
            return
        if self.parent_run_id and last.data.tags.get("mlflow.parentRunId") != self.parent_run_id:
            return
        overrides = [str(o) for o in config.hydra.overrides.task]
        tags = {"command": benchmark_command(overrides, multirun=False), "cpu_model": cpu_model(),
                "packages": package_versions()}
        try:
            client = MlflowClient(resolve_tracking_uri(config.tracking.uri, OmegaConf.select(config, "paths.tracking_db")))
            for key, value in tags.items():
                client.set_tag(last.info.run_id, key, value)
        except Exception as error:  # noqa: BLE001
            print(f"warning: could not tag run {last.info.run_id}: {error}", file=sys.stderr)


def _last_run() -> Any:
    """The run this process last ended, None when none or when it is not in the current store."""
    try:
        return mlflow.last_active_run()
    except mlflow.exceptions.MlflowException:
        return None
