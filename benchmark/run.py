"""One job: validate the config, load data, build the model, train, and record it all as one MLflow run."""
from __future__ import annotations

import random
import sys
import time
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from benchmark.config import validate_config
from benchmark.data import load_dataset
from benchmark.tracking import TrackingError, dashboard_hint, git_commit, log_config, prepare_experiment, resolve_tracking_uri
from benchmark.trainer import NonFiniteLossError, Trainer, device_name, select_device, summarise_epoch_times
from models import build_model


# Errors whose message is the whole story (bad config value, missing or malformed data, unreachable store,
# diverged training): the runner prints the message without a traceback. ConfigError and the data errors
# are ValueErrors; a missing file is an OSError.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, TrackingError, NonFiniteLossError)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def variant_of(cfg: DictConfig) -> str:
    """What distinguishes this configuration of the model in the tables: MIAN's ablation, else 'default'."""
    return str(cfg.ablation.name) if cfg.model.name == "mian" else "default"


def log_attention_sample(trainer: Trainer, model: torch.nn.Module, count: int = 14) -> None:
    """For MIAN, the GIM weights of `count` random test examples (the paper's Figure 6) as an artifact."""
    explain = getattr(model, "explain", None)
    if explain is None or getattr(model, "gim", None) is None:
        return
    test = trainer.data["test"]
    n = len(test["label"])
    generator = torch.Generator().manual_seed(trainer.seed)
    index = torch.randperm(n, generator=generator)[: min(count, n)].to(trainer.device)
    model.eval()
    with torch.no_grad():
        out = explain({k: v.index_select(0, index) for k, v in test.items()})
    frame = pd.DataFrame(out["gim"].float().cpu().numpy(), columns=model.gim_names)
    frame.insert(0, "test_index", index.cpu().numpy())
    frame["label"] = test["label"].index_select(0, index).cpu().numpy()
    frame["prob"] = torch.sigmoid(out["logits"].float()).cpu().numpy()
    mlflow.log_text(frame.to_csv(index=False), "gim_weights.csv")


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """Run one job and return its final metrics. Every failure after the MLflow run starts ends that run as
    FAILED (or KILLED on interrupt) with the reason in the `error` tag."""
    validate_config(cfg)
    uri = resolve_tracking_uri(cfg.tracking.uri)
    experiment_id = prepare_experiment(uri, str(cfg.tracking.experiment))
    device = select_device(str(cfg.trainer.device))
    seed = int(cfg.seed)

    started = time.perf_counter()
    dataset = load_dataset(cfg.dataset)
    data_time = time.perf_counter() - started
    seed_everything(seed)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, seed, device)

    tags = {
        "model": str(cfg.model.name), "dataset": str(cfg.dataset.name), "variant": variant_of(cfg),
        "seed": str(seed), "git_commit": git_commit(), "device": device_name(device),
        "torch_version": torch.__version__, "python_version": sys.version.split()[0],
    }
    if cfg.model.name == "mian":
        tags["encoder"] = str(cfg.model.encoder)
    if cfg.tracking.parent_run_id:
        tags["mlflow.parentRunId"] = str(cfg.tracking.parent_run_id)
    run_name = f"{cfg.model.name}-{cfg.dataset.name}-{tags['variant']}-seed{seed}"

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        try:
            log_config(cfg)
            mlflow.log_params({f"data.{k}": v for k, v in dataset.stats.items()})
            mlflow.log_params({"n_parameters": sum(p.numel() for p in model.parameters())})
            trainer = Trainer(model, dataset, cfg.trainer, seed, device)
            mlflow.set_tag("step_mode", trainer.step_mode)

            def log_epoch(epoch: int, record: dict[str, float]) -> None:
                mlflow.log_metrics(record, step=epoch)

            result = trainer.fit(on_epoch_end=log_epoch)
            final = {
                "test_auc": result.test["auc"], "test_logloss": result.test["logloss"],
                "test_gauc": result.test["gauc"], "best_epoch": result.best_epoch,
                "best_val_auc": result.best_val.get("auc", float("nan")),
                "best_val_logloss": result.best_val.get("logloss", float("nan")),
                "epochs_run": len(result.epoch_times), "data_load_time_s": data_time,
                **summarise_epoch_times(result.epoch_times),
            }
            mlflow.log_metrics(final)
            log_attention_sample(trainer, model)
        except KeyboardInterrupt:
            mlflow.set_tag("error", "interrupted")
            mlflow.end_run(status="KILLED")
            raise
        except BaseException as error:
            mlflow.set_tag("error", f"{type(error).__name__}: {str(error)[:4000]}")
            mlflow.end_run(status="FAILED")
            raise
    print(
        f"{tags['model']} on {tags['dataset']} ({tags['variant']}, seed {seed}, {tags['device']}): "
        f"test AUC {final['test_auc']:.4f}  logloss {final['test_logloss']:.4f}  gAUC {final['test_gauc']:.4f}  "
        f"best epoch {result.best_epoch}, {final['epoch_time_mean_s']:.2f} s/epoch | run {run.info.run_id} | "
        f"dashboard: {dashboard_hint(uri)}"
    )
    return final
