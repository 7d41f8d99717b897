"""One job: validate the config, load data, build the model, train, and record it all as one MLflow run."""
from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark import tracking
from benchmark.checkpoint import JobCheckpoint, job_folder, open_job_checkpoint
from benchmark.config import ConfigError, validate_config
from benchmark.config import schema as config_schema
from benchmark.diagnostics import learned
from benchmark.data import load_dataset
from benchmark.interrupt import Interrupted, deferred, stop_on_signals
from benchmark.machine import device_name, git_commit, python_version, torch_version
from benchmark.tracking import RunLog, TrackingBacklog, TrackingError
from benchmark.tracking.record import MIAN_TAGS, RunRecord, protocol_of, variant_of  # noqa: F401 - tune, tests
from benchmark.trainer import (
    EpochCallback, NonFiniteLossError, Trainer, select_device, summarise_epoch_times,
)
from models import build_model


# Errors whose message is the whole story (bad config value, missing or malformed data, unreachable store,
# diverged training): the runner prints the message without a traceback. ConfigError and the data errors
# are ValueErrors; a missing file is an OSError.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, TrackingError, NonFiniteLossError)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# MIAN's options that tell its runs apart in the tables (tagged on every MIAN run: benchmark/tracking/record.py
# MIAN_TAGS), with their schema's defaults: a run's name names those it sets apart.
MIAN_READING_DEFAULTS = {f.name: f.default for f in dataclasses.fields(config_schema.MIAN) if f.name in MIAN_TAGS}


def log_attention_sample(trainer: Trainer, model: torch.nn.Module, count: int = 14,
                         write: Callable[[str, str], None] = tracking.log_text) -> None:
    """For MIAN, the GIM weights of `count` random test examples (the paper's Figure 6) as an artifact
    (`write(text, file name)`)."""
    explain = getattr(model, "explain", None)
    if explain is None or getattr(model, "gim", None) is None:
        return
    test = trainer.data["test"]
    n = len(test)
    generator = torch.Generator().manual_seed(trainer.seed)
    index = torch.randperm(n, generator=generator)[: min(count, n)].to(trainer.device)
    model.eval()
    with torch.no_grad():
        batch = test.batch(index)
        out = explain(batch)
    frame = pd.DataFrame(out["gim"].float().cpu().numpy(), columns=model.gim_names)
    frame.insert(0, "test_index", index.cpu().numpy())
    frame["label"] = batch["label"].cpu().numpy()
    frame["prob"] = torch.sigmoid(out["logits"].float()).cpu().numpy()
    write(frame.to_csv(index=False), "gim_weights.csv")


# How long an interrupted or failed job waits for an unanswering tracking server before it leaves the rest of
# its logging in the journal.
END_WAIT_S = 10.0


def _end_run(status: str, tags: dict[str, str], log: RunLog | None = None) -> None:
    """Tag and end the active run; a failure to reach the store here is reported, not raised (the original
    error is the one that matters). Nothing to do when the run has already ended (set_tags would start a new one).
    With a server's RunLog still open, through it: a server that does not answer holds the job END_WAIT_S at
    most, and the journal keeps the run's end for the replay."""
    if mlflow.active_run() is None:
        return
    if log is not None and log.asynchronous and not log.closed:
        log.set_tags(tags)
        log.end(status)
        if not log.close(END_WAIT_S):
            print(f"[benchmark] warning: {log.backlog_message()}", file=sys.stderr)
        tracking.drop_active_run()
        return
    try:
        tracking.set_tags(tags)
        tracking.end_run(status)
    except Exception as error:  # noqa: BLE001
        print(f"[benchmark] warning: could not mark the MLflow run {status}: {error}", file=sys.stderr)


def _tidy_store(uri: str, experiment_id: str, run_id: str, resume_state: dict[str, Any] | None) -> None:
    """No ghost runs: the run whose checkpoint this job resumes ends KILLED (tag `replaced_by`) when it is still
    RUNNING, then every other RUNNING run of the experiment whose owner process is gone ends KILLED (tag
    `reaped`). Housekeeping: a failure is reported, not raised."""
    try:
        if resume_state is not None and resume_state.get("run_id"):
            tracking.end_replaced_run(uri, str(resume_state["run_id"]), run_id)
        for ghost in tracking.reap_ghosts(uri, [experiment_id]):
            print(f"[benchmark] run {ghost.info.run_id} ({ghost.info.run_name}) was RUNNING with no live process: "
                  "ended KILLED", file=sys.stderr)
    except Exception as error:  # noqa: BLE001
        print(f"[benchmark] warning: could not end the runs left RUNNING by dead processes: {error}", file=sys.stderr)


def _input_example(trainer: Trainer, rows: int = 4) -> dict[str, np.ndarray]:
    """The first test rows, as the model reads them (numpy arrays): the logged model's input example."""
    batch = trainer.data["test"].rows(0, rows)
    return {key: value.cpu().numpy() for key, value in batch.items() if key not in ("label", "user_id")}


def _keep_for_replay(log: RunLog, trainer: Trainer, model: torch.nn.Module,
                     example: dict[str, np.ndarray] | None, sample: bool = True) -> None:
    """The server did not answer by the end of the job: what the run would still upload goes beside its journal
    (the GIM sample of test examples only with `sample`)."""
    folder = log.artifacts_dir
    folder.mkdir(parents=True, exist_ok=True)
    if sample:
        log_attention_sample(trainer, model, write=lambda text, name: (folder / name).write_text(text))
    if example is not None:
        tracking.log_model(model, example, path=folder / tracking.MODEL_NAME)
    log.keep("FINISHED")
    tracking.drop_active_run()


@dataclasses.dataclass
class JobHooks:
    """How a tuning trial (benchmark/tune.py) runs the job: extra run tags, a callback after each epoch's logging
    (it may raise trainer.StopTraining to prune the trial), and no test evaluation (no test metric, no GIM sample
    of test examples, no model example: the test split is never read). Plain jobs have none."""

    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    on_epoch: EpochCallback | None = None
    evaluate_test: bool = True
    name_suffix: str = ""  # after the run's name, e.g. '-trial3'


def run_job(cfg: DictConfig, hooks: JobHooks | None = None) -> dict[str, Any]:
    """Run one job and return its final metrics.

    The config is validated before anything else. Once the MLflow run has started, every failure ends it as
    FAILED with the reason in the `error` and `error_type` tags; SIGINT/SIGTERM end it as KILLED and keep the
    checkpoint of the last finished epoch. Rerunning the same job resumes from that checkpoint in a new run
    tagged `resumed_from=<old run id>` (see benchmark/checkpoint.py)."""
    validate_config(cfg)
    if str(cfg.get("experiment_name")) == "tune" and hooks is None:
        raise ConfigError("experiment=tune holds the trials of a tuning study: run them with "
                          "`python -m benchmark.tune arm=<arm> ...` (README \"Tuning\")")
    if str(cfg.get("protocol_name")) == "tuned":  # the best trial of this model's study, applied (benchmark/tune.py)
        from benchmark.tune import tuned_config

        cfg = tuned_config(cfg)
    with stop_on_signals():
        uri = tracking.resolve_tracking_uri(cfg.tracking.uri, OmegaConf.select(cfg, "paths.tracking_db"))
        experiment_id = tracking.prepare_experiment(uri, str(cfg.tracking.experiment))
        device = select_device(str(cfg.trainer.device))
        checkpoint, resume_state = open_job_checkpoint(cfg)
        try:
            return _run(cfg, uri, experiment_id, device, checkpoint, resume_state, hooks or JobHooks())
        finally:
            if checkpoint is not None:
                checkpoint.release()


def _run(cfg: DictConfig, uri: str, experiment_id: str, device: torch.device, checkpoint: JobCheckpoint | None,
         resume_state: dict[str, Any] | None, hooks: JobHooks) -> dict[str, Any]:
    seed = int(cfg.seed)
    record = RunRecord.from_config(cfg)  # the run's identity: its tags, read back by the report
    tags = {
        **record.tags(), "git_commit": git_commit(), "device": device_name(device),
        "torch_version": torch_version(), "python_version": python_version(),
    }
    applied = OmegaConf.select(cfg, "tune.applied", default=None)
    if applied is not None:  # protocol=tuned
        tags.update({"tuned_study": str(cfg.tune.study), "tuned_trial": str(applied.trial),
                     "tuned_best_val_auc": str(applied.best_val_auc)})
    tags.update(hooks.tags)
    tags.update(tracking.owner_tags())  # a run left RUNNING by a dead process is told apart (tracking.is_orphaned)
    parent_run_id = cfg.tracking.parent_run_id or os.environ.get("BENCHMARK_PARENT_RUN_ID")  # benchmark/sweep.py
    if parent_run_id:
        tags["mlflow.parentRunId"] = str(parent_run_id)
    if resume_state is not None:
        tags["resumed_from"] = str(resume_state.get("run_id"))
        tags["resumed_at_epoch"] = str(resume_state["progress"]["epoch"])
    if checkpoint is not None:
        tags["checkpoint_dir"] = str(checkpoint.folder)
    # MIAN's encoder (Table 4) and open readings, where not the default: named in the run and the summary
    chosen = {key: tags[key] for key, default in MIAN_READING_DEFAULTS.items() if tags.get(key, default) != default}
    choice_suffix = "".join(f"-{value}" for value in chosen.values())
    choice_note = "".join(f", {key.replace('_', ' ')} {value}" for key, value in chosen.items())
    run_name = f"{cfg.model.name}-{cfg.dataset.name}-{tags['variant']}{choice_suffix}-seed{seed}{hooks.name_suffix}"

    with tracking.retrying(mlflow.start_run, experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        log: RunLog | None = None
        try:
            if checkpoint is not None:
                checkpoint.run_id = run.info.run_id
            _tidy_store(uri, experiment_id, run.info.run_id, resume_state)
            tracking.log_config(cfg)
            started = time.perf_counter()
            dataset = load_dataset(cfg.dataset, OmegaConf.select(cfg, "paths.cache_dir"),
                                   OmegaConf.select(cfg, "paths.raw_dir"))
            data_time = time.perf_counter() - started
            sizes = {split: len(arrays["label"]) for split, arrays in dataset.splits.items()}
            tracking.log_dataset(str(cfg.dataset.name), tracking.dataset_digest(dataset.stats, cfg.dataset), sizes,
                                 str(cfg.dataset.loader))
            n_train = len(dataset.splits["train"]["label"])
            if int(cfg.trainer.batch_size) > n_train:
                raise ConfigError(f"trainer.batch_size={cfg.trainer.batch_size} is larger than the {n_train} "
                                  f"training samples of dataset {cfg.dataset.name!r}")
            seed_everything(seed)
            model = build_model(cfg.model, cfg.ablation, dataset.schema, seed, device)
            tracking.log_params({f"data.{k}": v for k, v in dataset.stats.items()})
            tracking.log_params({"n_parameters": sum(p.numel() for p in model.parameters())})
            trainer = Trainer(model, dataset, cfg.trainer, seed, device)
            # from here to the end of training, logging to a server never makes training wait (tracking.RunLog)
            log = RunLog(uri, run.info.run_id, job_folder(cfg).parent / tracking.PENDING_DIR)
            if resume_state is not None:  # the new run holds the whole history, each epoch once
                for epoch, record in enumerate(resume_state["progress"]["history"], start=1):
                    log.log_metrics(record, step=epoch)

            def log_epoch(epoch: int, record: dict[str, float]) -> None:
                with deferred():
                    log.log_metrics(record, step=epoch)
                if hooks.on_epoch is not None:
                    hooks.on_epoch(epoch, record)

            result = trainer.fit(on_epoch_end=log_epoch, resume_from=resume_state,
                                 save_checkpoint=checkpoint.save if checkpoint is not None else None,
                                 evaluate_test=hooks.evaluate_test)
            tested = ({"test_auc": result.test["auc"], "test_logloss": result.test["logloss"],
                       "test_gauc": result.test["gauc"]} if hooks.evaluate_test else {})
            final = {
                **tested, "best_epoch": result.best_epoch,
                "best_val_auc": result.best_val.get("auc", float("nan")),
                "best_val_logloss": result.best_val.get("logloss", float("nan")),
                "epochs_run": len(result.epoch_times), "data_load_time_s": data_time,
                "train_base_entropy": trainer.base_entropy,
                **summarise_epoch_times(result.epoch_times),
            }
            log.log_metrics(final)
            # step_mode after training: a CUDA graph is captured in the first epoch and may fall back to eager there
            log.set_tags({"learned": str(learned(result.history[-1]["train_loss"], trainer.base_entropy)).lower(),
                          "step_mode": result.step_mode})
            example = _input_example(trainer) if cfg.tracking.log_model and hooks.evaluate_test else None
            if not log.close(float(cfg.tracking.flush_timeout_s)):  # the server still does not answer
                _keep_for_replay(log, trainer, model, example, sample=hooks.evaluate_test)
                if checkpoint is not None:  # training is over: the journal holds its results
                    checkpoint.discard()
                raise TrackingBacklog(log.backlog_message())
            if hooks.evaluate_test:
                log_attention_sample(trainer, model)
            if example is not None:
                tracking.log_model(model, example)
            tracking.end_run("FINISHED")  # explicitly, with retries (the `with` exit then has nothing to end)
        except KeyboardInterrupt as error:
            reason = str(error) if isinstance(error, Interrupted) else "interrupted (KeyboardInterrupt)"
            kept_epoch = 0  # the epoch of the checkpoint a rerun will resume from
            if checkpoint is not None and checkpoint.path.is_file():
                kept_epoch = checkpoint.saved_epoch or int(resume_state["progress"]["epoch"] if resume_state else 0)
            _end_run("KILLED", {"error": reason, "error_type": type(error).__name__,
                                "checkpoint_epoch": str(kept_epoch)}, log)
            where = (f"the checkpoint of epoch {kept_epoch} is kept in {checkpoint.folder}: rerun the same command "
                     "to resume (trainer.resume=false starts over)" if checkpoint is not None and kept_epoch
                     else "no epoch finished in this run, so it left no checkpoint")
            print(f"[benchmark] {reason}: run {run.info.run_id} marked KILLED; {where}", file=sys.stderr)
            raise
        except TrackingBacklog:
            raise
        except BaseException as error:
            _end_run("FAILED", {"error": f"{type(error).__name__}: {str(error)[:4000]}",
                                "error_type": type(error).__name__}, log)
            raise
    if checkpoint is not None:  # the run is FINISHED: its checkpoint is no longer needed
        checkpoint.discard()
    scores = (f"test AUC {final['test_auc']:.4f}  logloss {final['test_logloss']:.4f}  gAUC {final['test_gauc']:.4f}"
              if hooks.evaluate_test else f"best validation AUC {final['best_val_auc']:.4f} (test not read)")
    print(
        f"{tags['model']} on {tags['dataset']} ({tags['variant']}{choice_note}, seed {seed}, {tags['device']}): "
        f"{scores}  "
        f"best epoch {result.best_epoch}, {final['epoch_time_mean_s']:.2f} s/epoch | run {run.info.run_id} | "
        f"dashboard: {tracking.dashboard_hint(uri)}"
    )
    return final
