"""`python -m benchmark.report`: tables, figures and export from MLflow runs, and the same from the export."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from PIL import Image
from scipy import stats

from benchmark import PROJECT_ROOT
from benchmark.report import PAPER_DIR, main
from conftest import SHARED_DIR, TINY_SYNTHETIC

TABLE_FILES = ("table2", "table3", "table4", "efficiency")


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])


def body(path: Path) -> str:
    """A results file without the line that names the report command and its source (which differ between a
    report from MLflow and one from the export)."""
    return "\n".join(line for line in path.read_text().splitlines()
                     if not line.startswith(("# Report:", "- **Report**:")))


# ------------------------------------------------------------------------------- a tiny real sweep, reported
@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Four real jobs (LR and MIAN, seeds 0 and 1) of `experiment=table2` through the CLI into a temporary
    store, then the report from that store and again from its export."""
    root = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "experiment=table2", "model=lr,mian", "seed=0,1", *TINY_SYNTHETIC,
         f"tracking.uri={uri}", f"hydra.sweep.dir={root / 'sweep'}"],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["--tracking-uri", uri, "--out", str(root / "results")]) == 0
    assert main(["--from-export", str(root / "results" / "export"), "--out", str(root / "again")]) == 0
    return {"root": root, "uri": uri, "out": root / "results", "again": root / "again"}


def test_report_from_a_real_sweep_names_its_provenance(real_sweep) -> None:
    text = (real_sweep["out"] / "table2.md").read_text()
    for key in ("Data", "Machine", "Packages", "Git commit", "Produced by", "Report"):
        assert f"- **{key}**: " in text
    assert "Synthetic (benchmark/data/synthetic.py, data seed 0" in text
    assert "torch==" in text and "deepctr-torch==" in text and "mlflow==" in text and "hydra-core==" in text
    assert "`python -m benchmark experiment=table2 model=lr,mian seed=0,1 " in text  # the sweep's command as typed
    assert f"`python -m benchmark.report --tracking-uri {real_sweep['uri']}" in text
    csv_text = (real_sweep["out"] / "table2.csv").read_text()
    assert csv_text.startswith("# Data: Synthetic") and "# Machine: CPU" in csv_text


def test_cells_are_mean_std_and_count_of_the_logged_runs(real_sweep) -> None:
    client = MlflowClient(real_sweep["uri"])
    experiment = client.get_experiment_by_name("mian-table2")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("model")]
    table = read_table(real_sweep["out"] / "table2.csv").set_index(["dataset", "model"])
    for model in ("lr", "mian"):
        aucs = [r.data.metrics["test_auc"] for r in runs if r.data.tags["model"] == model]
        row = table.loc[("synthetic", model)]
        assert row["runs"] == 2 and row["seeds"] == "0 1"
        assert row["test_auc_mean"] == pytest.approx(np.mean(aucs), rel=1e-5)
        assert row["test_auc_std"] == pytest.approx(np.std(aucs, ddof=1), rel=1e-5, abs=1e-9)
    synthetic = table.loc["synthetic"]
    assert synthetic["best_test_auc"].sum() == 1 and synthetic["best_test_logloss"].sum() == 1
    assert (synthetic.loc[["wide_deep", "dien"], "status"] == "not run here").all()
    books = table.loc["books"]
    assert (books["status"] == "not run here").all()
    assert (books["command"] == "python -m benchmark experiment=table2 dataset=books").all()
    assert books.loc["mian", "paper_auc"] == pytest.approx(0.8209)
    markdown = (real_sweep["out"] / "table2.md").read_text()
    assert "## Amazon Books\n\n**Not run here**" in markdown
    assert "To run it: `python -m benchmark experiment=table2 dataset=books`" in markdown


def test_mian_is_tested_against_the_best_baseline(real_sweep) -> None:
    tests = read_table(real_sweep["out"] / "significance.csv")
    row = tests[(tests["table"] == "table2") & (tests["metric"] == "test_auc")].iloc[0]
    assert (row["a"], row["b"], row["n_a"], row["n_b"]) == ("MIAN", "LR", 2, 2)
    assert 0.0 <= row["p"] <= 1.0
    assert "MIAN vs LR, test AUC:" in (real_sweep["out"] / "table2.md").read_text()


def test_figures_are_pngs_with_their_provenance(real_sweep) -> None:
    figures = real_sweep["out"] / "figures"
    assert sorted(p.name for p in figures.iterdir()) == ["figure6_gim_synthetic.png", "table2_curves_synthetic.png"]
    for path in figures.iterdir():
        image = Image.open(path)
        assert image.format == "PNG" and image.size[0] > 600
        assert "Machine: CPU" in image.info["Description"]


def test_report_from_the_export_is_identical(real_sweep) -> None:
    out, again = real_sweep["out"], real_sweep["again"]
    for name in (*TABLE_FILES, "significance"):
        for suffix in (".md", ".csv"):
            path = out / f"{name}{suffix}"
            if path.exists():
                assert body(path) == body(again / path.name), path.name
    assert "from the export" in (again / "table2.md").read_text()
    assert not (again / "export").exists()  # an export is never rewritten from itself
    exported = pd.read_csv(out / "export" / "runs.csv", dtype=str, keep_default_na=False)
    assert len(exported) == 5  # four jobs and their sweep's parent
    history = pd.read_csv(out / "export" / "history.csv")
    assert set(history["key"]) >= {"val_auc", "val_logloss", "train_loss"}
    gim = pd.read_csv(out / "export" / "gim_weights.csv")
    assert gim["run_id"].nunique() == 2 and set(gim["name"]) >= {"e_i", "R_ibim"}


def test_no_temporary_files_are_left(real_sweep) -> None:
    leftovers = [p for p in Path(real_sweep["out"]).rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


# --------------------------------------------------------------------------- hand-made runs, known numbers
def log_run(client: MlflowClient, experiment_id: str, table: str, dataset: str, model: str, seed: int,
            metrics: dict[str, float], variant: str = "default", encoder: str | None = None,
            status: str = "FINISHED") -> str:
    tags = {"model": model, "dataset": dataset, "variant": variant, "seed": str(seed), "device": "CPU (test)",
            "git_commit": "abc123", "torch_version": "2.x", "step_mode": "eager"}
    if encoder:
        tags["encoder"] = encoder
    run = client.create_run(experiment_id, run_name=f"{model}-{seed}", tags=tags)
    now = int(time.time() * 1000)
    history = [Metric("val_auc", 0.5 + 0.1 * step, now, step) for step in (1, 2)]
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()] + history,
                     params=[Param("experiment_name", table)])
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


AUC = {"full": [0.80, 0.81, 0.82], "no_gim": [0.78, 0.785, 0.79], "dien": [0.79, 0.80, 0.795]}


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("handmade")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("handmade", artifact_location=(root / "artifacts").as_uri())
    # an earlier run of a cell and seed that is run again below: the later run counts
    log_run(client, exp, "table3", "electronics", "mian", 0, {"test_auc": 0.5}, variant="full")
    time.sleep(0.01)
    for seed in range(3):
        for variant in ("full", "no_gim"):
            log_run(client, exp, "table3", "electronics", "mian", seed,
                    {"test_auc": AUC[variant][seed], "test_logloss": 0.4 - AUC[variant][seed] / 10}, variant=variant)
        log_run(client, exp, "table2", "electronics", "dien", seed,
                {"test_auc": AUC["dien"][seed], "test_logloss": 0.33})
        for encoder, auc in (("pre_ln", 0.75), ("none", 0.74)):
            log_run(client, exp, "table4", "movielens", "mian", seed, {"test_auc": auc + seed / 1000},
                    variant="full", encoder=encoder)
        for model, seconds in (("din", 10.0), ("mian", 12.0)):
            log_run(client, exp, "efficiency", "movielens", model, seed,
                    {"epoch_time_mean_s": seconds + seed, "first_epoch_time_s": 20.0})
    log_run(client, exp, "table3", "electronics", "mian", 9, {"test_auc": 0.1}, variant="full", status="FAILED")
    out = root / "results"
    assert main(["--tracking-uri", uri, "--out", str(out)]) == 0
    return out


def test_table3_numbers_baseline_from_table2_and_tests(handmade: Path) -> None:
    table = read_table(handmade / "table3.csv")
    rows = table[table["dataset"] == "electronics"].set_index("row")
    full = rows.loc["MIAN"]
    assert full["runs"] == 3  # the FAILED run is left out
    assert full["test_auc_mean"] == pytest.approx(np.mean(AUC["full"]), rel=1e-5)
    assert full["test_auc_std"] == pytest.approx(np.std(AUC["full"], ddof=1), rel=1e-4)
    assert full["paper_auc"] == pytest.approx(0.8913) and bool(full["best_test_auc"])
    baseline = rows.loc["DIEN (baseline)"]
    assert baseline["source"] == "table2 runs" and baseline["paper_auc"] == pytest.approx(0.8836)
    p_no_gim = stats.ttest_ind(AUC["no_gim"], AUC["full"], equal_var=False).pvalue
    assert rows.loc["w/o GIM", "p_auc_vs_full"] == pytest.approx(p_no_gim, rel=1e-4)
    tests = read_table(handmade / "significance.csv")
    test = tests[(tests["table"] == "table3") & (tests["b"] == "DIEN (baseline)") & (tests["metric"] == "test_auc")]
    assert test["p"].iloc[0] == pytest.approx(stats.ttest_ind(AUC["full"], AUC["dien"], equal_var=False).pvalue,
                                              rel=1e-4)
    markdown = (handmade / "table3.md").read_text()
    # three seeds: the percentile bootstrap interval of the mean spans their range
    assert "| MIAN | 3 | **0.8100 ± 0.0100 [0.8000, 0.8200]** |" in markdown
    assert (full["test_auc_ci_low"], full["test_auc_ci_high"]) == (pytest.approx(0.80), pytest.approx(0.82))
    assert "The DIEN (baseline) row comes from the table2 runs" in markdown
    assert "; 1 older runs of the same cell and seed left out)" in markdown


def test_table3_tests_are_holm_corrected_with_the_seeds_needed(handmade: Path) -> None:
    from benchmark.report import holm, seeds_needed

    tests = read_table(handmade / "significance.csv")
    family = tests[tests["table"] == "table3"]
    assert len(family) == 3  # MIAN vs DIEN on AUC and Logloss, w/o GIM vs MIAN on AUC
    assert list(family["p_holm"]) == pytest.approx(holm(list(family["p"])), rel=1e-4)
    assert (family["p_holm"] >= family["p"]).all()
    auc = family[(family["b"] == "DIEN (baseline)") & (family["metric"] == "test_auc")].iloc[0]
    assert auc["paper_diff"] == pytest.approx(0.8913 - 0.8836)
    sd = np.sqrt((np.var(AUC["full"], ddof=1) + np.var(AUC["dien"], ddof=1)) / 2)
    assert auc["sd_pooled"] == pytest.approx(sd, rel=1e-4)
    assert auc["seeds_needed"] == seeds_needed(0.8913 - 0.8836, sd)
    table = read_table(handmade / "table3.csv")
    rows = table[table["dataset"] == "electronics"].set_index("row")
    no_gim = family[family["a"] == "w/o GIM"].iloc[0]
    assert rows.loc["w/o GIM", "p_holm_auc_vs_full"] == pytest.approx(no_gim["p_holm"], rel=1e-4)
    markdown = (handmade / "table3.md").read_text()
    assert f"(Holm {no_gim['p_holm']:.2g})" in markdown
    assert (f"MIAN vs DIEN (baseline) AUC: paper gap 0.0077, sd {sd:.4f} → {int(auc['seeds_needed'])}"
            in markdown)


def test_table4_and_efficiency_put_the_paper_beside(handmade: Path) -> None:
    table4 = read_table(handmade / "table4.csv").set_index(["dataset", "encoder"])
    assert table4.loc[("movielens", "none"), "paper_auc"] == pytest.approx(0.7612)  # the paper's no_transformer
    assert table4.loc[("movielens", "pre_ln"), "paper_dataset"] == "commercial"
    assert "MovieLens-1M stands in" in (handmade / "table4.md").read_text()
    efficiency = read_table(handmade / "efficiency.csv").set_index(["dataset", "model"])
    mian = efficiency.loc[("movielens", "mian")]
    assert mian["relative_to_din"] == pytest.approx(13.0 / 11.0, rel=1e-5)
    assert mian["paper_relative_to_din"] == pytest.approx(3700 / 3143, rel=1e-5)
    assert bool(efficiency.loc[("movielens", "din"), "best_epoch_time"])
    assert (handmade / "figures" / "figure5_encoders_movielens.png").is_file()


def test_an_empty_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("empty", artifact_location=(tmp_path / "a").as_uri())
    assert main(["--tracking-uri", uri, "--out", str(tmp_path / "results")]) == 2
    assert "no finished runs of an experiment config" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_paper_numbers_are_the_shared_copy_with_their_source() -> None:
    source = (PAPER_DIR / "SOURCE.md").read_text()
    assert "doi 10.1145/3437963.3441761" in source
    for name in ("reported_results.csv", "reported_efficiency.csv"):
        digest = hashlib.sha256((PAPER_DIR / name).read_bytes()).hexdigest()
        assert digest in source, name
        shared = SHARED_DIR / "paper" / name
        if shared.exists():
            assert shared.read_bytes() == (PAPER_DIR / name).read_bytes()
    results = pd.read_csv(io.StringIO((PAPER_DIR / "reported_results.csv").read_text()))
    assert len(results) == 24 + 14 + 3


# ------------------------------------------------------------------- the effects experiment, several stores
@pytest.fixture(scope="module")
def effects_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Eight real jobs of `experiment=effects` (user effect only; full MIAN, w/o IUIM, MIAN under the bahdanau
    reading and the DeepFM control; seeds 0 and 1)."""
    root = tmp_path_factory.mktemp("effects")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "experiment=effects", "dataset=synthetic", "dataset.seed=0",
         "~hydra.sweeper.params.mechanism", "effects=user",
         "arm=mian_additive,mian_no_iuim,mian_bahdanau,deepfm",
         "seed=0,1", *TINY_SYNTHETIC, f"tracking.uri={uri}", f"hydra.sweep.dir={root / 'sweep'}"],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "uri": uri}


def test_effects_report_from_two_stores_compares_each_ablation_with_full(effects_sweep, real_sweep) -> None:
    out = effects_sweep["root"] / "results"
    assert main(["--tracking-uri", effects_sweep["uri"], "--tracking-uri", real_sweep["uri"], "--out", str(out)]) == 0
    frame = read_table(out / "effects.csv").set_index("variant")
    assert list(frame["effect"]) == ["user", "user"] and list(frame.index) == ["full", "no_iuim"]
    client = MlflowClient(effects_sweep["uri"])
    experiment = client.get_experiment_by_name("mian-effects")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("model")]
    assert all(r.data.params["dataset.effects.user"] == "1.0" and r.data.params["dataset.effects.sequence"] == "0.0"
               for r in runs)
    literal = [r for r in runs if r.data.tags["model"] == "mian" and r.data.tags["ibim_score"] == "additive"]
    auc = {v: np.mean([r.data.metrics["test_auc"] for r in literal if r.data.tags["variant"] == v])
           for v in ("full", "no_iuim")}
    assert frame.loc["no_iuim", "auc_mean"] == pytest.approx(auc["no_iuim"], rel=1e-5)
    assert frame.loc["no_iuim", "diff_vs_full"] == pytest.approx(auc["no_iuim"] - auc["full"], rel=1e-4, abs=1e-6)
    assert frame.loc["no_iuim", "removes_its_module"] and not frame.loc["full", "removes_its_module"]
    assert frame.loc["full", "runs"] == 2 and 0.5 < frame.loc["full", "oracle_auc"] < 1.0
    assert "| user |" in (out / "effects.md").read_text()
    # The controls table: every arm once, the control marked, a reading compared with its module removed.
    controls = read_table(out / "effects_controls.csv").set_index("arm")
    assert sorted(controls.index) == ["deepfm", "mian_additive", "mian_bahdanau"]
    assert controls.loc["deepfm", "control"] and not controls.loc["mian_bahdanau", "control"]
    bahdanau = np.mean([r.data.metrics["test_auc"] for r in runs if r.data.tags.get("ibim_score") == "bahdanau"])
    assert controls.loc["mian_bahdanau", "auc_mean"] == pytest.approx(bahdanau, rel=1e-5)
    assert controls.loc["mian_bahdanau", "diff_vs_module_removed"] == pytest.approx(bahdanau - auc["no_iuim"],
                                                                                    rel=1e-4, abs=1e-6)
    gap = controls["oracle_auc"] - controls["auc_mean"]
    assert list(controls["learned_effect"]) == list(gap <= 0.05)
    top = (out / "effects.md").read_text().split("- **Data**")[0]
    assert ("no model learns the planted user effect" in top) == (not controls["learned_effect"].any())
    assert controls["not_learned_runs"].between(0, 2).all()
    # The other store's runs are reported beside them, untouched.
    table2 = read_table(out / "table2.csv").set_index(["dataset", "model"])
    assert table2.loc[("synthetic", "mian"), "runs"] == 2


def test_the_same_store_given_twice_is_refused(real_sweep, tmp_path: Path, capsys) -> None:
    assert main(["--tracking-uri", real_sweep["uri"], "--tracking-uri", real_sweep["uri"], "--out", str(tmp_path)]) == 2
    assert "more than one of the stores" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_report_that_would_drop_runs_refuses_and_keeps_the_results(effects_sweep, real_sweep, tmp_path: Path,
                                                                     capsys) -> None:
    """Results built from two stores, then a report from one of them: the other store's cells would become
    "not run"; without --force nothing is written."""
    out = tmp_path / "results"
    assert main(["--tracking-uri", effects_sweep["uri"], "--tracking-uri", real_sweep["uri"], "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["--tracking-uri", effects_sweep["uri"], "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "sources given do not have (table2/synthetic: 5)" in error and "--force" in error  # 4 jobs, 1 sweep
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["--tracking-uri", effects_sweep["uri"], "--out", str(out), "--force"]) == 0
    assert "**Not run here**" in (out / "table2.md").read_text()


def test_an_export_without_runs_is_a_clear_error(real_sweep, tmp_path: Path, capsys) -> None:
    export = tmp_path / "export"
    shutil.copytree(real_sweep["out"] / "export", export)
    header = (export / "runs.csv").read_text().splitlines()[0]
    (export / "runs.csv").write_text(header + "\n")
    assert main(["--from-export", str(export), "--out", str(tmp_path / "results")]) == 2
    assert "holds no runs of an experiment config" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_mistyped_store_path_is_an_error_and_creates_nothing(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "typo.db"
    assert main(["--tracking-uri", f"sqlite:///{missing}", "--out", str(tmp_path / "results")]) == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "results").exists()


def test_an_out_that_is_a_file_is_refused_and_kept(tmp_path: Path, capsys) -> None:
    (tmp_path / "results").write_text("mine")
    assert main(["--tracking-uri", "sqlite:////nonexistent/x.db", "--out", str(tmp_path / "results")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "results").read_text() == "mine"


def test_an_unknown_table3_baseline_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--table3-baseline", "nosuch", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'nosuch'" in capsys.readouterr().err


# ------------------------------------------------------------------ readings and controls, on hand-made numbers
def _records(rows: list[dict]) -> pd.DataFrame:
    """Records as job_records makes them, with only what the readings and controls tables read."""
    base = {"dataset": "movielens", "model": "mian", "variant": "full", "encoder": "pre_ln", "reading": "",
            "protocol": "shared", "effect": "", "learned": "true", "test_logloss": 0.6, "test_gauc": 0.7,
            "oracle_auc": np.nan, "data": "d", **{d: np.nan for d in ("diag_train_loss_ratio", "diag_mlp_alive_units",
                                                                          "diag_ibim_entropy", "diag_ibim_max_weight",
                                                                          "diag_gim_spread")}}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_readings_table_compares_each_reading_with_additive_no_ibim_and_the_best_baseline() -> None:
    from benchmark.report import readings_frame

    rows = []
    for seed, (additive, din, no_ibim, xdeepfm, deepfm) in enumerate([(0.76, 0.78, 0.75, 0.77, 0.765),
                                                                      (0.761, 0.781, 0.752, 0.772, 0.766),
                                                                      (0.759, 0.779, 0.751, 0.771, 0.764)]):
        rows += [{"table": "table4", "seed": seed, "test_auc": additive},
                 {"table": "readings", "seed": seed, "test_auc": din, "reading": "ibim_score=din",
                  "learned": "false" if seed == 0 else "true"},
                 {"table": "readings", "seed": seed, "test_auc": 0.5, "reading": "ibim_score=din",
                  "protocol": "shared l2=1e-05"},  # another protocol: not in this table
                 {"table": "table3", "seed": seed, "test_auc": no_ibim, "variant": "no_ibim"},
                 {"table": "table2", "seed": seed, "test_auc": xdeepfm, "model": "xdeepfm", "variant": "default"},
                 {"table": "table2", "seed": seed, "test_auc": deepfm, "model": "deepfm", "variant": "default"}]
    frame = readings_frame(_records(rows), "movielens").set_index("ibim_score")
    assert list(frame.index) == ["additive", "din"]
    assert frame.loc["additive", "source"] == "table4 runs" and frame.loc["din", "source"] == "readings runs"
    assert frame.loc["din", "auc_mean"] == pytest.approx(0.78)
    assert frame.loc["din", "diff_vs_additive"] == pytest.approx(0.02)
    assert frame.loc["din", "diff_vs_no_ibim"] == pytest.approx(0.78 - 0.751)
    assert frame.loc["din", "best_baseline"] == "xdeepfm"
    assert frame.loc["din", "diff_vs_best_baseline"] == pytest.approx(0.78 - 0.771)
    expected = stats.ttest_ind([0.78, 0.781, 0.779], [0.76, 0.761, 0.759], equal_var=False).pvalue
    assert frame.loc["din", "p_vs_additive"] == pytest.approx(expected)
    assert frame.loc["din", "not_learned_runs"] == 1 and frame.loc["additive", "not_learned_runs"] == 0


def test_controls_table_says_which_effect_is_learnable_and_flags_a_defect() -> None:
    from benchmark.report import controls_frame, controls_markdown

    rows = []
    for seed in range(2):
        common = {"table": "effects", "dataset": "synthetic", "seed": seed, "oracle_auc": 0.72}
        rows += [{**common, "effect": "sequence", "model": "deepfm", "variant": "default", "test_auc": 0.70},
                 {**common, "effect": "sequence", "test_auc": 0.49 + 0.01 * seed, "learned": "false"},
                 {**common, "effect": "sequence", "variant": "no_ibim", "test_auc": 0.49},
                 {**common, "effect": "sequence", "test_auc": 0.60, "reading": "ibim_score=din field_score=din"},
                 {**common, "effect": "user", "model": "xdeepfm", "variant": "default", "test_auc": 0.60},
                 {**common, "effect": "user", "test_auc": 0.62}]
    frame = controls_frame(_records(rows)).set_index(["effect", "arm"])
    assert frame.loc[("sequence", "deepfm"), "learned_effect"] and frame.loc[("sequence", "deepfm"), "control"]
    assert not frame.loc[("sequence", "mian_din"), "learned_effect"]
    assert frame.loc[("sequence", "mian_din"), "diff_vs_module_removed"] == pytest.approx(0.60 - 0.49)
    assert frame.loc[("sequence", "mian_additive"), "not_learned_runs"] == 2
    assert ("sequence", "mian_no_ibim") not in frame.index  # ablations are in the effects table, not here
    verdict, table = controls_markdown(frame.reset_index())
    assert "the planted sequence effect is learnable" in verdict and "DeepFM" in verdict
    assert "Defect: under the protocol `shared` no model learns the planted user effect" in verdict
    assert "| shared | sequence | MIAN additive (literal) | 0.7200 | 0.4950 ± 0.0071 (2) †2/2 |" in table


def test_tables_3_and_4_take_their_mian_row_from_table2_when_their_sweeps_did_not_run_it() -> None:
    from benchmark.report.table3 import table3_section
    from benchmark.report.table4 import table4_section

    paper = pd.DataFrame(columns=["table", "dataset", "model", "variant", "auc", "logloss"])
    rows = []
    for seed in range(3):
        rows += [{"table": "table2", "seed": seed, "test_auc": 0.80 + seed / 1000},
                 {"table": "table2", "seed": seed, "test_auc": 0.78, "model": "xdeepfm", "variant": "default"},
                 {"table": "table3", "seed": seed, "test_auc": 0.70, "variant": "no_ibim"},
                 {"table": "table4", "seed": seed, "test_auc": 0.79, "encoder": "post_ln"}]
    records = _records(rows)
    for section, key in ((table3_section(records, paper, "movielens", "xdeepfm"), "full"),
                         (table4_section(records, paper, "movielens"), "pre_ln")):
        mian = next(r for r in section.rows if r.key == key)
        assert mian.source == "table2 runs" and sorted(mian.runs["test_auc"]) == [0.80, 0.801, 0.802]
    # a table whose sweep ran its own full MIAN keeps it
    own = _records(rows + [{"table": "table3", "seed": s, "test_auc": 0.9} for s in range(3)])
    full = table3_section(own, paper, "movielens", "xdeepfm").rows[0]
    assert full.source == "" and list(full.runs["test_auc"]) == [0.9, 0.9, 0.9]
