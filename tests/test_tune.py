"""The tuning track (benchmark/tune.py): studies on tiny synthetic data in temporary Optuna and MLflow stores."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT
from benchmark.config import ConfigError
from benchmark.run import protocol_of, run_job
from benchmark.tune import counts_toward_budget, load_space, main, plan_arm, study_name
from conftest import TINY_SYNTHETIC

TINY = [o for o in TINY_SYNTHETIC if not o.startswith("trainer.max_epochs")]


def stores(tmp_path: Path) -> tuple[str, str, list[str]]:
    """(Optuna storage URL, MLflow URI, the overrides that point a command at them)."""
    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    return storage, uri, [f"tune.storage={storage}", f"tracking.uri={uri}", f"trainer.checkpoint_dir={tmp_path / 'ck'}"]


def space_folder(tmp_path: Path, shared: str, model: str, text: str, name: str = "search") -> str:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "shared.yaml").write_text(shared)
    (folder / f"{model}.yaml").write_text(text)
    return f"tune.space={folder}"


def trials_of(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_a_study_runs_its_trials_as_child_runs_without_reading_test_continues_and_feeds_protocol_tuned(
        tmp_path: Path, compose_cfg, monkeypatch) -> None:
    from benchmark import run as run_module
    from benchmark.trainer import Trainer

    read: list[str] = []
    predict = Trainer.predict
    monkeypatch.setattr(Trainer, "predict", lambda self, split: (read.append(split), predict(self, split))[1])
    monkeypatch.setattr(run_module, "_input_example", lambda *a: pytest.fail("a trial built a test example"))
    storage, uri, where = stores(tmp_path)
    command = ["arm=din", *TINY, *where, "tune.trials=3", "tune.max_epochs=2"]
    assert main(command) == 0
    assert "test" not in read and "valid" in read  # the test split was never evaluated during the trials

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mian-tuning")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 3 == len(runs) - 1
    assert parent.data.tags["tune_trials"] == "3" and parent.data.tags["tune_max_epochs"] == "2"
    assert sorted(int(c.data.tags["tune_trial"]) for c in children) == [0, 1, 2]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["tune_state"] in ("COMPLETE", "PRUNED")
        assert not any(key.startswith("test_") for key in child.data.metrics)
        assert "best_val_auc" in child.data.metrics and child.data.params["trainer.max_epochs"] == "2"
        assert json.loads(child.data.tags["tune_param.trainer.lr"]) == pytest.approx(
            float(child.data.params["trainer.lr"]))
    name = "synthetic-din-default"
    assert [t.number for t in trials_of(storage, name)] == [0, 1, 2]

    # the same command again: the budget is used, nothing runs; a larger budget continues the same study
    assert main(command) == 0 and len(trials_of(storage, name)) == 3
    assert main([*command, "tune.trials=4"]) == 0
    trials = trials_of(storage, name)
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(counts_toward_budget(t) for t in trials)
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4  # under the same parent run

    # the report's tuning section reads the trials
    from benchmark.report import main as report

    assert report(["--tracking-uri", uri, "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "tuning.md").read_text()
    assert "| DIN | 4/4 (" in page and "Budget: 4 trials per arm of at most 2 epochs" in page
    assert (tmp_path / "report" / "figures" / "tuning_synthetic.png").is_file()

    # protocol=tuned: the best trial's values, the study's epoch budget, test read once at the end
    read.clear()
    cfg = compose_cfg("model=din", "protocol=tuned", *TINY, *where, "tracking.experiment=tuned", "seed=1")
    assert study_name(cfg) == name
    final = run_job(cfg)
    assert read.count("test") == 1 and "test_auc" in final
    (run,) = client.search_runs([client.get_experiment_by_name("tuned").experiment_id])
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert run.data.tags["protocol"] == "tuned" and run.data.tags["tuned_trial"] == str(best.number)
    assert float(run.data.params["trainer.lr"]) == pytest.approx(best.params["trainer.lr"])
    assert run.data.params["trainer.max_epochs"] == "2"


def test_protocol_tuned_without_its_study_names_it(tmp_path: Path, compose_cfg) -> None:
    _, _, where = stores(tmp_path)
    with pytest.raises(ConfigError, match="tune.study='synthetic-deepfm-default'.*no such study"):
        run_job(compose_cfg("model=deepfm", "protocol=tuned", *TINY, *where))
    assert protocol_of(compose_cfg("protocol=tuned")) == "tuned"


@pytest.mark.parametrize(("shared", "own", "match"), [
    ("{}", "{}", "search space of model=din is empty"),
    ("{}", "trainer.lr: {float: [0.1, 0.01]}", r"trainer\.lr: the range \[0.1, 0.01\] is empty or contradictory"),
    ("{}", "model.nope: {choice: [1, 2]}", r"model\.nope is not an option of this arm's config \(model=din\)"),
    ("{}", "model.dropout: {float: [0.0, 1.5]}", r"model\.dropout=1\.5 makes an invalid config"),
    ("{}", "trainer.max_epochs: {int: [1, 9]}", r"trainer\.max_epochs is the budget"),
    ("{}", "trainer.lr: {float: [0, 1], log: true}", r"trainer\.lr: a log range needs low > 0"),
    ("{}", "trainer.lr: {floats: [0.1, 1]}", r"trainer\.lr: unknown field 'floats'"),
    ("{}", "model.att_activation: {choice: []}", r"model\.att_activation: choice must be a non-empty list"),
    ("trainer.lr: {float: [0.001, 0.01]}", "trainer.l2: {choice: [0.1, 0.1]}", r"trainer\.l2: choice .* twice"),
])
def test_a_bad_search_space_is_refused_naming_the_key(tmp_path: Path, shared: str, own: str, match: str) -> None:
    _, _, where = stores(tmp_path)
    with pytest.raises(ConfigError, match=match):
        plan_arm("din", [*TINY, *where, space_folder(tmp_path, shared, "din", own)], "cmd")


def test_an_arm_defining_key_and_a_bad_storage_are_refused(tmp_path: Path) -> None:
    _, _, where = stores(tmp_path)
    with pytest.raises(ConfigError, match=r"model\.readout defines an arm"):
        plan_arm("mian", [*TINY, *where, space_folder(tmp_path, "{}", "mian", "model.readout: {choice: [concat, product]}")],
                 "cmd")
    with pytest.raises(ConfigError, match=r"tune\.storage='nosuchdb://x' cannot be opened"):
        plan_arm("din", [*TINY, *where, "tune.storage=nosuchdb://x"], "cmd")
    with pytest.raises(ConfigError, match="arm='nope' is neither"):
        plan_arm("nope", TINY, "cmd")


def test_the_default_search_spaces_fit_every_model(compose_cfg) -> None:
    from benchmark.names import MODELS
    from benchmark.tune import check_space, trial_base

    for model in MODELS:
        cfg = trial_base(compose_cfg(f"model={model}"))
        check_space(load_space(model), cfg)


def test_a_study_whose_space_changed_is_refused_before_any_trial(tmp_path: Path, capsys) -> None:
    storage, _, where = stores(tmp_path)
    first = space_folder(tmp_path, "{}", "din", "trainer.lr: {float: [0.001, 0.01], log: true}")
    assert main(["arm=din", *TINY, *where, first, "tune.trials=0"]) == 0  # the study starts, no trial runs
    changed = space_folder(tmp_path, "{}", "din", "trainer.lr: {float: [0.001, 0.1], log: true}", "changed")
    assert main(["arm=din", *TINY, *where, changed, "tune.trials=2"]) == 2
    assert "the search space of trainer.lr changed since the study started" in capsys.readouterr().err
    assert trials_of(storage, "synthetic-din-default") == []
    assert main(["arm=din", *TINY, *where, first, "tune.trials=2", "tune.max_epochs=3"]) == 2
    assert "tune.max_epochs was 10 when it started, now 3" in capsys.readouterr().err
    assert main(["arm=din", *TINY, *where, first, "tune.trials=2", "embedding_dim=4"]) == 2
    assert "embedding_dim was 8 when it started, now 4" in capsys.readouterr().err


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    storage, uri, where = stores(tmp_path)
    # 3 heads do not divide MIAN's behaviour width (16 here): those trials fail when the model is built
    space = space_folder(tmp_path, "{}", "mian", "model.num_heads: {choice: [3, 2]}")
    assert main(["arm=mian", *TINY, *where, space, "tune.trials=3", "tune.max_epochs=1", "tune.sampler_seed=1"]) == 0
    trials = trials_of(storage, "synthetic-mian-full")
    states = {t.number: (t.state.name, t.params["model.num_heads"]) for t in trials}
    assert len(trials) == 3 and all(counts_toward_budget(t) for t in trials)
    assert {s for s, heads in states.values() if heads == 3} == {"FAIL"}
    assert {s for s, heads in states.values() if heads == 2} <= {"COMPLETE"}
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and all("num_heads=3" in t.user_attrs["error"] for t in failed)
    client = MlflowClient(uri)
    for trial in failed:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED" and run.data.tags["tune_state"] == "FAIL"


@pytest.mark.slow
def test_two_processes_sharing_one_storage_share_the_budget(tmp_path: Path) -> None:
    storage, uri, where = stores(tmp_path)
    command = [sys.executable, "-m", "benchmark.tune", "arm=deepfm", *TINY, *where, "tune.trials=4",
               "tune.max_epochs=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = trials_of(storage, "synthetic-deepfm-default")
    counted = [t for t in trials if counts_toward_budget(t)]
    assert len(counted) == 4 and len({t.number for t in trials}) == len(trials)
    assert all(t.state.name == "COMPLETE" for t in counted)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mian-tuning")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(parents) == 1  # one parent run for the study, whichever process started it
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(int(r.data.tags["tune_trial"]) for r in children) == sorted(t.number for t in counted)
