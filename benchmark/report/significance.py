"""The tests of Tables 2-4 (significance.csv): Welch's test of one row against another, with the paper's gap and
the seeds needed to detect it, Holm's correction over each table's family, and the file itself."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.report.provenance import Provenance
from benchmark.report.spec import Row, Section
from benchmark.report.stats import ALPHA, POWER, holm, mean_std, pooled_std, seeds_needed, welch
from benchmark.report.text import csv_text


TEST_COLUMNS = ["table", "dataset", "protocol", "metric", "a", "b", "n_a", "n_b", "mean_a", "mean_b", "diff", "t",
                "p", "p_holm", "paper_diff", "sd_pooled", "seeds_needed"]


def welch_test(section: Section, a: Row, b: Row, metric: str) -> dict[str, Any]:
    """Welch's test of a against b on `metric`, with the paper's difference (a - b) and the seeds per arm that
    would detect it at our pooled spread; `p_holm` is filled in over the table's family (`adjust_family`)."""
    t, p = welch(a.runs[metric], b.runs[metric])
    ma, _, na = mean_std(a.runs[metric])
    mb, _, nb = mean_std(b.runs[metric])
    key = metric.removeprefix("test_")
    paper_diff = a.paper.get(key, math.nan) - b.paper.get(key, math.nan)
    sd = pooled_std(a.runs[metric], b.runs[metric])
    return {"table": section.table, "dataset": section.dataset, "protocol": section.protocol, "metric": metric,
            "a": a.label, "b": b.label,
            "n_a": na, "n_b": nb, "mean_a": ma, "mean_b": mb, "diff": ma - mb, "t": t, "p": p, "p_holm": math.nan,
            "paper_diff": paper_diff, "sd_pooled": sd, "seeds_needed": seeds_needed(paper_diff, sd)}


def tests_frame(tests: list[dict[str, Any]]) -> pd.DataFrame:
    """significance.csv's rows: one per test."""
    return pd.DataFrame(tests, columns=TEST_COLUMNS)


def adjust_family(sections: list[Section]) -> None:
    """Holm's correction over the family of one table's tests (every dataset and protocol of it), in place."""
    tests = [test for section in sections for test in section.tests]
    for test, adjusted in zip(tests, holm([test["p"] for test in tests])):
        test["p_holm"] = adjusted


def test_of(section: Section, a: Row, b: Row, metric: str = "test_auc") -> dict[str, Any] | None:
    """The section's test of a against b (either way round) on `metric`, if it has one."""
    return next((t for t in section.tests if t["metric"] == metric and {t["a"], t["b"]} == {a.label, b.label}),
                None)


SIGNIFICANCE_NOTE = (
    "# Welch's t-test (scipy.stats.ttest_ind, equal_var=False) over seeds, two-sided\n"
    "# p_holm: p adjusted with Holm's step-down method over the family of the table's tests (every dataset and "
    "protocol of table2, of table3, of table4)\n"
    "# paper_diff: the paper's a - b on the metric; sd_pooled: the two arms' pooled sample std here; seeds_needed: "
    f"seeds per arm for a two-sided two-sample t-test at alpha {ALPHA:g} to detect paper_diff with power "
    f"{POWER:g} at sd_pooled (exact, noncentral t)\n")


def significance_csv(tests: pd.DataFrame, prov: Provenance) -> str:
    return csv_text(tests, prov.csv_comment() + SIGNIFICANCE_NOTE)
