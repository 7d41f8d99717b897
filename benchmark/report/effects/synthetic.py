"""The first synthetic generator's part of results/effects.md (experiment=effects on benchmark/data/synthetic.py's
data, one planted effect at a time): MIAN's ablations against the full MIAN on each effect, and the positive
controls and MIAN's score readings against the oracle (did any model learn the effect?)."""
from __future__ import annotations

import math

import pandas as pd

from benchmark.report.effects.mechanisms import arm_of
from benchmark.report.names import (
    ABLATION_LABELS, ARM_LABELS, CONTROL_ARMS, EFFECT_CONTROLS, EFFECT_MODULE, EFFECT_VARIANTS, EFFECTS,
    LEARNED_MARGIN, ordered, present_in_order,
)
from benchmark.report.spec import literal, protocols_of
from benchmark.report.stats import mean_std, welch
from benchmark.report.text import NOT_LEARNED_NOTE, fmt, fmt_p, md_table, not_learned_suffix


def effects_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (planted effect, variant) of the `effects` experiment: test AUC over seeds, the data's oracle
    AUC, and the change against the full MIAN on the same data with Welch's test."""
    effects = records[(records["table"] == "effects") & (records["model"] == "mian")
                      & (records["dataset"] != "calibrated")]  # the calibrated data: mechanisms.py
    cells = [(protocol, effect) for protocol in protocols_of(effects)
             for effect in present_in_order(list(literal(effects, protocol)["effect"]), EFFECTS)]
    rows = []
    for protocol, effect in cells:
        runs = literal(effects, protocol)
        mine = runs[runs["effect"] == effect]
        full = mine[mine["variant"] == "full"]["test_auc"]
        full_mean, oracle = mean_std(full)[0], mean_std(mine["oracle_auc"])[0]
        for variant in present_in_order(list(mine["variant"]), EFFECT_VARIANTS):
            cell = mine[mine["variant"] == variant]
            mean, std, n = mean_std(cell["test_auc"])
            t, p = welch(cell["test_auc"], full) if variant != "full" else (math.nan, math.nan)
            rows.append({"protocol": protocol, "effect": effect, "variant": variant,
                         "removes_its_module": EFFECT_MODULE.get(effect) == variant, "runs": n, "auc_mean": mean,
                         "auc_std": std, "logloss_mean": mean_std(cell["test_logloss"])[0], "oracle_auc": oracle,
                         "diff_vs_full": mean - full_mean if variant != "full" else math.nan, "t": t, "p": p,
                         "not_learned_runs": int((cell["learned"] == "false").sum())})
    return pd.DataFrame(rows, columns=["protocol", "effect", "variant", "removes_its_module", "runs", "auc_mean",
                                       "auc_std", "logloss_mean", "oracle_auc", "diff_vs_full", "t", "p",
                                       "not_learned_runs"])


def controls_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (planted effect, arm) of the effects experiment: test AUC, its gap to the oracle, whether it
    learned the effect (within LEARNED_MARGIN of the oracle), and for MIAN's readings the change against the
    ablation that removes the effect's module (does the module, under this reading, matter?)."""
    runs = records[(records["table"] == "effects") & (records["dataset"] != "calibrated")].copy()
    if runs.empty:
        return pd.DataFrame()
    runs["arm"] = [arm_of(r) for _, r in runs.iterrows()]
    rows = []
    groups = [(protocol, effect) for protocol in ordered(list(runs["protocol"]), ("shared",))
              for effect in present_in_order(list(runs[runs["protocol"] == protocol]["effect"]), EFFECTS)]
    for protocol, effect in groups:
        mine = runs[(runs["effect"] == effect) & (runs["protocol"] == protocol)]
        oracle = mean_std(mine["oracle_auc"])[0]
        removed = mine[mine["arm"] == f"mian_{EFFECT_MODULE.get(effect, '')}"]["test_auc"]
        for arm in present_in_order(list(mine["arm"]), CONTROL_ARMS):
            if arm not in CONTROL_ARMS:
                continue
            cell = mine[mine["arm"] == arm]
            mean, std, n = mean_std(cell["test_auc"])
            is_mian = arm.startswith("mian_")
            t, p = welch(cell["test_auc"], removed) if is_mian else (math.nan, math.nan)
            rows.append({
                "protocol": protocol, "effect": effect, "arm": arm, "label": ARM_LABELS.get(arm, arm),
                "control": arm in EFFECT_CONTROLS.get(effect, ()), "runs": n, "auc_mean": mean, "auc_std": std,
                "oracle_auc": oracle, "gap_to_oracle": oracle - mean, "learned_effect": oracle - mean <= LEARNED_MARGIN,
                "diff_vs_module_removed": mean - mean_std(removed)[0] if is_mian else math.nan,
                "p_vs_module_removed": p,
                "not_learned_runs": int((cell["learned"] == "false").sum()),
                **{f"{d}_mean": mean_std(cell[d])[0] for d in ("diag_train_loss_ratio", "diag_ibim_entropy",
                                                               "diag_ibim_max_weight")},
            })
    return pd.DataFrame(rows)


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
