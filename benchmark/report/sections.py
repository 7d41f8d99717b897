"""The sections of Tables 2-4 (one per dataset and protocol): the paper's numbers of a row, each section's CSV
rows (section_frame), its Markdown (section_markdown, with the seeds-needed line) and the build every one of
the three tables shares (build_sections). Each table's own rows and tests live in its module (table2.py ...)."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.report.names import (
    AMAZON, DATASET_LABELS, METRICS, PAPER_DATASET, PAPER_DATASET_LABELS, TABLE_DATASETS, ordered,
)
from benchmark.report.significance import adjust_family, test_of
from benchmark.report.spec import Built, Context, Part, Section, TableSpec, data_text, literal, protocols_of
from benchmark.report.stats import ALPHA, POWER, best_keys, bootstrap_interval, mean_std, welch
from benchmark.report.text import NOT_LEARNED_NOTE, fmt, fmt_interval, fmt_p_holm, md_table, not_learned_mark


def paper_numbers(paper: pd.DataFrame, table: str, dataset: str, model: str, variant: str = "") -> dict[str, float]:
    """The paper's AUC and Logloss for one row, {} when it reports none."""
    paper_dataset = PAPER_DATASET.get(dataset)
    match = paper[(paper["table"] == table.removeprefix("table")) & (paper["dataset"] == paper_dataset)
                  & (paper["model"] == model) & (paper["variant"] == variant)]
    if match.empty:
        return {}
    return {"auc": float(match["auc"].iloc[0]), "logloss": float(match["logloss"].iloc[0])}


def full_mian_of_table2(records: pd.DataFrame, dataset: str, protocol: str) -> pd.DataFrame:
    """The full MIAN (Pre-LN, literal reading) runs of table2: the MIAN row of Tables 3 and 4 when their own sweep
    did not run it (one run serves the three tables, as the paper's three tables share one MIAN)."""
    runs = literal(records[(records["table"] == "table2") & (records["dataset"] == dataset)
                           & (records["model"] == "mian")], protocol)
    return runs[(runs["variant"] == "full") & (runs["encoder"] == "pre_ln")]


def section_frame(section: Section, command: str) -> pd.DataFrame:
    """The CSV rows of one section: one per table row."""
    records = []
    means = {m: {r.key: mean_std(r.runs[m])[0] for r in section.rows} for m, _, _ in METRICS}
    best = {m: best_keys(means[m], goal) for m, _, goal in METRICS}
    paper_best = {k: best_keys({r.key: r.paper.get(k, math.nan) for r in section.rows}, goal)
                  for k, goal in (("auc", "max"), ("logloss", "min"))}
    compare = next((r for r in section.rows if r.key == section.compare_to), None)
    for row in section.rows:
        record: dict[str, Any] = {
            "table": section.table, "dataset": section.dataset, "protocol": section.protocol, "row": row.label,
            "model": row.model, "variant": row.variant, "encoder": row.encoder,
            "status": "measured" if len(row.runs) else "not run here", "runs": len(row.runs),
            "seeds": " ".join(str(int(s)) for s in sorted(row.runs["seed"].dropna())),
            "not_learned_runs": int((row.runs["learned"] == "false").sum()),
        }
        for metric, _, _ in METRICS:
            mean, std, _ = mean_std(row.runs[metric])
            record[f"{metric}_mean"], record[f"{metric}_std"] = mean, std
            record[f"{metric}_ci_low"], record[f"{metric}_ci_high"] = bootstrap_interval(row.runs[metric])
        record["paper_dataset"] = PAPER_DATASET.get(section.dataset, "") if row.paper else ""
        record["paper_auc"] = row.paper.get("auc", math.nan)
        record["paper_logloss"] = row.paper.get("logloss", math.nan)
        for metric, _, _ in METRICS:
            record[f"best_{metric}"] = row.key in best[metric]
        record["paper_best_auc"] = row.key in paper_best["auc"]
        record["paper_best_logloss"] = row.key in paper_best["logloss"]
        if compare is not None:
            test = test_of(section, row, compare) if row is not compare else None
            record[f"p_auc_vs_{compare.key}"] = welch(row.runs["test_auc"], compare.runs["test_auc"])[1] \
                if row is not compare else math.nan
            record[f"p_holm_auc_vs_{compare.key}"] = test["p_holm"] if test else math.nan
        record["source"] = row.source or (f"{section.table} runs" if len(row.runs) else "")
        record["command"] = "" if len(row.runs) else command
        records.append(record)
    return pd.DataFrame(records)


def build_sections(ctx: Context, spec: TableSpec) -> Built:
    """Tables 2-4: one section per dataset and protocol, its rows from `spec.sections`, the tests of all of them
    one family."""
    used = spec.reads(ctx)
    sections = [spec.sections(ctx, dataset, protocol) for dataset in ordered(list(used["dataset"]), TABLE_DATASETS)
                for protocol in protocols_of(used[used["dataset"] == dataset])]
    adjust_family(sections)
    parts = []
    for section in sections:
        command = spec.command_for(section.dataset)
        in_section = pd.concat([r.runs for r in section.rows])
        parts.append(Part(section_frame(section, command), section.dataset,
                          data_text(in_section) if len(in_section) else "", command, section))
    if spec.provenance_from_rows:
        used = pd.concat([pd.concat([r.runs for r in s.rows]) for s in sections]).drop_duplicates("run_id")
    return Built(parts, used, tests=[test for section in sections for test in section.tests])


def section_markdown(section: Section, frame: pd.DataFrame, command: str, data: str) -> str:
    title = DATASET_LABELS.get(section.dataset, section.dataset)
    if section.protocol != "shared":
        title += f", protocol `{section.protocol}`"
    parts = [f"## {title}", ""]
    paper_dataset = PAPER_DATASET.get(section.dataset)
    has_paper = any(r.paper for r in section.rows)
    if section.measured:
        parts.append(f"Data: {data}.")
    else:
        why = (" (the Amazon files were not available on the machine that produced these results)"
               if section.dataset in AMAZON else "")
        parts.append(f"**Not run here**{why}. To run it: `{command}`, then `python -m benchmark.report`.")
    if has_paper:
        label = PAPER_DATASET_LABELS.get(section.dataset) or PAPER_DATASET_LABELS[paper_dataset]
        parts.append(f"Paper column: {label}.")
    else:
        parts.append("The paper reports no number for this table on this dataset.")
    parts.append("")
    header = ["", "runs", "AUC", "Logloss", "gAUC", "paper AUC", "paper Logloss"]
    compare = next((r for r in section.rows if r.key == section.compare_to), None)
    if compare is not None:
        header.append(f"p (AUC) vs {compare.label}")
    body = []
    for row, (_, rec) in zip(section.rows, frame.iterrows()):
        cells = [row.label + (f" ({row.source})" if row.source and len(row.runs) else ""), str(rec["runs"])]
        for metric, _, _ in METRICS:
            text = fmt(rec[f"{metric}_mean"], rec[f"{metric}_std"]) if rec["runs"] else "not run"
            text += fmt_interval(rec[f"{metric}_ci_low"], rec[f"{metric}_ci_high"]) if rec["runs"] else ""
            cells.append((f"**{text}**" if rec[f"best_{metric}"] else text)
                         + (not_learned_mark(row.runs) if metric == "test_auc" else ""))
        for key in ("auc", "logloss"):
            value = rec[f"paper_{key}"]
            text = "–" if math.isnan(value) else f"{value:.4f}"
            cells.append(f"**{text}**" if rec[f"paper_best_{key}"] else text)
        if compare is not None:
            cells.append("" if row is compare else fmt_p_holm(rec[f"p_auc_vs_{compare.key}"],
                                                                rec[f"p_holm_auc_vs_{compare.key}"]))
        body.append(cells)
    parts.append(md_table(header, body))
    parts.append("")
    parts.append("Cells: mean ± standard deviation over seeds (sample std) [95% bootstrap interval of the mean], "
                 "`runs` finished runs; **bold**: best in the column (ours and the paper's separately). p: Welch's "
                 "two-sided t-test, with Holm's adjustment over this table's tests (every dataset and protocol) in "
                 "parentheses."
                 + (f" {NOT_LEARNED_NOTE}" if frame["not_learned_runs"].sum() else ""))
    names = {"test_auc": "AUC", "test_logloss": "Logloss"}
    for test in section.tests:
        if section.compare_to and not test["b"].endswith("(baseline)") and test["metric"] == "test_auc":
            continue  # already in the p column
        verdict = (f"Welch's t {test['t']:.2f}, p {fmt_p_holm(test['p'], test['p_holm'])}"
                   if not math.isnan(test["p"]) else "not testable (Welch's test needs 2 runs or more on each side)")
        parts.append(f"- {test['a']} vs {test['b']}, test {names[test['metric']]}: {test['mean_a']:.4f} vs "
                     f"{test['mean_b']:.4f} (difference {test['diff']:+.4f}), {verdict}; runs {test['n_a']} vs "
                     f"{test['n_b']}.")
    parts += [f"- {note}" for note in section.notes]
    power = power_line(section)
    if power:
        parts.append(f"- {power}")
    return "\n".join(parts) + "\n"


def power_line(section: Section) -> str:
    """Seeds per arm each comparison needs to detect the paper's gap at our spread ('' without comparisons)."""
    if not section.tests:
        return ""
    names = {"test_auc": "AUC", "test_logloss": "Logloss"}
    head = (f"Seeds per arm to detect the paper's gap at our spread (two-sided two-sample t-test, α {ALPHA:g}, "
            f"power {POWER:g}, exact via the noncentral t; sd: the two arms' pooled std): ")
    if all(math.isnan(t["paper_diff"]) for t in section.tests):
        return head + "none to compute, the paper reports no number for these rows on this dataset."
    items = []
    for test in section.tests:
        name = f"{test['a']} vs {test['b']} {names[test['metric']]}"
        if math.isnan(test["paper_diff"]):
            items.append(f"{name}: no paper gap")
        elif math.isnan(test["seeds_needed"]):
            items.append(f"{name}: paper gap {abs(test['paper_diff']):.4f}, "
                         + ("no gap to detect" if test["paper_diff"] == 0 else "no spread (needs 2 runs a side)"))
        else:
            items.append(f"{name}: paper gap {abs(test['paper_diff']):.4f}, sd {test['sd_pooled']:.4f} → "
                         f"{int(test['seeds_needed'])}")
    return head + "; ".join(items) + "."


def section_template(part: Part) -> str:
    return section_markdown(part.section, part.frame, part.command, part.data)
