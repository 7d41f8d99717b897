"""Table 3 (results/table3.md): MIAN's ablations on each dataset and protocol, each against the full MIAN, and
the full MIAN against a baseline row (`--table3-baseline`, the paper's DIEN by default)."""
from __future__ import annotations

import pandas as pd

from benchmark.report.names import ABLATION_LABELS, ABLATIONS, AMAZON, MODEL_LABELS, ordered
from benchmark.report.sections import build_sections, full_mian_of_table2, paper_numbers, section_template
from benchmark.report.significance import welch_test
from benchmark.report.spec import Row, Section, TableSpec, literal, run_command


def table3_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, baseline: str,
                   protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table3") & (records["dataset"] == dataset)], protocol)
    mian = runs[runs["model"] == "mian"]
    rows = [Row(v, ABLATION_LABELS.get(v, v), mian[mian["variant"] == v],
                paper_numbers(paper, "table3", dataset, "mian", v), model="mian", variant=v)
            for v in ordered(list(mian["variant"]), ABLATIONS)]
    if len(mian) and not len(rows[0].runs):
        rows[0].runs, rows[0].source = full_mian_of_table2(records, dataset, protocol), "table2 runs"
    own = runs[runs["model"] == baseline]
    source = "table3 runs"
    if own.empty:
        own = literal(records[(records["table"] == "table2") & (records["dataset"] == dataset)
                              & (records["model"] == baseline)], protocol)
        source = "table2 runs"
    reported = (paper_numbers(paper, "table3", dataset, baseline) or paper_numbers(paper, "table2", dataset, baseline))
    base = Row(baseline, f"{MODEL_LABELS.get(baseline, baseline)} (baseline)", own, reported, model=baseline,
               source=source)
    rows.append(base)
    section = Section("table3", dataset, rows, compare_to="full", protocol=protocol)
    full = rows[0]
    if len(full.runs) and len(base.runs):
        section.tests = [welch_test(section, full, base, m) for m in ("test_auc", "test_logloss")]
    section.tests += [welch_test(section, r, full, "test_auc") for r in rows[1:-1] if len(r.runs) and len(full.runs)]
    section.notes.append(f"The {base.label} row comes from the {source} of this dataset "
                         f"(`--table3-baseline` picks the model; table3 sweeps only MIAN's ablations).")
    return section


def table3_command(dataset: str) -> str:
    """On the Amazon data Table 3's baseline row needs the table2 sweep too."""
    command = run_command("table3", dataset)
    return f"{run_command('table2', dataset)} && {command}" if dataset in AMAZON else command


TABLE = TableSpec("table3", "Table 3: MIAN ablations, test AUC / Logloss / gAUC",
                  reads=lambda ctx: pd.concat([ctx.table("table3"), ctx.table("table2", model=ctx.baseline)]),
                  build=build_sections, template=section_template,
                  sections=lambda ctx, dataset, protocol: table3_section(ctx.records, ctx.paper, dataset,
                                                                         ctx.baseline, protocol),
                  command=table3_command, provenance_from_rows=True)
