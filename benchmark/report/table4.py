"""Table 4 (results/table4.md): MIAN's behaviour encoders on each dataset and protocol, each against Pre-LN (the
paper's Transformer); its figure: Figure 5, validation curves per encoder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.figures import by_dataset, curves
from benchmark.report.names import ENCODER_LABELS, ENCODERS, PAPER_ENCODER, ordered
from benchmark.report.provenance import Provenance
from benchmark.report.sections import build_sections, full_mian_of_table2, paper_numbers, section_template
from benchmark.report.significance import welch_test
from benchmark.report.spec import Context, Row, Section, TableSpec, literal


def table4_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table4") & (records["dataset"] == dataset)
                           & (records["model"] == "mian")], protocol)
    rows = [Row(e, ENCODER_LABELS.get(e, e), runs[runs["encoder"] == e],
                paper_numbers(paper, "table4", dataset, "mian", PAPER_ENCODER.get(e, e)), model="mian", encoder=e)
            for e in ordered(list(runs["encoder"]), ENCODERS)]
    if len(runs) and not len(rows[0].runs):
        rows[0].runs, rows[0].source = full_mian_of_table2(records, dataset, protocol), "table2 runs"
    section = Section("table4", dataset, rows, compare_to="pre_ln", protocol=protocol)
    section.tests = [welch_test(section, rows[0], r, m) for r in rows[1:] for m in ("test_auc", "test_logloss")
                     if len(r.runs) and len(rows[0].runs)]
    return section


def table4_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """Per dataset: Figure 5, validation curves per behaviour encoder."""
    return [curves(ctx, mine, out, "figure5_encoders", dataset, "encoder", ENCODERS, ENCODER_LABELS,
                   "MIAN's behaviour encoder", prov.short())
            for dataset, mine in by_dataset(ctx.records, "table4")]


TABLE = TableSpec("table4", "Table 4: MIAN's behaviour encoder, test AUC / Logloss / gAUC",
                  reads=lambda ctx: ctx.table("table4"), build=build_sections, template=section_template,
                  sections=lambda ctx, dataset, protocol: table4_section(ctx.records, ctx.paper, dataset, protocol),
                  figures=table4_figures)
