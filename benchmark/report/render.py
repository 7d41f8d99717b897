"""Rendering: the Markdown of every table's sections (its template), the CSV files and the provenance each file
names (data, machine, packages, commits, commands)."""
from __future__ import annotations

import math

import pandas as pd

from benchmark.report.names import (
    ABLATION_LABELS, DATASET_LABELS, EFFECT_VARIANTS, ENCODER_LABELS, LEARNED_MARGIN, MODEL_LABELS,
)
from benchmark.report.spec import Part
from benchmark.report.text import NOT_LEARNED_NOTE, fmt, fmt_p, md_table, not_learned_suffix


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


def efficiency_template(part: Part) -> str:
    return efficiency_markdown(part.frame, part.dataset, part.command, part.data)


def readings_template(part: Part) -> str:
    return readings_markdown(part.frame, part.dataset, part.data)


