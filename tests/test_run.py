"""The job runner end to end: config composition and validation, one MLflow run per job."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
from hydra.errors import MissingConfigException
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT
from benchmark.config import ConfigError, validate_config
from benchmark.run import run_job
from conftest import TINY_SYNTHETIC

CONF = PROJECT_ROOT / "conf"
EPOCH_METRICS = {"train_loss", "val_auc", "val_logloss", "epoch_time_s"}
FINAL_METRICS = {"test_auc", "test_logloss", "test_gauc", "best_epoch", "epoch_time_mean_s", "first_epoch_time_s"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_config_combination_composes_and_validates(compose_cfg) -> None:
    for model in options("model"):
        for dataset in options("dataset"):
            ablations = options("ablation") if model == "mian" else ["full"]
            for ablation in ablations:
                cfg = compose_cfg(f"model={model}", f"dataset={dataset}", f"ablation={ablation}")
                validate_config(cfg)
                assert cfg.model.name == model and cfg.dataset.name == dataset
    for encoder in ("pre_ln", "post_ln", "none"):
        validate_config(compose_cfg(f"model.encoder={encoder}"))


def test_every_experiment_composes(compose_cfg) -> None:
    for experiment in options("experiment"):
        cfg = compose_cfg(f"experiment={experiment}")
        assert "model" in cfg and "dataset" in cfg


@pytest.mark.parametrize("effect", ["sequence", "user", "context"])
def test_effects_option_keeps_only_one_planted_effect(compose_cfg, effect: str) -> None:
    cfg = compose_cfg(f"effects={effect}")
    validate_config(cfg)
    assert {k: float(v) for k, v in cfg.dataset.effects.items()} == {
        name: 1.0 if name == effect else 0.0 for name in ("sequence", "user", "context")}
    assert cfg.dataset.num_users == compose_cfg().dataset.num_users  # the rest of the dataset is untouched


def test_effects_option_on_a_real_dataset_is_refused(compose_cfg) -> None:
    with pytest.raises(ConfigError, match="applies to dataset=synthetic only"):
        validate_config(compose_cfg("effects=user", "dataset=movielens"))


def test_unknown_names_list_what_exists(compose_cfg) -> None:
    with pytest.raises(MissingConfigException, match="mian"):
        compose_cfg("model=nope")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("model.dropout=-0.1", "model.dropout"),
        ("trainer.lr=0", "trainer.lr"),
        ("model.encoder=lstm", "model.encoder"),
        ("trainer.device=tpu", "trainer.device"),
        ("seed=-1", "seed"),
    ],
)
def test_invalid_values_name_the_key(compose_cfg, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(compose_cfg(override))


def test_ablation_on_a_baseline_is_refused(compose_cfg) -> None:
    if "lr" not in options("model"):
        pytest.skip("baseline configs not present")
    with pytest.raises(ConfigError, match="ablation=no_iuim applies to model=mian only"):
        validate_config(compose_cfg("model=lr", "ablation=no_iuim"))


def test_a_job_lands_exactly_one_finished_run_with_all_metrics(compose_cfg, tracking_uri: str, capsys) -> None:
    cfg = compose_cfg(*TINY_SYNTHETIC, f"tracking.uri={tracking_uri}", "tracking.experiment=e2e", "seed=3",
                      "model.encoder=post_ln")
    final = run_job(cfg)
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("mian on synthetic (full, encoder post_ln, seed 3, ")
    assert f"test AUC {final['test_auc']:.4f}" in summary and f"--backend-store-uri {tracking_uri}" in summary
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("e2e")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert FINAL_METRICS <= set(run.data.metrics)
    assert run.data.metrics["test_auc"] == pytest.approx(final["test_auc"])
    for metric in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, metric)
        assert [m.step for m in history] == [1, 2]
    tags = run.data.tags
    assert {"model": "mian", "dataset": "synthetic", "variant": "full", "seed": "3"}.items() <= tags.items()
    assert tags["git_commit"] and tags["device"] and tags["torch_version"]
    assert run.data.params["trainer.batch_size"] == "128"
    config_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml")
    assert "encoder: post_ln" in config_text and run.info.run_name == "mian-synthetic-full-post_ln-seed3"


def test_cli_rejects_a_bad_value_before_training(tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "trainer.batch_size=0", f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "trainer.batch_size=0 is invalid" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_git_commit_is_taken_from_the_environment_when_given(monkeypatch) -> None:
    from benchmark.tracking import COMMIT_ENV, git_commit

    monkeypatch.delenv(COMMIT_ENV, raising=False)
    from_git = git_commit()
    assert from_git != "" and from_git != "0123abc"
    monkeypatch.setenv(COMMIT_ENV, "0123abc")
    assert git_commit() == "0123abc"


def test_the_config_names_the_default_paths_of_benchmark_paths(compose_cfg) -> None:
    """conf/paths/default.yaml and benchmark/paths.py (the defaults where no config is composed) name the same
    folders."""
    from benchmark import paths

    cfg = compose_cfg().paths
    assert Path(cfg.tracking_db) == paths.default_db()
    assert Path(cfg.checkpoint_dir) == paths.default_checkpoint_dir()
    assert Path(cfg.raw_dir) == paths.default_raw_root()
    assert Path(cfg.cache_dir) == paths.default_cache_dir()


def test_dashboard_hint_names_the_mlflow_beside_this_python(tmp_path: Path, monkeypatch) -> None:
    """An environment that is not activated has its `mlflow` off PATH: the hint must name the one beside Python."""
    from benchmark import tracking

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "mlflow").touch()
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    hint = tracking.dashboard_hint("sqlite:////data/m.db")
    assert hint == f"{Path('.venv/bin/mlflow')} ui --backend-store-uri sqlite:////data/m.db"
    monkeypatch.setenv("PATH", str(bin_dir))  # activated: plain `mlflow` works
    (bin_dir / "mlflow").chmod(0o755)
    assert tracking.dashboard_hint("sqlite:////data/m.db").startswith("mlflow ui ")


def test_a_run_logs_its_dataset_and_with_log_model_a_model_that_the_readme_one_liner_loads(
        compose_cfg, tracking_uri: str, tmp_path: Path) -> None:
    final = run_job(compose_cfg(*TINY_SYNTHETIC, "model=mian", f"tracking.uri={tracking_uri}",
                                "tracking.experiment=model", "tracking.log_model=true",
                                f"trainer.checkpoint_dir={tmp_path}"))
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("model")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="dataset.name = 'synthetic'")
    (dataset_input,) = run.inputs.dataset_inputs
    sizes = json.loads(dataset_input.dataset.profile)
    assert sizes["train_samples"] == int(float(run.data.params["data.train_samples"]))
    assert sizes["valid_samples"] > 0 and sizes["test_samples"] > 0
    assert len(dataset_input.dataset.digest) == 16
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"

    readme = (PROJECT_ROOT / "docs" / "tracking.md").read_text()  # the README's reference page on MLflow
    (one_liner,) = re.findall(r"`(m = mlflow\.pytorch\.load_model\(.*?)`\.?\n", readme)
    mlflow.set_tracking_uri(tracking_uri)
    scope = {"mlflow": mlflow, "torch": torch, "run_id": run.info.run_id}
    exec(one_liner, scope)  # noqa: S102 - the documented line, as a user would run it
    probs = scope["probs"]
    assert probs.shape == (len(scope["batch"]["item"]),) and bool(((probs > 0) & (probs < 1)).all())
    assert final["test_auc"] == pytest.approx(run.data.metrics["test_auc"])


def test_log_model_is_off_by_default(compose_cfg) -> None:
    assert compose_cfg().tracking.log_model is False
    with pytest.raises(ConfigError, match="tracking.log_model"):
        validate_config(compose_cfg("tracking.log_model=maybe"))
    with pytest.raises(ConfigError, match="tracking.flush_timeout_s"):
        validate_config(compose_cfg("tracking.flush_timeout_s=-1"))
