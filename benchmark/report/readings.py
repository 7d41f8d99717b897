"""MIAN under the readings of its attention score (results/readings.md, experiment=readings): per dataset, each
(encoder, IBIM score) against the literal additive reading, against w/o IBIM (table3) and against table2's best
baseline, with IBIM's weight diagnostics. Readings: docs/mian.md."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.report.names import DATASET_LABELS, DIAGNOSTICS, ENCODER_LABELS, MODEL_LABELS, TABLE_DATASETS, ordered
from benchmark.report.spec import Built, Context, Part, TableSpec, data_text, literal
from benchmark.report.stats import mean_std, welch
from benchmark.report.text import NOT_LEARNED_NOTE, fmt, fmt_p, md_table, not_learned_suffix


READING_ROWS = (("pre_ln", "additive"), ("pre_ln", "bahdanau"), ("pre_ln", "din"), ("none", "additive"),
                ("none", "bahdanau"), ("none", "din"))


def readings_frame(records: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """MIAN under each reading of Eq. 8 on one dataset (experiment=readings), one row per (encoder, IBIM score):
    test AUC, the change against the literal `additive` reading with the same encoder, against w/o IBIM (from
    table3) and against the best baseline of table2, with Welch's p; the last epoch's diagnostics. A literal row
    the readings sweep did not run comes from the table4 runs of the same encoder (same protocol)."""
    on = records[records["dataset"] == dataset]
    readings = on[(on["table"] == "readings") & (on["model"] == "mian") & (on["variant"] == "full")
                  & (on["protocol"] == "shared")]
    table4 = literal(on[(on["table"] == "table4") & (on["model"] == "mian")])
    no_ibim = literal(on[(on["table"] == "table3") & (on["variant"] == "no_ibim")])
    table2 = literal(on[(on["table"] == "table2") & (on["model"] != "mian")])
    best_model = max(set(table2["model"]), key=lambda m: mean_std(table2[table2["model"] == m]["test_auc"])[0],
                     default="")
    best = table2[table2["model"] == best_model]

    def cell(encoder: str, score: str) -> tuple[pd.DataFrame, str]:
        tag = "" if score == "additive" else f"ibim_score={score}"
        mine = readings[(readings["encoder"] == encoder) & (readings["reading"] == tag)]
        if mine.empty and score == "additive":
            return table4[table4["encoder"] == encoder], "table4 runs"
        return mine, "readings runs"

    rows = []
    for encoder, score in READING_ROWS:
        runs, source = cell(encoder, score)
        if runs.empty:
            continue
        additive = cell(encoder, "additive")[0]["test_auc"]
        mean, std, n = mean_std(runs["test_auc"])
        row: dict[str, Any] = {"dataset": dataset, "encoder": encoder, "ibim_score": score, "source": source,
                               "runs": n, "auc_mean": mean, "auc_std": std,
                               "logloss_mean": mean_std(runs["test_logloss"])[0],
                               "gauc_mean": mean_std(runs["test_gauc"])[0],
                               "not_learned_runs": int((runs["learned"] == "false").sum())}
        for name, other in (("additive", additive), ("no_ibim", no_ibim["test_auc"]),
                            ("best_baseline", best["test_auc"])):
            row[f"diff_vs_{name}"] = mean - mean_std(other)[0] if len(other) else math.nan
            row[f"p_vs_{name}"] = welch(runs["test_auc"], other)[1]
        row["best_baseline"] = best_model
        row.update({f"{d}_mean": mean_std(runs[d])[0] for d in DIAGNOSTICS})
        rows.append(row)
    return pd.DataFrame(rows)


def readings_markdown(frame: pd.DataFrame, dataset: str, data: str) -> str:
    label = DATASET_LABELS.get(dataset, dataset)
    best = MODEL_LABELS.get(str(frame["best_baseline"].iloc[0]), "best baseline") if len(frame) else ""
    body = []
    diff = lambda r, key: ("–" if math.isnan(r[f"diff_vs_{key}"])  # noqa: E731
                           else f"{r[f'diff_vs_{key}']:+.4f}, p {fmt_p(r[f'p_vs_{key}'])}")
    diag = lambda r, key: "–" if math.isnan(r[f"{key}_mean"]) else f"{r[f'{key}_mean']:.2f}"  # noqa: E731
    for _, r in frame.iterrows():
        auc = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
        auc += not_learned_suffix(r["not_learned_runs"], r["runs"])
        body.append([ENCODER_LABELS.get(r["encoder"], r["encoder"]), r["ibim_score"], r["source"], auc,
                     f"{r['logloss_mean']:.4f}", "" if r["ibim_score"] == "additive" else diff(r, "additive"),
                     diff(r, "no_ibim"), diff(r, "best_baseline"), diag(r, "diag_ibim_entropy"),
                     diag(r, "diag_ibim_max_weight")])
    header = ["encoder", "IBIM score", "runs from", "test AUC", "Logloss", "vs additive", "vs w/o IBIM",
              f"vs {best}", "IBIM entropy", "IBIM max weight"]
    return "\n".join([
        f"## {label}", "", f"Data: {data}.", "", md_table(header, body), "",
        "Cells: test AUC mean ± std over seeds (runs), Logloss mean; each `vs` column: the difference in mean test "
        "AUC and Welch's p against the literal additive reading with the same encoder, against MIAN w/o IBIM "
        f"(table3 runs; it has no IBIM, so no reading) and against the best baseline of table2 ({best}). The IBIM "
        "columns are the last epoch's diagnostics (benchmark/diagnostics.py; runs older than them show –): weight "
        "entropy over log(history length), 1.0 uniform, and the largest weight. " + NOT_LEARNED_NOTE, ""])


def readings_template(part: Part) -> str:
    return readings_markdown(part.frame, part.dataset, part.data)


def build_readings(ctx: Context, spec: TableSpec) -> Built | None:
    """One section per dataset; its provenance: the readings runs and the runs of the other tables it compares
    with (table4's literal rows, table3's w/o IBIM, table2's best baseline)."""
    used = spec.reads(ctx)
    if not len(used):
        return None
    records = ctx.records
    parts, behind = [], []
    for dataset in ordered(list(used["dataset"]), TABLE_DATASETS):
        frame = readings_frame(records, dataset)
        if frame.empty:
            continue
        mine = records[(records["dataset"] == dataset) & (
            (records["table"] == "readings") | ((records["table"] == "table4") & (records["reading"] == ""))
            | ((records["table"] == "table3") & (records["variant"] == "no_ibim"))
            | ((records["table"] == "table2") & (records["model"] == frame["best_baseline"].iloc[0])))]
        behind.append(mine)
        parts.append(Part(frame, dataset, data_text(mine)))
    return Built(parts, pd.concat(behind)) if parts else None


TABLE = TableSpec("readings", "MIAN under the readings of its attention score (Eq. 8), test AUC",
                  reads=lambda ctx: ctx.table("readings"), build=build_readings, template=readings_template,
                  count_older=False)
