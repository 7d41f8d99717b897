"""results/verdict.md: the cell logic on hand-made numbers, and a verdict table from a tiny real sweep."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark import PROJECT_ROOT
from benchmark.report import main
from benchmark.verdict import holm, judge, verdict_frame, welch_interval
from conftest import TINY_SYNTHETIC


def test_welch_interval_matches_scipy_and_covers_the_difference() -> None:
    a, b = np.array([0.78, 0.781, 0.779, 0.7795]), np.array([0.76, 0.762, 0.759])
    c = welch_interval(a, b)
    assert c.effect == pytest.approx(a.mean() - b.mean())
    assert c.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert c.low < c.effect < c.high and c.low > 0
    assert math.isnan(welch_interval(a, b[:1]).p)


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)
    assert holm([0.5]) == [0.5]


@pytest.mark.parametrize(("effect", "p", "verdict"), [(0.01, 0.01, "holds"), (-0.01, 0.01, "contradicted"),
                                                      (0.01, 0.2, "inconclusive"), (math.nan, 0.01, "inconclusive"),
                                                      (0.01, math.nan, "inconclusive")])
def test_a_cell_holds_or_is_contradicted_only_when_significant(effect: float, p: float, verdict: str) -> None:
    assert judge(effect, p) == verdict


def _records(cells: dict[tuple[str, str, str], list[float]], protocol: str = "shared") -> pd.DataFrame:
    """Hand-made runs: {(model, variant, encoder): test AUCs, one per seed}."""
    rows = []
    for (model, variant, encoder), aucs in cells.items():
        for seed, auc in enumerate(aucs):
            rows.append({"table": "table2", "dataset": "movielens", "protocol": protocol, "model": model,
                         "variant": variant, "encoder": encoder, "reading": "", "seed": seed, "test_auc": auc,
                         "learned": "true", "start_time": f"{seed}", "run_id": f"{model}{variant}{encoder}{seed}"})
    return pd.DataFrame(rows)


def test_the_claims_on_hand_made_numbers() -> None:
    mian = [0.760, 0.761, 0.759]
    records = _records({
        ("mian", "full", "pre_ln"): mian,
        ("mian", "no_ibim", "pre_ln"): [0.7601, 0.7609, 0.7592],      # no cost at all: C2 cannot hold
        ("mian", "no_iuim_icim", "pre_ln"): [0.740, 0.741, 0.739],    # a clear cost: C3 holds
        ("mian", "full", "post_ln"): [0.750, 0.751, 0.749],
        ("mian", "full", "none"): [0.755, 0.756, 0.754],             # none beats post_ln: C5 contradicted
        ("xdeepfm", "default", ""): [0.775, 0.776, 0.774],          # the best baseline beats MIAN: C1 contradicted
        ("deepfm", "default", ""): [0.768, 0.769, 0.767],
        ("din", "default", ""): [0.746, 0.745, 0.747],
        ("dien", "default", ""): [0.756, 0.757, 0.755],
    })
    frame = verdict_frame(records).set_index("claim")
    assert frame.loc["C1", "verdict"] == "contradicted"
    assert frame.loc["C1", "effect"] == pytest.approx(np.mean(mian) - 0.775)
    assert frame.loc["C1", "runs"] == 6
    assert frame.loc["C2", "verdict"] == "contradicted"  # removing IUIM & ICIM costs far more than removing IBIM
    assert frame.loc["C3", "verdict"] == "holds"
    assert frame.loc["C4", "verdict"] == "not run" and frame.loc["C4", "runs"] == 3  # no w/o GIM runs
    assert frame.loc["C5", "verdict"] == "contradicted"
    assert frame.loc["C5", "effect"] == pytest.approx(0.750 - 0.755)  # the weakest of its two comparisons
    assert frame.loc["C6", "verdict"] == "contradicted"  # DIN is far below xDeepFM
    raw = sorted(frame["p"].dropna())
    assert frame["p_holm"].dropna().min() == pytest.approx(min(1.0, len(raw) * raw[0]))  # Holm over the table


def test_a_claim_that_holds_under_one_protocol_and_not_another() -> None:
    strong = _records({("mian", "full", "pre_ln"): [0.80, 0.801, 0.799], ("deepfm", "default", ""): [0.70, 0.702, 0.701]})
    noisy = _records({("mian", "full", "pre_ln"): [0.70, 0.76, 0.64], ("deepfm", "default", ""): [0.70, 0.66, 0.74]},
                     protocol="library")
    frame = verdict_frame(pd.concat([strong, noisy], ignore_index=True))
    c1 = frame[frame["claim"] == "C1"].set_index("protocol")["verdict"]
    assert c1.to_dict() == {"library": "inconclusive", "shared": "holds"}


def test_c6_stands_once_per_dataset_and_protocol_whatever_the_readings() -> None:
    records = _records({("mian", "full", "pre_ln"): [0.76, 0.761, 0.759], ("din", "default", ""): [0.70, 0.71, 0.72],
                        ("deepfm", "default", ""): [0.75, 0.751, 0.749]})
    din_reading = records[records["model"] == "mian"].assign(reading="ibim_score=din",
                                                             run_id=lambda f: f["run_id"] + "din")
    frame = verdict_frame(pd.concat([records, din_reading], ignore_index=True))
    c6 = frame[frame["claim"] == "C6"].set_index("reading")
    assert c6.loc["additive", "verdict"] == "not run"  # no DIEN runs: the claim needs both DIN and DIEN
    assert c6.loc["ibim_score=din", "verdict"] == "as in the additive column"
    assert math.isnan(c6.loc["ibim_score=din", "p_holm"])


@pytest.fixture(scope="module")
def sensitivity_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real sweep of experiment=sensitivity: two protocols x two models x two seeds, then the report."""
    root = tmp_path_factory.mktemp("verdict")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "experiment=sensitivity", "protocol=shared,shared_light",
         "arm=mian_additive,deepfm", "seed=0,1", *TINY_SYNTHETIC, f"tracking.uri={uri}",
         f"hydra.sweep.dir={root / 'sweep'}"],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["--tracking-uri", uri, "--out", str(root / "results")]) == 0
    return root / "results"


def test_verdict_table_from_a_real_sweep(sensitivity_sweep: Path) -> None:
    frame = pd.read_csv(sensitivity_sweep / "verdict.csv", comment="#", keep_default_na=False, na_values=[""])
    assert set(frame["protocol"]) == {"shared max_epochs=2", "shared l2=1e-05 max_epochs=2"}
    c1 = frame[frame["claim"] == "C1"]
    assert list(c1["runs"]) == [4, 4]  # MIAN's and DeepFM's two seeds in each column
    assert set(c1["verdict"]) <= {"holds", "contradicted", "inconclusive"}
    assert (frame[frame["claim"].isin(["C2", "C3", "C4", "C5", "C6"])]["verdict"] == "not run").all()
    text = (sensitivity_sweep / "verdict.md").read_text()
    assert "## The answer" in text and "- **C1** (MIAN beats the best baseline): holds in" in text
    assert "of the 2 columns where it was run" in text and "| not run |" in text
    assert "- **Produced by**: `python -m benchmark experiment=sensitivity" in text
