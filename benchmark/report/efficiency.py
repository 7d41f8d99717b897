"""Efficiency (results/efficiency.md, Section 4.5 of the paper): training seconds per epoch of every model on each
dataset, and each model's time relative to DIN beside the paper's (measured on other hardware: compare ratios)."""
from __future__ import annotations

import math

import pandas as pd

from benchmark.report.names import DATASET_LABELS, MODEL_LABELS, MODELS, TABLE_DATASETS, ordered
from benchmark.report.spec import Built, Context, Part, TableSpec, data_text
from benchmark.report.stats import best_keys, mean_std
from benchmark.report.text import fmt, md_table


def efficiency_frame(records: pd.DataFrame, paper_eff: pd.DataFrame, dataset: str, command: str) -> pd.DataFrame:
    """One row per model on `dataset`: seconds per epoch after the first, the first apart, the ratio to DIN and
    the paper's (`command`: how to run it, on the rows not run here)."""
    runs = records[(records["table"] == "efficiency") & (records["dataset"] == dataset)]
    means = {m: mean_std(runs[runs["model"] == m]["epoch_time_mean_s"])[0] for m in MODELS}
    reference = means.get("din", math.nan)
    paper_times = paper_eff.set_index("model")["seconds_per_epoch"].to_dict()
    rows = []
    best = best_keys(means, "min")
    for model in ordered(list(runs["model"]), MODELS):
        mine = runs[runs["model"] == model]
        mean, std, n = mean_std(mine["epoch_time_mean_s"])
        first, first_std, _ = mean_std(mine["first_epoch_time_s"])
        paper_s = float(paper_times.get(model, math.nan))
        rows.append({
            "table": "efficiency", "dataset": dataset, "row": MODEL_LABELS.get(model, model), "model": model,
            "status": "measured" if n else "not run here", "runs": n,
            "seeds": " ".join(str(int(s)) for s in sorted(mine["seed"].dropna())),
            "epoch_time_mean_s_mean": mean, "epoch_time_mean_s_std": std,
            "first_epoch_time_s_mean": first, "first_epoch_time_s_std": first_std,
            "relative_to_din": mean / reference if reference == reference and reference > 0 else math.nan,
            "best_epoch_time": model in best,
            "step_mode": " ".join(sorted(set(mine["step_mode"]) - {""})),
            "paper_dataset": "books" if paper_s == paper_s else "",
            "paper_seconds_per_epoch": paper_s,
            "paper_relative_to_din": paper_s / float(paper_times["din"]) if "din" in paper_times else math.nan,
            "paper_hardware": str(paper_eff["hardware"].iloc[0]) if paper_s == paper_s else "",
            "command": "" if n else command,
        })
    return pd.DataFrame(rows)


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


def efficiency_template(part: Part) -> str:
    return efficiency_markdown(part.frame, part.dataset, part.command, part.data)


def build_efficiency(ctx: Context, spec: TableSpec) -> Built:
    used = spec.reads(ctx)
    parts = []
    for dataset in ordered(list(used["dataset"]), TABLE_DATASETS):
        command = spec.command_for(dataset)
        parts.append(Part(efficiency_frame(ctx.records, ctx.paper_eff, dataset, command), dataset,
                          data_text(used[used["dataset"] == dataset]), command))
    return Built(parts, used)


TABLE = TableSpec("efficiency", "Efficiency (Section 4.5): training seconds per epoch",
                  reads=lambda ctx: ctx.table("efficiency"), build=build_efficiency, template=efficiency_template)
