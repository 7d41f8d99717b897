"""The report's statistics (benchmark/report/stats.py) on hand-made numbers: bootstrap interval, Holm, seeds needed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report import bootstrap_interval, holm, pooled_std, seeds_needed


def test_bootstrap_interval_is_deterministic_and_contains_the_mean() -> None:
    values = np.array([0.751, 0.753, 0.749, 0.7525, 0.7505])
    low, high = bootstrap_interval(values)
    assert (low, high) == bootstrap_interval(values)  # fixed seed: the same values, the same interval
    assert (low, high) == bootstrap_interval(pd.Series(values[::-1]))  # and not the order of the seeds
    assert low < values.mean() < high
    assert values.min() <= low and high <= values.max()


def test_bootstrap_interval_narrows_with_more_seeds() -> None:
    values = np.random.default_rng(1).normal(0.75, 0.01, size=80)
    widths = [np.subtract(*bootstrap_interval(values[:n])[::-1]) for n in (5, 20, 80)]
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_interval_needs_two_values() -> None:
    assert all(math.isnan(v) for v in bootstrap_interval([0.7]))
    assert all(math.isnan(v) for v in bootstrap_interval(pd.Series([0.7, np.nan])))
    assert bootstrap_interval([0.7, 0.7, 0.7]) == (pytest.approx(0.7), pytest.approx(0.7))


def test_holm_on_hand_made_p_values() -> None:
    # sorted 0.01, 0.02, 0.03, 0.04 (m = 4): 4*0.01, 3*0.02, max(0.06, 2*0.03), max(0.06, 1*0.04)
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # a NaN is not in the family (m = 2) and stays NaN; adjusted values are capped at 1
    assert holm([0.6, math.nan, 0.2]) == pytest.approx([0.6, math.nan, 0.4], nan_ok=True)
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_seeds_needed_matches_the_t_test_tables() -> None:
    # Cohen's d = gap / sd of 0.5, 0.8 and 1.0 need 64, 26 and 17 per group (two-sided, alpha 0.05, power 0.8)
    assert seeds_needed(0.005, 0.01) == 64
    assert seeds_needed(0.008, 0.01) == 26
    assert seeds_needed(-0.01, 0.01) == 17  # the sign of the gap does not matter
    # at least the normal approximation n = 2 ((z_0.975 + z_0.8) sd / gap)^2 = 2 * 2.8016^2 = 15.7 for d = 1
    assert seeds_needed(0.01, 0.01) >= math.ceil(2 * (1.959964 + 0.841621) ** 2)


def test_seeds_needed_without_a_gap_or_a_spread() -> None:
    assert math.isnan(seeds_needed(math.nan, 0.01))
    assert math.isnan(seeds_needed(0.01, math.nan))
    assert math.isnan(seeds_needed(0.0, 0.01))
    assert seeds_needed(0.01, 0.0) == 2


def test_pooled_std_weights_each_side_by_its_degrees_of_freedom() -> None:
    a, b = pd.Series([1.0, 2.0, 3.0]), pd.Series([2.0, 4.0])  # variances 1 (2 dof) and 2 (1 dof)
    assert pooled_std(a, b) == pytest.approx(math.sqrt((2 * 1 + 1 * 2) / 3))
    assert math.isnan(pooled_std(a, pd.Series([1.0])))


def test_the_report_lists_running_runs_that_no_live_process_owns(tmp_path) -> None:
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from benchmark.report.runs import ghost_run_ids
    from benchmark.tracking import owner_tags

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ghost_tags = dict(owner_tags(), **{"owner.pid": dead.stdout.strip(), "owner.start": ""})
    ghost = client.create_run(experiment, tags=ghost_tags)  # RUNNING, its owner has exited
    alive = client.create_run(experiment, tags=owner_tags())  # RUNNING, owned by this process
    finished = client.create_run(experiment, tags=ghost_tags)
    client.set_terminated(finished.info.run_id, "FINISHED")
    assert ghost_run_ids(client, [experiment]) == [ghost.info.run_id]
    assert alive.info.run_id not in ghost_run_ids(client, [experiment])
