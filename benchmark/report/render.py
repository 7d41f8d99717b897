"""Rendering: the Markdown of every table's sections (its template), the CSV files and the provenance each file
names (data, machine, packages, commits, commands)."""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.report.names import (
    ABLATION_LABELS, AMAZON, DATASET_LABELS, EFFECT_VARIANTS, ENCODER_LABELS, LEARNED_MARGIN, METRICS, MODEL_LABELS,
    PAPER_DATASET, PAPER_DATASET_LABELS,
)
from benchmark.report.stats import ALPHA, POWER

if TYPE_CHECKING:
    from benchmark.report.tables import Section, TableSpec


def not_learned_suffix(k: int, n: int) -> str:
    """' †k/n' when k of the n runs behind a cell ended at the base-rate entropy (not learned), else ''."""
    return f" †{int(k)}/{int(n)}" if k else ""


def not_learned_mark(runs: pd.DataFrame) -> str:
    return not_learned_suffix(int((runs["learned"] == "false").sum()), len(runs))


NOT_LEARNED_NOTE = ("†k/n: k of the cell's n runs did not learn: their final training loss is within 0.5% of "
                    "the base-rate entropy of the training labels (benchmark/diagnostics.py).")


def fmt(mean: float, std: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f} ± n/a"


def fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def fmt_p_holm(p: float, p_holm: float) -> str:
    """'0.0077 (Holm 0.046)': the raw p and, when there is one, its Holm-adjusted value."""
    return fmt_p(p) + ("" if math.isnan(p) or math.isnan(p_holm) else f" (Holm {fmt_p(p_holm)})")


def fmt_interval(low: float, high: float, digits: int = 4) -> str:
    """' [low, high]' (with its leading space), '' when there is no interval."""
    return "" if math.isnan(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


@dataclass
class Part:
    """One section of a table: its rows and columns (`frame`, its lines of the CSV) and what its template needs
    beside them."""
    frame: pd.DataFrame | None
    dataset: str = ""
    data: str = ""  # the data its runs trained on, in words
    command: str = ""  # how to run it, shown when it was not run here
    section: Section | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A table built: its sections, the records behind it (its provenance), its family of tests (significance.csv,
    Holm-corrected together) and any further CSV files (name -> frame)."""
    parts: list[Part]
    used: pd.DataFrame
    tests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)


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


@dataclass
class Provenance:
    data: str
    machine: str
    packages: str
    commits: str
    commands: list[str]
    report: str

    def lines(self) -> list[tuple[str, str]]:
        return [("Data", self.data), ("Machine", self.machine), ("Packages", self.packages),
                ("Git commit", self.commits), ("Produced by", " ; ".join(self.commands) or "no runs"),
                ("Report", self.report)]

    def markdown(self) -> str:
        return "\n".join(f"- **{k}**: {v}" for k, v in self.lines()) + "\n"

    def csv_comment(self) -> str:
        return "".join(f"# {k}: {v}\n" for k, v in self.lines())

    def short(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.lines()]


def provenance(records: pd.DataFrame, runs: pd.DataFrame, source: str, report_command: str,
               older: int = 0) -> Provenance:
    """Where these records' numbers come from: data, machine, packages, commits and the exact commands (each
    sweep's command from its parent run, else each run's own)."""
    join = lambda values: " ; ".join(sorted(set(v for v in values if v))) or "–"  # noqa: E731
    parent_commands = runs.set_index("run_id")["tags.command"] if "tags.command" in runs.columns else pd.Series()
    commands = []
    for parent, command, row in zip(records["parent"], records["command"], records.itertuples()):
        text = parent_commands.get(parent, "") if parent else ""
        text = text or command or shlex.join(["python", "-m", "benchmark", f"experiment={row.table}",
                                              f"dataset={row.dataset}", f"model={row.model}", f"seed={int(row.seed)}"])
        if f"`{text}`" not in commands:
            commands.append(f"`{text}`")
    report = f"`{report_command}` from the {source} ({len(records)} runs"
    report += f"; {older} older runs of the same cell and seed left out)" if older else ")"
    return Provenance(join(records["data"]), join(records["machine"]), join(records["packages"]),
                      join(records["git_commit"]), commands, report)


def effects_markdown(frame: pd.DataFrame, data: str) -> str:
    command = "python -m benchmark experiment=effects hydra/launcher=local_parallel"
    body = []
    for protocol, effect in dict.fromkeys(zip(frame["protocol"], frame["effect"])):
        mine = frame[(frame["effect"] == effect) & (frame["protocol"] == protocol)].set_index("variant")
        oracle = float(mine["oracle_auc"].iloc[0])
        cells = [protocol, effect, "–" if math.isnan(oracle) else f"{oracle:.4f}"]
        for variant in EFFECT_VARIANTS:
            if variant not in mine.index:
                cells.append("not run")
                continue
            r = mine.loc[variant]
            text = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
            text += not_learned_suffix(r["not_learned_runs"], r["runs"])
            if variant != "full":
                text += f"; {r['diff_vs_full']:+.4f}, p {fmt_p(r['p'])}"
            cells.append(f"**{text}**" if r["removes_its_module"] else text)
        body.append(cells)
    header = ["protocol", "planted effect", "oracle AUC"] + [ABLATION_LABELS[v] for v in EFFECT_VARIANTS]
    return "\n".join([
        "## Synthetic data with one planted effect at a time", "",
        f"Data: {data}.", f"Command: `{command}`.", "",
        md_table(header, body), "",
        "Cells: test AUC mean ± std over seeds (runs); for an ablation, its change against the full MIAN on the same "
        "data and Welch's two-sided p. **Bold**: the ablation that removes the module meant to model the planted "
        "effect (IBIM for the behaviour sequence, IUIM for user fields x item, ICIM for context x item); if MIAN's "
        "modules do what the paper says, the bold cell is the one that loses AUC and the others stay level. "
        + NOT_LEARNED_NOTE, ""])


def controls_markdown(frame: pd.DataFrame) -> tuple[str, str]:
    """(the verdict in words for the top of effects.md, the controls table section)."""
    if frame.empty:
        return "", ""
    verdicts, body = [], []
    for protocol, effect in dict.fromkeys(zip(frame["protocol"], frame["effect"])):
        mine = frame[(frame["effect"] == effect) & (frame["protocol"] == protocol)]
        oracle = float(mine["oracle_auc"].iloc[0])
        best = mine.loc[mine["auc_mean"].idxmax()]
        if not mine["learned_effect"].any():
            verdicts.append(
                f"**Defect: under the protocol `{protocol}` no model learns the planted {effect} effect.** The best, "
                f"{best['label']}, reaches test AUC {best['auc_mean']:.4f} against the oracle's {oracle:.4f} (gap "
                f"{best['gap_to_oracle']:.3f} > {LEARNED_MARGIN}): the generator or this protocol keeps the effect "
                "from being learned, so the ablation rows for it say nothing about MIAN's module.")
        else:
            learners = ", ".join(mine[mine["learned_effect"]]["label"])
            verdicts.append(f"Under the protocol `{protocol}` the planted {effect} effect is learnable: within "
                            f"{LEARNED_MARGIN} of the oracle's test AUC {oracle:.4f}: {learners}.")
        for _, r in mine.iterrows():
            auc = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
            auc += not_learned_suffix(r["not_learned_runs"], r["runs"])
            module = ("–" if math.isnan(r["diff_vs_module_removed"])
                      else f"{r['diff_vs_module_removed']:+.4f}, p {fmt_p(r['p_vs_module_removed'])}")
            diag = lambda key, digits=2: ("–" if math.isnan(r[f"{key}_mean"])  # noqa: E731
                                          else f"{r[f'{key}_mean']:.{digits}f}")
            body.append([protocol, effect, r["label"] + (" (control)" if r["control"] else ""), f"{oracle:.4f}",
                         f"**{auc}**" if r["learned_effect"] else auc, f"{r['gap_to_oracle']:.4f}", module,
                         diag("diag_train_loss_ratio", 3), diag("diag_ibim_entropy"), diag("diag_ibim_max_weight")])
    header = ["protocol", "planted effect", "model", "oracle AUC", "test AUC", "gap to oracle",
              "vs its module removed", "train loss ÷ base", "IBIM entropy", "IBIM max weight"]
    table = "\n".join([
        "## Positive controls and MIAN's score readings", "",
        md_table(header, body), "",
        f"Cells: test AUC mean ± std over seeds (runs); **bold**: within {LEARNED_MARGIN} of the oracle's AUC (the "
        "model learned the effect). `vs its module removed`: a MIAN reading's AUC minus that of MIAN without the "
        "module meant for the effect (w/o IBIM for the sequence, w/o IUIM for user x item, w/o ICIM for context x "
        "item), with Welch's p: does the module, under this reading, matter? The last three columns are the last "
        "epoch's diagnostics, mean over runs (benchmark/diagnostics.py): the training loss over the base-rate "
        "entropy (1.0: nothing learned), IBIM's weight entropy over log(history length) (1.0: uniform) and its "
        "largest weight. Readings: docs/mian.md. " + NOT_LEARNED_NOTE, ""])
    return "\n\n".join(verdicts) + "\n", table


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


def efficiency_markdown(frame: pd.DataFrame, dataset: str, command: str, data: str) -> str:
    parts = [f"## {DATASET_LABELS.get(dataset, dataset)}", ""]
    if frame["runs"].sum():
        parts.append(f"Data: {data}.")
    else:
        parts.append(f"**Not run here**. To run it: `{command}`, then `python -m benchmark.report`.")
    parts += ["Paper column: Amazon Books on 4x NVIDIA Tesla K80 (Section 4.5): compare the ratios to DIN, "
              "not the seconds.", ""]
    header = ["", "runs", "s/epoch", "first epoch s", "÷ DIN", "step", "paper s/epoch", "paper ÷ DIN"]
    body = []
    for _, rec in frame.iterrows():
        time = fmt(rec["epoch_time_mean_s_mean"], rec["epoch_time_mean_s_std"], 3) if rec["runs"] else "not run"
        body.append([
            rec["row"], str(rec["runs"]), f"**{time}**" if rec["best_epoch_time"] else time,
            fmt(rec["first_epoch_time_s_mean"], rec["first_epoch_time_s_std"], 3) if rec["runs"] else "–",
            "–" if math.isnan(rec["relative_to_din"]) else f"{rec['relative_to_din']:.2f}", rec["step_mode"] or "–",
            "–" if math.isnan(rec["paper_seconds_per_epoch"]) else f"{rec['paper_seconds_per_epoch']:.0f}",
            "–" if math.isnan(rec["paper_seconds_per_epoch"]) else f"{rec['paper_relative_to_din']:.2f}",
        ])
    parts.append(md_table(header, body))
    parts.append("")
    parts.append("s/epoch: the training part of an epoch after the first (warm-up) one, mean ± std over seeds; "
                 "first epoch shown apart; **bold**: fastest.")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------- the templates and the files
def section_template(part: Part) -> str:
    return section_markdown(part.section, part.frame, part.command, part.data)


def efficiency_template(part: Part) -> str:
    return efficiency_markdown(part.frame, part.dataset, part.command, part.data)


def readings_template(part: Part) -> str:
    return readings_markdown(part.frame, part.dataset, part.data)


SIGNIFICANCE_NOTE = (
    "# Welch's t-test (scipy.stats.ttest_ind, equal_var=False) over seeds, two-sided\n"
    "# p_holm: p adjusted with Holm's step-down method over the family of the table's tests (every dataset and "
    "protocol of table2, of table3, of table4)\n"
    "# paper_diff: the paper's a - b on the metric; sd_pooled: the two arms' pooled sample std here; seeds_needed: "
    f"seeds per arm for a two-sided two-sample t-test at alpha {ALPHA:g} to detect paper_diff with power "
    f"{POWER:g} at sd_pooled (exact, noncentral t)\n")


def csv_text(frame: pd.DataFrame, header: str) -> str:
    return header + frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")


def table_markdown(spec: TableSpec, built: Built, prov: Provenance) -> str:
    return (f"# {spec.title}\n\n{spec.head(built.parts)}{prov.markdown()}\n"
            + "\n".join(spec.template(part) for part in built.parts))


def table_csv(built: Built, prov: Provenance) -> str:
    return csv_text(pd.concat([p.frame for p in built.parts if p.frame is not None], ignore_index=True),
                    prov.csv_comment())


def significance_csv(tests: pd.DataFrame, prov: Provenance) -> str:
    return csv_text(tests, prov.csv_comment() + SIGNIFICANCE_NOTE)
