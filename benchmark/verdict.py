"""results/verdict.md: which of the paper's claims hold, per dataset x protocol x MIAN reading, from MLflow only.

Rows are the paper's claims, each a comparison of mean test AUC over seeds between two groups of runs:
    C1 MIAN beats the best baseline            MIAN - best baseline
    C2 removing IBIM costs the most AUC        (full - w/o IBIM) - (full - w/o IUIM & ICIM) = IUIM&ICIM - IBIM
    C3 removing IUIM & ICIM costs AUC          full - w/o IUIM & ICIM
    C4 removing GIM costs AUC                  full - w/o GIM
    C5 Pre-LN > Post-LN > no Transformer       both Pre-LN - Post-LN and Post-LN - none
    C6 DIN and DIEN beat the non-sequential    both DIN and DIEN - the best of LR, W&D, DCN, DeepFM, xDeepFM
A claim made of several comparisons (C5, C6) holds only if each does: its effect and interval are those of the
weakest comparison and its p-value is the largest (an intersection-union test). Each comparison is Welch's
two-sided t-test with its Welch-Satterthwaite 95% interval of the difference; the p-values of the whole table
are corrected with Holm's method. A cell *holds* when its effect is positive and its Holm-adjusted p < ALPHA,
is *contradicted* when the effect is negative and p < ALPHA, and is *inconclusive* otherwise; a cell one of
whose sides has no runs is *not run*.

Runs: the finished runs of table2, table3, table4, readings and sensitivity (not efficiency, whose budget is
three epochs, nor effects, whose data has one planted effect). One run per model, variant, encoder, reading,
protocol and seed (the latest): a seed run twice in two tables counts once.
"""
from __future__ import annotations

import math

import pandas as pd

from benchmark.report.names import DATASET_LABELS, DATASETS, ordered
from benchmark.report.render import fmt_p, md_table
# One implementation of each test for every table: the report's statistics.
from benchmark.report.stats import ALPHA, Comparison, holm, welch_interval  # noqa: F401 - re-exported

SOURCES = ("table2", "table3", "table4", "readings", "sensitivity")
NON_SEQUENTIAL = ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm")
CLAIMS = {
    "C1": "MIAN beats the best baseline",
    "C2": "removing IBIM costs the most AUC (more than removing IUIM & ICIM)",
    "C3": "removing IUIM & ICIM costs AUC",
    "C4": "removing GIM costs AUC",
    "C5": "Pre-LN > Post-LN > no Transformer",
    "C6": "DIN and DIEN beat the non-sequential models",
}
RUN_KEY = ["dataset", "protocol", "model", "variant", "encoder", "reading", "seed"]


def judge(effect: float, p_adjusted: float) -> str:
    if math.isnan(effect) or math.isnan(p_adjusted) or p_adjusted >= ALPHA:
        return "inconclusive"
    return "holds" if effect > 0 else "contradicted"


def _weakest(parts: list[Comparison]) -> Comparison:
    """An intersection-union test: the comparison with the smallest effect, with the largest p of all."""
    if not parts or any(math.isnan(c.effect) for c in parts):
        return Comparison(math.nan, math.nan, math.nan, math.nan, sum(c.runs for c in parts), 0)
    weakest = min(parts, key=lambda c: c.effect)
    return Comparison(weakest.effect, weakest.low, weakest.high, max(c.p for c in parts),
                      sum(c.runs for c in parts), 0)


def one_per_seed(records: pd.DataFrame) -> pd.DataFrame:
    runs = records[records["table"].isin(SOURCES)]
    return runs.sort_values(["start_time", "run_id"], kind="stable").drop_duplicates(RUN_KEY, keep="last")


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> Comparison:
    result = welch_interval(a["test_auc"].dropna().to_numpy(float), b["test_auc"].dropna().to_numpy(float))
    result.not_learned = int((a["learned"] == "false").sum() + (b["learned"] == "false").sum())
    return result


def column_cells(runs: pd.DataFrame, reading: str) -> dict[str, Comparison]:
    """The six claims on the runs of one dataset and protocol, MIAN read as `reading`."""
    mian = runs[(runs["model"] == "mian") & (runs["reading"] == reading)]

    def variant(name: str, encoder: str = "pre_ln") -> pd.DataFrame:
        chosen = mian[mian["variant"] == name]
        return chosen[chosen["encoder"].isin([encoder, ""])] if name == "full" else chosen

    full = variant("full")
    baselines = runs[runs["model"] != "mian"]
    means = baselines.groupby("model")["test_auc"].mean()
    best = baselines[baselines["model"] == means.idxmax()] if len(means) else baselines
    cells = {"C1": _compare(full, best)}
    no_fields = variant("no_iuim_icim")
    # w/o IBIM has no behaviour attention, so no reading of it: its runs under this reading, else the literal ones
    no_ibim = variant("no_ibim")
    if no_ibim.empty:
        literal = runs[(runs["model"] == "mian") & (runs["reading"] == "")]
        no_ibim = literal[literal["variant"] == "no_ibim"]
    cells["C2"] = _compare(no_fields, no_ibim)
    cells["C3"] = _compare(full, no_fields)
    cells["C4"] = _compare(full, variant("no_gim"))
    post, none = mian[(mian["variant"] == "full") & (mian["encoder"] == "post_ln")], \
        mian[(mian["variant"] == "full") & (mian["encoder"] == "none")]
    cells["C5"] = _weakest([_compare(full, post), _compare(post, none)])
    cells["C5"].not_learned = int(sum((g["learned"] == "false").sum() for g in (full, post, none)))
    non_seq = baselines[baselines["model"].isin(NON_SEQUENTIAL)]
    seq_means = non_seq.groupby("model")["test_auc"].mean()
    best_non_seq = non_seq[non_seq["model"] == seq_means.idxmax()] if len(seq_means) else non_seq
    din, dien = baselines[baselines["model"] == "din"], baselines[baselines["model"] == "dien"]
    cells["C6"] = _weakest([_compare(din, best_non_seq), _compare(dien, best_non_seq)])
    cells["C6"].not_learned = int(sum((g["learned"] == "false").sum() for g in (din, dien, best_non_seq)))
    return cells


def verdict_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, dataset, protocol, reading) with effect, interval, raw and Holm-adjusted p, verdict."""
    runs = one_per_seed(records)
    rows = []
    columns = [(d, p) for d in ordered(list(runs["dataset"]), DATASETS)
               for p in ordered(list(runs[runs["dataset"] == d]["protocol"]), ("shared", "library"))]
    for dataset, protocol in columns:
        group = runs[(runs["dataset"] == dataset) & (runs["protocol"] == protocol)]
        if group.empty:
            continue
        mian = group[group["model"] == "mian"]
        for reading in sorted(set(mian["reading"])) or [""]:
            for claim, c in column_cells(group, reading).items():
                if claim == "C6" and reading:  # no MIAN in it: one cell per dataset and protocol, in the literal column
                    c = Comparison(math.nan, math.nan, math.nan, math.nan, 0, 0)
                rows.append({"claim": claim, "dataset": dataset, "protocol": protocol,
                             "reading": reading or "additive", "effect": c.effect, "ci_low": c.low,
                             "ci_high": c.high, "p": c.p, "runs": c.runs, "not_learned_runs": c.not_learned})
    frame = pd.DataFrame(rows, columns=["claim", "dataset", "protocol", "reading", "effect", "ci_low", "ci_high",
                                        "p", "runs", "not_learned_runs"])
    frame["p_holm"] = holm(list(frame["p"]))
    frame["verdict"] = [judge(e, p) if not math.isnan(e) else
                        ("as in the additive column" if claim == "C6" and reading != "additive" else "not run")
                        for e, p, claim, reading in zip(frame["effect"], frame["p_holm"], frame["claim"],
                                                        frame["reading"])]
    return frame


def verdict_markdown(frame: pd.DataFrame) -> str:
    """The overall answer in words, then the claims x (dataset, protocol, reading) table."""
    columns = list(dict.fromkeys(zip(frame["dataset"], frame["protocol"], frame["reading"])))
    header = ["claim"] + [f"{DATASET_LABELS.get(d, d)}, `{p}`, {r}" for d, p, r in columns]
    body, summary = [], []
    for claim, text in CLAIMS.items():
        mine = frame[frame["claim"] == claim].set_index(["dataset", "protocol", "reading"])
        cells = []
        for column in columns:
            r = mine.loc[column]
            if r["verdict"] in ("not run", "as in the additive column"):
                cells.append(r["verdict"])
                continue
            interval = "" if math.isnan(r["ci_low"]) else f" [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
            cell = f"**{r['verdict']}** {r['effect']:+.4f}{interval}, p {fmt_p(r['p_holm'])} ({int(r['runs'])} runs)"
            if r["not_learned_runs"]:
                cell += f", {int(r['not_learned_runs'])} not learned"
            cells.append(cell)
        body.append([f"{claim}: {text}"] + cells)
        counts = mine["verdict"].value_counts()
        tested = int(mine["verdict"].isin(["holds", "contradicted", "inconclusive"]).sum())
        summary.append(f"- **{claim}** ({text}): holds in {counts.get('holds', 0)}, contradicted in "
                       f"{counts.get('contradicted', 0)}, inconclusive in {counts.get('inconclusive', 0)} of the "
                       f"{tested} columns where it was run.")
    return "\n".join([
        "## The answer", "",
        *summary, "",
        "## Claims by dataset, protocol and MIAN's reading of Eq. 8", "",
        md_table(header, body), "",
        f"Cells: the verdict, the effect (difference in mean test AUC, the claim's direction positive), its 95% "
        f"Welch interval, the p-value after Holm's correction over every cell of this table, and the runs behind "
        f"it; holds / contradicted: the effect's sign at Holm-adjusted p < {ALPHA}; inconclusive otherwise. C5 "
        "and C6 hold only if each of their comparisons does (the weakest is shown). `not learned`: runs whose "
        "training loss ended at the base-rate entropy (benchmark/diagnostics.py). Columns: `protocol` is the "
        "run's protocol tag (conf/protocol/, with every knob set apart), the reading is MIAN's `ibim_score` "
        "(docs/mian.md); C6 has no MIAN in it, so it stands in the additive column only. Method: benchmark/verdict.py.", ""])
