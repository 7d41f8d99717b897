"""The MLflow dashboard end to end: `mlflow server` on loopback, a tiny sweep logged to it, and the runs page
rendered by headless Chromium (Debian's `chromium` package; the test skips without it)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmark import PROJECT_ROOT, tracking
from benchmark.run import run_job
from conftest import TINY_SYNTHETIC, mlflow_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package `chromium`) not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("dashboard")) as url:
        yield url


def render(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as text without tags."""
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,900",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", proc.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_a_sweep_shows_as_one_parent_with_its_children(server: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "experiment=table2", "model=lr", "seed=0,1", *TINY_SYNTHETIC,
         "trainer.max_epochs=1", f"tracking.uri={server}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("mian-table2")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sweep") == "true")
    children = [r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(children) == ["lr-synthetic-default-seed0", "lr-synthetic-default-seed1"]

    page = f"{server}/#/experiments/{experiment.experiment_id}/runs"
    nested = render(page, tmp_path / "profile1")
    assert parent.info.run_name in nested
    assert "3 matching runs" in nested  # the parent row holds its two children (collapsed)
    # sorted by a metric, MLflow lists every run flat: the children with their metrics, ready to compare
    ranked = render(f"{page}?orderByKey=metrics.%60test_auc%60&orderByAsc=false", tmp_path / "profile2")
    for name in children:
        assert name in ranked


@pytest.mark.slow
def test_the_documented_comparison_url_shows_every_run_with_its_test_auc(server: str, compose_cfg: Callable,
                                                                         tmp_path: Path) -> None:
    """README, Dashboard: `#/experiments/<id>/runs?viewStateShareKey=comparison` opens the runs table (not the
    GenAI view) with the test metrics as columns and the dataset of each run."""
    finals = {}
    for seed in (0, 1):
        cfg = compose_cfg(*TINY_SYNTHETIC, "model=lr", "trainer.max_epochs=1", f"seed={seed}",
                          f"tracking.uri={server}", "tracking.experiment=comparison",
                          f"trainer.checkpoint_dir={tmp_path / 'ckpt'}")
        finals[f"lr-synthetic-default-seed{seed}"] = run_job(cfg)["test_auc"]
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("comparison")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert len(client.search_runs([experiment.experiment_id], filter_string="dataset.name = 'synthetic'")) == 2

    page = render(tracking.comparison_url(server, experiment.experiment_id), tmp_path / "profile")
    assert "2 matching runs" in page and "Sort: test_auc" in page
    assert "test_auc" in page and "Dataset" in page and "synthetic (" in page
    best_first = sorted(finals, key=finals.get, reverse=True)
    assert page.index(best_first[0]) < page.index(best_first[1])
    for name, auc in finals.items():
        assert name in page
        assert str(auc)[:6] in page, (name, auc)  # the table shows the value in full
