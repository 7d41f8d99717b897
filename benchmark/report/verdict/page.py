"""results/verdict.md, verdict.csv, verdict_parts.csv and figures/verdict.png from the judged cells."""
from __future__ import annotations

import math

import pandas as pd

from benchmark.report.names import DATASET_LABELS
from benchmark.report.stats import ALPHA, POWER
from benchmark.report.text import fmt_p, md_table
from benchmark.report.verdict.cells import Cell, Verdict
from benchmark.report.verdict.claims import CLAIMS
from benchmark.report.verdict.judge import (
    CANNOT_DECIDE, CONSISTENT, CONTRADICTED, IBIM_UNIFORM, LN_COLLAPSED, NOT_SIGNIFICANT, NOT_TESTED, REFUSED,
    SAME_RUNS, SMALLER, UNDERPOWERED, PartTest,
)

PAPER_LABELS = {"commercial": "Commercial", "electronics": "Electronics", "books": "Books"}
READING_LABELS = {"ibim_score": "IBIM score", "field_score": "field score", "e_b_pool": "e_b pooling",
                  "positional": "positions", "readout": "readout"}
OUTCOME_ORDER = (CONSISTENT, CONTRADICTED, SMALLER, UNDERPOWERED, NOT_SIGNIFICANT, REFUSED, SAME_RUNS,
                 CANNOT_DECIDE, NOT_TESTED)


def reading_label(reading: str) -> str:
    """'' -> 'literal'; 'ibim_score=din field_score=din' -> 'IBIM score din, field score din'."""
    if not reading:
        return "literal"
    return ", ".join(f"{READING_LABELS.get(k, k)} {v}" for k, v in (p.split("=", 1) for p in reading.split()))


def protocol_label(protocol: str) -> str:
    """'shared l2=1e-05' -> 'shared, l2 1e-05'."""
    return ", ".join(part.replace("=", " ") for part in protocol.split())


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def signed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.4f}"


def ours(part: PartTest | None) -> str:
    if part is None or math.isnan(part.effect):
        return "–"
    interval = "" if math.isnan(part.low) else f" [{part.low:+.4f}, {part.high:+.4f}]"
    return signed(part.effect) + interval


def paper_text(cell: Cell) -> str:
    part = cell.shown
    if part is None or math.isnan(part.paper):
        return "not reported" if cell.table != "mechanism" else "–"
    text = f"{signed(part.paper)} ({PAPER_LABELS.get(cell.paper_dataset, cell.paper_dataset)})"
    if cell.also_shown and not math.isnan(part.paper_also):
        text += f"; {PAPER_LABELS.get(cell.also_shown, cell.also_shown)} {signed(part.paper_also)}"
    return text


def outcome_text(cell: Cell) -> str:
    part, text = cell.shown, f"**{cell.outcome}**"
    if part is None:
        return text + (f" ({cell.note})" if cell.note else "")
    if cell.outcome in (CONSISTENT, CONTRADICTED, SMALLER, UNDERPOWERED, NOT_SIGNIFICANT) and part.p == part.p:
        text += f", Holm p {fmt_p(part.p_adjusted)}"
    if cell.outcome == UNDERPOWERED:
        text += (f"; {int(part.seeds_needed)} seeds per arm would decide it" if part.seeds_needed == part.seeds_needed
                 else "; too few runs for a test")
    if cell.outcome == SAME_RUNS:
        text += f" as {part.duplicate_of}"
    if cell.note:
        text += f" ({cell.note})"
    return text


def runs_text(cell: Cell) -> str:
    return str(len(cell.runs) - cell.gate.not_learned)


def claim_text(cell: Cell) -> str:
    shown = f"; shown: {cell.shown.label}" if cell.shown is not None and cell.shown.tested else ""
    return f"{cell.claim}: {cell.check}{shown}"


# --------------------------------------------------------------------------------------------- the answer
def answer(verdict: Verdict) -> str:
    """The five lines on top of the page."""
    primary, robust, mechanism = verdict.table("primary"), verdict.table("robustness"), verdict.table("mechanism")
    tested = [c for c in primary if c.outcome != NOT_TESTED]
    counts = pd.Series([c.outcome for c in tested], dtype=object).value_counts()
    tally = ", ".join(f"{counts[o]} {o}" for o in OUTCOME_ORDER if o in counts) or "none"
    idle = sorted({c.dataset for c in primary} - {c.dataset for c in tested}, key=list(verdict.primary.datasets).index)
    lines = [f"**Does MIAN reproduce?** Of the {len(primary)} pre-registered primary cells (claim x real dataset, "
             f"conf/verdict/primary.yaml), {len(tested)} have runs: {tally}; "
             + (f"{len(primary) - len(tested)} are not tested (no runs that pass the validity gate on "
                f"{', '.join(dataset_label(d) for d in idle)})." if idle else "every one is tested.")]
    found = [f"{c.claim} on {dataset_label(c.dataset)} {c.outcome} ({signed(c.shown.effect)} against the paper's "
             f"{signed(c.shown.paper)}{', ' + c.shown.label if len(c.parts) > 1 else ''})"
             for c in tested if c.shown is not None]
    lines.append("**Primary cells tested:** " + ("; ".join(found) if found else "none") + ".")
    waiting = [claim for claim in CLAIMS if all(c.outcome == NOT_TESTED for c in primary if c.claim == claim)]
    lines.append("**Not yet tested anywhere:** " + (", ".join(f"{c} ({CLAIMS[c]})" for c in waiting)
                                                     or "no claim") +
                 ": the paper makes C2-C4 and C6 on its Amazon data only, so they wait for next-item data "
                 "(MovieLens-1M next-item, Amazon Electronics, Amazon Books).")
    seen = [c for c in robust if c.outcome not in (NOT_TESTED, SAME_RUNS)]
    by_primary = {(c.claim, c.dataset): c.outcome for c in primary}
    differ = [c for c in seen if c.outcome != by_primary.get((c.claim, c.dataset))]
    lines.append(f"**Robustness:** {len(seen)} cell(s) in {len({c.column for c in seen})} other protocol/reading "
                 f"column(s) tested, {len(differ)} with another outcome than the primary cell"
                 + (": " + "; ".join(f"{c.claim} on {dataset_label(c.dataset)}, {reading_label(c.reading)}, "
                                     f"{protocol_label(c.protocol)}: {c.outcome}" for c in differ) if differ else "")
                 + ". They never change a primary outcome.")
    lines.append("**Mechanisms:** " + mechanism_line(verdict.cells, mechanism))
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1)) + "\n\n"


def mechanism_line(cells: list[Cell], mechanism: list[Cell]) -> str:
    recorded = [c for c in cells if c.gate.mian and c.gate.ibim_entropy == c.gate.ibim_entropy]
    real = [c for c in cells if c.gate.mian and c.table != "mechanism"]
    inactive = [c for c in recorded if c.gate.ibim_inactive]
    collapsed = [c for c in recorded if c.gate.ln_collapsed]
    counts = pd.Series([c.outcome for c in mechanism], dtype=object).value_counts()
    text = (f"IBIM's attention is uniform (weight entropy >= {IBIM_UNIFORM:g} of its maximum) in {len(inactive)} of "
            f"the {len(recorded)} cells whose MIAN runs recorded it, and the Transformer's LayerNorm gains are "
            f"collapsed (RMS < {LN_COLLAPSED:g}) in {len(collapsed)}; "
            f"{sum(c.gate.ibim_entropy != c.gate.ibim_entropy for c in real)} of the {len(real)} real-data cells "
            "with MIAN runs recorded no diagnostics (runs older than them). ")
    if mechanism:
        text += ("Effects experiment (synthetic, one planted effect at a time): "
                 + ", ".join(f"{counts[o]} {o}" for o in OUTCOME_ORDER if o in counts)
                 + f" of {len(mechanism)} checks.")
    else:
        text += "No effects-experiment runs."
    return text


# ---------------------------------------------------------------------------------------------- the tables
def primary_table(cells: list[Cell], verdict: Verdict) -> str:
    body = [[claim_text(c), f"{dataset_label(c.dataset)}", paper_text(c), ours(c.shown),
             signed(c.shown.detectable).lstrip("+") if c.shown is not None else "–", outcome_text(c), runs_text(c),
             c.gate.text() if len(c.runs) else "–"] for c in cells]
    header = ["claim", "dataset", "the paper's effect", "ours [95% interval]", "smallest detectable", "outcome",
              "runs", "validity gate"]
    p = verdict.primary
    return "\n".join([
        "## Primary cells", "",
        f"Declared in `conf/verdict/primary.yaml` before their runs: protocol `{p.protocol}`, MIAN's reading "
        f"{reading_label(p.reading)}; Holm's correction over these cells' {verdict.family_size('primary')} tests "
        "alone. The paper's effect is that of the paper dataset each dataset stands for: "
        + "; ".join(f"{dataset_label(d)} -> {PAPER_LABELS.get(s, s)}" for d, s in p.paper_dataset.items()) + ".",
        "", md_table(header, body), "", parts_table(cells), ""])


def parts_table(cells: list[Cell]) -> str:
    body = [[c.claim, dataset_label(c.dataset), reading_label(c.reading), part.label, signed(part.paper), ours(part),
             fmt_p(part.p_adjusted), f"**{part.outcome}**", f"{part.n_a} vs {part.n_b}"]
            for c in cells if len(c.parts) > 1 and c.outcome != NOT_TESTED for part in c.parts]
    if not body:
        return ""
    header = ["claim", "dataset", "reading", "part", "the paper's", "ours [95% interval]", "Holm p", "outcome",
              "runs"]
    return "\n".join(["### Each part of the composite claims", "",
                      "A composite claim is contradicted when any part is, consistent only when every part is.",
                      "", md_table(header, body)])


def robustness_table(cells: list[Cell], verdict: Verdict) -> str:
    shown = [c for c in cells if c.outcome != NOT_TESTED]
    if not shown:
        return "## Robustness\n\nNo other protocol or reading of a real dataset has runs.\n"
    body = [[dataset_label(c.dataset), protocol_label(c.protocol), reading_label(c.reading), claim_text(c),
             paper_text(c), ours(c.shown), signed(c.shown.detectable).lstrip("+") if c.shown is not None else "–",
             outcome_text(c), runs_text(c), c.gate.text()] for c in shown]
    header = ["dataset", "protocol", "reading", "claim", "the paper's effect", "ours [95% interval]",
              "smallest detectable", "outcome", "runs", "validity gate"]
    families = dict.fromkeys(c.family for c in shown)
    sizes = "; ".join(f"{f}: {verdict.family_size(f)}" for f in families)
    return "\n".join([
        "## Robustness", "",
        "Every other protocol and reading of a real dataset (readings of Eq. 8, MIAN's `readout=product`, other "
        f"protocols). Each column is its own Holm family (tests per family: {sizes}); a part whose runs are those of "
        "a test already counted is marked `same runs` and counted once. "
        f"{len(cells) - len(shown)} cell(s) of these columns have no runs (e.g. no ablation under that reading) "
        "and are not listed.", "", md_table(header, body), ""])


def mechanism_table(cells: list[Cell], verdict: Verdict) -> str:
    if not cells:
        return "## Mechanisms\n\nNo runs of `experiment=effects`.\n"
    body = [[protocol_label(c.protocol), c.check, reading_label(c.reading) if c.claim != "C6" else "–",
             c.shown.label if c.shown else "–",
             ours(c.shown), outcome_text(c), runs_text(c), c.gate.text()] for c in cells]
    header = ["protocol", "planted effect: check", "MIAN reading", "shown", "ours [95% interval]", "outcome",
              "runs", "validity gate"]
    return "\n".join([
        "## Mechanisms (synthetic data, `experiment=effects`)", "",
        "Synthetic data tests no claim of the paper; it checks whether a module does what it is for, one planted "
        "effect at a time. A check can be decided only where a positive control (a model known to express the "
        "effect) learned it; otherwise it reads `the benchmark cannot decide`. Holm over these "
        f"{verdict.family_size('mechanism')} tests. Its generator plants inner products, exactly what an FM term "
        "computes, so the FM models' lead there reflects the generator's functional form.",
        "", md_table(header, body), ""])


def provenance_lines(cells: list[Cell]) -> str:
    lines = []
    for column in dict.fromkeys(c.column for c in cells if len(c.runs)):
        runs = pd.concat([c.runs for c in cells if c.column == column and len(c.runs)])
        commits = sorted(set(runs["git_commit"]) - {""})
        shown = ", ".join(f"`{c[:7]}`" + (" (dirty tree)" if c.endswith("-dirty") else "") for c in commits) or "–"
        dataset, protocol, reading = column
        lines.append(f"- {dataset_label(dataset)}, {protocol_label(protocol)}, {reading_label(reading)}: "
                     f"{len(runs)} runs, commit(s) {shown}")
    return "\n".join(["## Provenance per column", "",
                      "Commits of the runs behind each column; `(dirty tree)`: run from a working tree with "
                      "uncommitted changes, so the commit alone does not reproduce it.", "", *lines, ""])


METHOD = (
    "## Method", "",
    "Each part is a - b in mean test AUC over seeds, the claim's direction positive, by Welch's two-sided t-test "
    "and its 95% Welch-Satterthwaite interval, on the runs that learned. Outcomes: **consistent**: in the paper's "
    f"direction at Holm-adjusted p < {ALPHA:g}; **contradicted**: significant in the other direction; **smaller "
    "than the paper's**: not significant and the interval lies below the paper's effect; **underpowered**: the "
    "interval holds both 0 and the paper's effect (the seeds per arm that would detect the paper's effect at "
    f"this spread, α {ALPHA:g}, power {POWER:g}, are given); **not significant**: where the paper reports no size; "
    "**refused**: an arm has no spread, so no p-value; **not tested**: an arm has no runs. The smallest "
    f"detectable effect is the true difference these runs detect with power {POWER:g} at α {ALPHA:g} (two-sample "
    "t, the pooled spread). C1's baseline is the one with the best mean validation AUC, chosen before any test "
    "result is read; the paper's C1 effect is MIAN minus its own best baseline. C2 needs removing IBIM to cost "
    "more than each other setting of Table 3 (w/o IUIM, ICIM, GIM, IUIM & ICIM); C6 needs DIN and DIEN above every "
    "non-sequential model. Validity gate: runs tagged `learned=false` (training loss within 0.5% of the base-rate "
    f"entropy) are left out of the test and counted; IBIM is inactive when its weight entropy is >= {IBIM_UNIFORM:g} "
    f"of its maximum, LayerNorm gains collapsed below RMS {LN_COLLAPSED:g} (benchmark/diagnostics.py). "
    "Method: benchmark/report/verdict/.", "")


def verdict_page(verdict: Verdict) -> str:
    """The page below the answer and the provenance block."""
    mine = [c for c in verdict.cells if c.table != "mechanism"]
    return "\n".join([primary_table(verdict.table("primary"), verdict),
                      robustness_table(verdict.table("robustness"), verdict),
                      mechanism_table(verdict.table("mechanism"), verdict),
                      "## Figure", "",
                      "![Each tested claim's effect and 95% interval beside the paper's](figures/verdict.png)", "",
                      provenance_lines(mine + verdict.table("mechanism")), *METHOD])


# ------------------------------------------------------------------------------------------------ the CSVs
def _row(cell: Cell, part: PartTest | None) -> dict:
    return {"table": cell.table, "family": cell.family, "claim": cell.claim, "check": cell.check,
            "dataset": cell.dataset, "paper_dataset": cell.paper_dataset, "protocol": cell.protocol,
            "reading": cell.reading, "part": part.label if part else "",
            "paper_effect": part.paper if part else math.nan, "effect": part.effect if part else math.nan,
            "ci_low": part.low if part else math.nan, "ci_high": part.high if part else math.nan,
            "p": part.p if part else math.nan, "p_holm": part.p_adjusted if part else math.nan,
            "detectable": part.detectable if part else math.nan,
            "seeds_needed": part.seeds_needed if part else math.nan,
            "runs_a": part.n_a if part else 0, "runs_b": part.n_b if part else 0}


def cells_frame(verdict: Verdict) -> pd.DataFrame:
    """verdict.csv: one row per cell, the part that decides it."""
    return pd.DataFrame([{**_row(c, c.shown), "outcome": c.outcome, "runs": int(runs_text(c)),
                          "not_learned_runs": c.gate.not_learned, "gate": c.gate.text(), "note": c.note}
                         for c in verdict.cells])


def parts_frame(verdict: Verdict) -> pd.DataFrame:
    """verdict_parts.csv: every part of every cell."""
    return pd.DataFrame([{**_row(c, p), "part_outcome": p.outcome, "cell_outcome": c.outcome,
                          "not_learned_runs": p.gate.not_learned, "same_runs_as": p.duplicate_of}
                         for c in verdict.cells for p in c.parts])


def forest_rows(verdict: Verdict) -> pd.DataFrame:
    """The figure's rows: every tested part of the primary and robustness cells."""
    rows = []
    for cell in verdict.cells:
        if cell.table == "mechanism":
            continue
        for part in cell.parts:
            if math.isnan(part.effect) or part.duplicate_of:
                continue
            where = dataset_label(cell.dataset)
            if cell.table == "robustness":
                where += f", {protocol_label(cell.protocol)}, {reading_label(cell.reading)}"
            rows.append({"label": f"{cell.claim} {where}: {part.label.split(' (')[0]}", "effect": part.effect,
                         "low": part.low, "high": part.high, "paper": part.paper, "group": cell.table, "outcome": part.outcome})
    return pd.DataFrame(rows, columns=["label", "effect", "low", "high", "paper", "group", "outcome"])
