"""The tuning section (results/tuning.md, tuning.csv, figures/tuning_<dataset>.png): per arm of `python -m
benchmark.tune`, its budget, its best configuration, how its validation AUC moved across its trials (best so far
against the trial number, and the spread) beside the gaps between the arms, and the test AUC of its best
configuration rerun over seeds (`protocol=tuned`), read from the trials' and the reruns' MLflow runs."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.report.names import DATASET_LABELS, DATASETS, MODEL_LABELS, ordered
from benchmark.report.provenance import Provenance
from benchmark.report.runs import write_atomic
from benchmark.report.spec import Built, Context, Part, TableSpec
from benchmark.report.stats import mean_std
from benchmark.report.text import fmt, md_table

TRIAL_TAGS = ("tune_study", "tune_trial", "tune_arm", "tune_trials", "tune_max_epochs", "tune_pruner", "tune_state")


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series("", index=frame.index, dtype=object)


def trials_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished trial run: study, arm, dataset, trial number, state, best validation AUC, budget and the
    sampled values (JSON of the `tune_param.*` tags)."""
    mine = runs[(_col(runs, "params.experiment_name") == "tune") & (_col(runs, "tags.tune_trial") != "")]
    params = [c for c in mine.columns if c.startswith("tags.tune_param.")]
    frame = pd.DataFrame({
        "run_id": mine["run_id"], "dataset": _col(mine, "tags.dataset"), "model": _col(mine, "tags.model"),
        **{tag.removeprefix("tune_"): _col(mine, f"tags.{tag}") for tag in TRIAL_TAGS},
        "best_val_auc": pd.to_numeric(_col(mine, "metrics.best_val_auc"), errors="coerce"),
        "epochs_run": pd.to_numeric(_col(mine, "metrics.epochs_run"), errors="coerce"),
        "params": [json.dumps({c.removeprefix("tags.tune_param."): json.loads(row[c]) for c in params if row[c]})
                   for _, row in mine.iterrows()],
    })
    frame["trial"] = pd.to_numeric(frame["trial"], errors="coerce").astype("Int64")
    return frame.sort_values(["dataset", "study", "trial"], kind="stable").reset_index(drop=True)


def arm_label(model: str, arm: str) -> str:
    label = MODEL_LABELS.get(model, model)
    return label if arm in (model, "") else f"{label} (arm {arm})"


def arms_frame(trials: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, study): budget, trials, best trial and value, the spread of validation AUC over the
    trials, the gap to the best arm, the best configuration, and the tuned reruns' test AUC."""
    rows: list[dict[str, Any]] = []
    tuned = records[records["protocol"] == "tuned"]
    for (dataset, study), mine in trials.groupby(["dataset", "study"], sort=False):
        values = mine["best_val_auc"].dropna()
        best = mine.loc[mine["best_val_auc"].idxmax()] if len(values) else None
        model = str(mine["model"].iloc[0])
        reruns = tuned[(tuned["dataset"] == dataset) & (tuned["model"] == model)
                       & (tuned["run_id"].isin(records["run_id"]))]
        reruns = reruns[reruns["tuned_study"] == study] if "tuned_study" in reruns else reruns
        test_mean, test_std, n = mean_std(reruns["test_auc"]) if len(reruns) else (math.nan, math.nan, 0)
        rows.append({
            "dataset": dataset, "study": study, "arm": str(mine["arm"].iloc[0]), "model": model,
            "label": arm_label(model, str(mine["arm"].iloc[0])),
            # a study continued with a larger tune.trials: its last budget
            "budget_trials": int(pd.to_numeric(mine["trials"], errors="coerce").max()),
            "budget_max_epochs": int(pd.to_numeric(mine["max_epochs"], errors="coerce").max()),
            "pruner": str(mine["pruner"].iloc[0]), "trials_finished": len(mine),
            "trials_pruned": int((mine["state"] == "PRUNED").sum()),
            "best_trial": int(best["trial"]) if best is not None else -1,
            "best_val_auc": float(values.max()) if len(values) else math.nan,
            "first_trial_val_auc": float(mine["best_val_auc"].iloc[0]),
            "val_auc_min": float(values.min()) if len(values) else math.nan,
            "val_auc_median": float(values.median()) if len(values) else math.nan,
            "val_auc_spread": float(values.max() - values.min()) if len(values) else math.nan,
            "best_params": best["params"] if best is not None else "",
            "tuned_test_auc_mean": test_mean, "tuned_test_auc_std": test_std, "tuned_runs": n,
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["gap_to_best_arm"] = frame["best_val_auc"] - frame.groupby("dataset")["best_val_auc"].transform("max")
    return frame


def best_so_far(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study and trial number, the best validation AUC of the trials up to it (pruned ones included)."""
    frame = trials.dropna(subset=["best_val_auc"]).sort_values(["study", "trial"]).copy()
    frame["best_so_far"] = frame.groupby("study")["best_val_auc"].cummax()
    return frame


def tuning_figure(trials: pd.DataFrame, arms: pd.DataFrame, dataset: str, provenance: list[str]) -> bytes:
    """Left: best-so-far validation AUC against the trial number per arm; right: every trial's validation AUC per
    arm (the spread tuning covers), the best marked."""
    import matplotlib.pyplot as plt

    from benchmark import figures as drawing

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.4))
    curves = best_so_far(trials)
    for i, arm in enumerate(arms.itertuples()):
        mine = curves[curves["study"] == arm.study]
        left.step(mine["trial"].astype(int), mine["best_so_far"], where="post", marker="o", markersize=3,
                  label=f"{arm.label} ({arm.trials_finished} trials)")
        right.scatter(np.full(len(mine), i) + np.linspace(-0.15, 0.15, len(mine)), mine["best_val_auc"], s=14,
                      alpha=0.7)
        right.scatter([i], [arm.best_val_auc], marker="*", s=120, color="black", zorder=3)
    from matplotlib.ticker import MaxNLocator

    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlim(-0.5, len(arms) - 0.5)
    left.set_xlabel("trial number")
    left.set_ylabel("best validation AUC so far")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.set_xticks(range(len(arms)), list(arms["label"]), fontsize=8)
    right.set_ylabel("validation AUC of each trial (★ best)")
    right.grid(alpha=0.3, axis="y")
    title = f"Tuning on {DATASET_LABELS.get(dataset, dataset)}: equal budget per arm"
    drawing._footer(fig, provenance, title)
    return drawing._png(fig, title, provenance)


def build_tuning(ctx: Context, spec: TableSpec) -> Built | None:
    trials = trials_frame(ctx.data.runs)
    if trials.empty:
        return None
    records = pd.concat([ctx.records, ctx.older], ignore_index=True)
    tuned = ctx.records.copy()
    studies = dict(zip(ctx.data.runs["run_id"], _col(ctx.data.runs, "tags.tuned_study")))
    tuned["tuned_study"] = tuned["run_id"].map(studies).fillna("")
    arms = arms_frame(trials, tuned)
    parts = [Part(arms[arms["dataset"] == d].reset_index(drop=True), d, extra={"trials": trials[trials["dataset"] == d]})
             for d in ordered(list(arms["dataset"]), DATASETS) if (arms["dataset"] == d).any()]
    used = records[(records["table"] == "tune") | records["run_id"].isin(tuned[tuned["tuned_study"] != ""]["run_id"])]
    return Built(parts, used, files={"tuning_trials": trials.drop(columns=["run_id"])})


def tuning_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    trials = trials_frame(ctx.data.runs)
    arms = arms_frame(trials, ctx.records.assign(tuned_study=""))
    written = []
    for dataset in ordered(list(arms["dataset"]), DATASETS):
        mine = arms[arms["dataset"] == dataset]
        if mine.empty:
            continue
        path = out / "figures" / f"tuning_{dataset}.png"
        write_atomic(path, tuning_figure(trials[trials["dataset"] == dataset], mine, dataset, prov.short()))
        written.append(path)
    return written


def tuning_template(part: Part) -> str:
    arms = part.frame
    budgets = set(zip(arms["budget_trials"], arms["budget_max_epochs"], arms["pruner"]))
    trials, epochs, pruner = sorted(budgets)[0]
    equal = ("the same for every arm" if len(budgets) == 1
             else f"**not equal across arms** ({'; '.join(f'{t} trials, {e} epochs, {p}' for t, e, p in sorted(budgets))})")
    lines = [f"## {DATASET_LABELS.get(part.dataset, part.dataset)}", "",
             f"Budget: {trials} trials per arm of at most {epochs} epochs each, TPE sampler, {pruner} pruner on "
             f"per-epoch validation AUC; objective: the trial's best validation AUC; test never read during tuning. "
             f"Budget {equal}.", ""]
    body = []
    for r in arms.itertuples():
        tested = (f"{fmt(r.tuned_test_auc_mean, r.tuned_test_auc_std)} ({r.tuned_runs})" if r.tuned_runs
                  else "not run")
        body.append([r.label, f"{r.trials_finished}/{r.budget_trials} ({r.trials_pruned} pruned)",
                     f"{r.best_val_auc:.4f} (trial {r.best_trial})", f"{r.first_trial_val_auc:.4f}",
                     f"{r.val_auc_min:.4f} / {r.val_auc_median:.4f} / {r.best_val_auc:.4f}",
                     f"{r.val_auc_spread:.4f}", f"{r.gap_to_best_arm:+.4f}", tested])
    header = ["arm", "trials finished (pruned)", "best val AUC", "trial 0 val AUC", "val AUC min / median / max",
              "spread", "gap to best arm", "tuned: test AUC (seeds)"]
    lines += [md_table(header, body), ""]
    gaps = arms["best_val_auc"].max() - arms["best_val_auc"]
    lines.append(
        f"Spread: max - min validation AUC over an arm's finished trials (how much tuning moves it: "
        f"{arms['val_auc_spread'].min():.4f} to {arms['val_auc_spread'].max():.4f} here); gap to best arm: its best "
        f"validation AUC minus the best arm's (largest gap {gaps.max():.4f}). Trial 0 is a random draw of the space, "
        "not the shared protocol. Tuned: the best configuration rerun over seeds as `protocol=tuned` (test read once "
        "per run), mean ± std (runs). Trials that failed have no finished run and are not counted here.")
    lines += ["", "Best configuration per arm:", ""]
    lines += [f"- {r.label}: `{r.best_params}`" for r in arms.itertuples()]
    lines.append(f"\nEvery trial: tuning_trials.csv; figure: figures/tuning_{part.dataset}.png.")
    return "\n".join(lines) + "\n"


TABLE = TableSpec("tuning", "The tuning track: an equal budget per arm, tuned on validation, tested once",
                  reads=lambda ctx: ctx.table("tune"), build=build_tuning, template=tuning_template,
                  count_older=False, figures=tuning_figures)
