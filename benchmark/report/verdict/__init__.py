"""results/verdict.md: does MIAN reproduce? The paper's claims, tested where the paper made them.

claims.py declares the claims (C1-C6), the comparisons ("parts") each is made of, the paper's size of each part
(benchmark/paper_results/reported_results.csv) and reads the primary family (conf/verdict/primary.yaml);
judge.py tests one part on the runs that learned and judges it against the paper's size, with the validity gate;
cells.py builds the primary, robustness and mechanism cells and corrects each family apart; page.py writes the
page, the CSVs and the figure's rows. The report (benchmark/report/tables.py) declares the table.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from benchmark.report.verdict.cells import SOURCES, Cell, Verdict, one_per_seed, verdict_cells
from benchmark.report.verdict.claims import CLAIMS, PRIMARY_FILE, Primary, load_primary
from benchmark.report.verdict.judge import (
    CANNOT_DECIDE, CONSISTENT, CONTRADICTED, NOT_SIGNIFICANT, NOT_TESTED, REFUSED, SAME_RUNS, SMALLER,
    UNDERPOWERED, Gate, PartTest, judge_part, measure,
)
from benchmark.report.verdict.page import answer, cells_frame, forest_rows, parts_frame, verdict_page

if TYPE_CHECKING:
    from benchmark.report.spec import Context

__all__ = [
    "CANNOT_DECIDE", "CLAIMS", "CONSISTENT", "CONTRADICTED", "NOT_SIGNIFICANT", "NOT_TESTED", "PRIMARY_FILE",
    "REFUSED", "SAME_RUNS", "SMALLER", "SOURCES", "UNDERPOWERED", "Cell", "Gate", "PartTest", "Primary", "Verdict",
    "answer", "cells_frame", "forest_rows", "judge_part", "load_primary", "measure", "one_per_seed", "parts_frame",
    "verdict_cells", "verdict_of", "verdict_page", "verdict_runs",
]


def verdict_of(ctx: Context) -> Verdict:
    """The verdict of a report's runs, computed once per report (the page, its CSVs and its figure share it)."""
    if "verdict" not in ctx.derived:
        ctx.derived["verdict"] = verdict_cells(ctx.records, ctx.paper, load_primary())
    return ctx.derived["verdict"]


def verdict_runs(ctx: Context) -> pd.DataFrame:
    """The runs the verdict reads (its provenance): the claim experiments' runs on the declared real datasets, one
    per seed, and the effects experiment's."""
    records = ctx.records
    real = one_per_seed(records[records["dataset"].isin(verdict_of(ctx).primary.datasets)])
    return pd.concat([real, records[records["table"] == "effects"]])
