"""results/verdict.md: does MIAN reproduce? The paper's claims, tested where the paper made them.

claims.py declares the claims (C1-C6), the comparisons ("parts") each is made of, the paper's size of each part
(benchmark/paper_results/reported_results.csv) and reads the primary family (conf/verdict/primary.yaml);
judge.py tests one part on the runs that learned and judges it against the paper's size, with the validity gate;
cells.py builds the primary, robustness and mechanism cells and corrects each family apart; page.py writes the
page, the CSVs and the figure's rows; this module declares the table (TABLE: results/verdict.md, verdict.csv,
verdict_parts.csv and figures/verdict.png).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.provenance import Provenance
from benchmark.report.runs import write_atomic
from benchmark.report.spec import Built, Context, Part, TableSpec
from benchmark.report.verdict.cells import SOURCES, Cell, Verdict, one_per_seed, verdict_cells
from benchmark.report.verdict.claims import CLAIMS, PRIMARY_FILE, Primary, load_primary
from benchmark.report.verdict.judge import (
    CANNOT_DECIDE, CONSISTENT, CONTRADICTED, NOT_SIGNIFICANT, NOT_TESTED, REFUSED, SAME_RUNS, SMALLER,
    UNDERPOWERED, Gate, PartTest, judge_part, measure,
)
from benchmark.report.verdict.page import answer, cells_frame, forest_rows, parts_frame, verdict_page

__all__ = [
    "CANNOT_DECIDE", "CLAIMS", "CONSISTENT", "CONTRADICTED", "NOT_SIGNIFICANT", "NOT_TESTED", "PRIMARY_FILE",
    "REFUSED", "SAME_RUNS", "SMALLER", "SOURCES", "TABLE", "UNDERPOWERED", "Cell", "Gate", "PartTest", "Primary",
    "Verdict", "answer", "build_verdict", "cells_frame", "forest_rows", "judge_part", "load_primary", "measure",
    "one_per_seed", "parts_frame", "verdict_cells", "verdict_figures", "verdict_of", "verdict_page", "verdict_runs",
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


def build_verdict(ctx: Context, spec: TableSpec) -> Built | None:
    """The claims of benchmark/report/verdict/: one CSV row per cell (verdict.csv), one per part
    (verdict_parts.csv)."""
    if not len(spec.reads(ctx)):
        return None
    verdict = verdict_of(ctx)
    return Built([Part(cells_frame(verdict), extra={"verdict": verdict})], spec.reads(ctx),
                 files={"verdict_parts": parts_frame(verdict)})


def verdict_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """figures/verdict.png: every tested claim's effect and 95% interval beside the paper's."""
    from benchmark import figures as drawing

    rows = forest_rows(verdict_of(ctx))
    path = out / "figures" / "verdict.png"
    short = [f"{key}: {value}" for key, value in prov.lines() if key in ("Git commit", "Report")]
    write_atomic(path, drawing.forest(rows, "The paper's claims: our effect (95% interval) beside the paper's",
                                      short + ["Data, machines and commands: results/verdict.md"]))
    return [path]


TABLE = TableSpec("verdict", "Does MIAN reproduce? The paper's claims where it made them (test AUC)",
                  reads=verdict_runs, build=build_verdict, template=lambda part: verdict_page(part.extra["verdict"]),
                  head=lambda parts: answer(parts[0].extra["verdict"]), count_older=False, figures=verdict_figures)
