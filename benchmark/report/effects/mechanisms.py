"""The calibrated mechanisms part of results/effects.md (experiment=effects on dataset=calibrated): every run read
as *lift captured*, each mechanism cell behind its gate of positive and negative controls.

    lift captured = (test AUC - knock-out AUC) / (oracle AUC - knock-out AUC)

with the oracle and knock-out AUCs of the run's own data (benchmark/data/calibrated.py records them per data
seed): 0 is what a model that misses the effect reaches, 1 the ceiling. The gate of a cell (a mechanism under
one protocol): its form's positive control (POSITIVE_CONTROL) captures at least POSITIVE_LIFT of the lift, and
the negative controls at most NEGATIVE_LIFT: LR on the cell's data, and the positive control trained on the
knock-out data (dataset.knockout=true). A cell that fails it, or lacks a control's runs, is reported as one the
benchmark cannot decide, with its numbers, and its MIAN rows are not interpreted.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.report.names import ARM_LABELS, EFFECT_MODULE, MECHANISMS, ordered, present_in_order
from benchmark.report.stats import mean_std, welch
from benchmark.report.text import md_table

# The control built for each form (models/controls.py) and the thresholds of the gate, registered in
# conf/experiment/effects.yaml before the runs.
POSITIVE_CONTROL = {"share": "fm", "max": "max_sim", "softmax": "product_attn", "bilinear": "fm",
                    "threeway": "tensor_fact"}
NEGATIVE_CONTROL = "lr"
POSITIVE_LIFT, NEGATIVE_LIFT = 0.8, 0.1
# The rows of the lift table, in order: controls, baselines, MIAN's readings, MIAN's module ablations.
CALIBRATED_ARMS = ("lr", "fm", "max_sim", "product_attn", "tensor_fact", "deepfm", "xdeepfm", "din", "dien",
                   "mian_additive", "mian_din", "mian_product", "mian_no_ibim", "mian_no_iuim", "mian_no_icim")
MIAN_FULL = "mian_additive"  # the literal MIAN, which the ablations remove a module from


def arm_of(record: pd.Series) -> str:
    """The conf/arm/ name of an effects run: the baseline's name, `mian_<ablation>`, or `mian_<IBIM reading>`."""
    if record["model"] != "mian":
        return str(record["model"])
    if record["variant"] != "full":
        return f"mian_{record['variant']}"
    readings = dict(part.split("=", 1) for part in str(record["reading"]).split())
    if readings.get("readout") == "product":
        return "mian_product"
    return f"mian_{readings.get('ibim_score', 'additive')}"


def calibrated(records: pd.DataFrame) -> pd.DataFrame:
    """The effects runs on the calibrated data, with their arm and lift captured."""
    runs = records[(records["table"] == "effects") & (records["dataset"] == "calibrated")].copy()
    if runs.empty:
        return runs
    runs["arm"] = [arm_of(r) for _, r in runs.iterrows()]
    runs["lift"] = (runs["test_auc"] - runs["knockout_auc"]) / (runs["oracle_auc"] - runs["knockout_auc"])
    return runs


def _form(mechanism: str) -> str:
    return mechanism.split("_", 1)[1] if "_" in mechanism else ""


def _effect(mechanism: str) -> str:
    return mechanism.split("_", 1)[0]


def _cells(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return [(protocol, mechanism) for protocol in ordered(list(runs["protocol"]), ("shared",))
            for mechanism in present_in_order(list(runs[runs["protocol"] == protocol]["effect"]), MECHANISMS)]


def _lift(cell: pd.DataFrame) -> tuple[float, float, int]:
    return mean_std(cell["lift"])


def gate_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, mechanism): the calibration numbers (means over the data seeds run), the controls'
    lift captured and whether the cell passes its gate, with the reason when it does not."""
    runs = calibrated(records)
    rows = []
    for protocol, mechanism in _cells(runs) if len(runs) else []:
        mine = runs[(runs["protocol"] == protocol) & (runs["effect"] == mechanism)]
        planted, knocked = mine[mine["knockout"] != "true"], mine[mine["knockout"] == "true"]
        control = POSITIVE_CONTROL.get(_form(mechanism), "")
        positive = planted[planted["arm"] == control]
        negative = planted[planted["arm"] == NEGATIVE_CONTROL]
        knockout = knocked[knocked["arm"] == control]
        pos, neg, ko = _lift(positive), _lift(negative), _lift(knockout)
        missing = [name for name, n in ((f"{control} (positive control)", pos[2]), ("LR (negative control)", neg[2]),
                                        (f"{control} on the knock-out data (negative control)", ko[2])) if not n]
        failed = []
        if pos[2] and pos[0] < POSITIVE_LIFT:
            failed.append(f"{ARM_LABELS.get(control, control)} captures {pos[0]:.2f} of the lift (< {POSITIVE_LIFT})")
        if neg[2] and neg[0] > NEGATIVE_LIFT:
            failed.append(f"LR captures {neg[0]:.2f} (> {NEGATIVE_LIFT})")
        if ko[2] and ko[0] > NEGATIVE_LIFT:
            failed.append(f"{ARM_LABELS.get(control, control)} on the knock-out data captures {ko[0]:.2f} "
                          f"(> {NEGATIVE_LIFT})")
        reason = "; ".join(failed + ([f"not run: {', '.join(missing)}"] if missing else []))
        data = planted.drop_duplicates("data_seed")
        fm = data["fm_surrogate_auc"]
        rows.append({
            "protocol": protocol, "mechanism": mechanism, "effect": _effect(mechanism), "form": _form(mechanism),
            "data_seeds": " ".join(sorted(str(s) for s in data["data_seed"])), "strength_mean": data["strength"].mean(),
            "oracle_auc": data["oracle_auc"].mean(), "knockout_auc": data["knockout_auc"].mean(),
            "fm_surrogate_auc": fm.mean(),
            "fm_surrogate_lift": ((fm - data["knockout_auc"]) / (data["oracle_auc"] - data["knockout_auc"])).mean(),
            "positive_control": control, "positive_runs": pos[2], "positive_lift_mean": pos[0],
            "positive_lift_std": pos[1], "lr_runs": neg[2], "lr_lift_mean": neg[0], "lr_lift_std": neg[1],
            "knockout_runs": ko[2], "knockout_lift_mean": ko[0], "knockout_lift_std": ko[1],
            "decided": not reason, "reason": reason,
        })
    return pd.DataFrame(rows)


def lift_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (protocol, mechanism, arm) on the planted data: lift captured and test AUC over the runs
    (data seeds x training seeds), the cell's gate; for MIAN with every module, the change in lift when the
    module meant for the effect is removed, and for an ablation the change against the literal MIAN (Welch)."""
    runs = calibrated(records)
    if runs.empty:
        return pd.DataFrame()
    gates = gate_frame(records).set_index(["protocol", "mechanism"])
    rows: list[dict[str, Any]] = []
    for protocol, mechanism in _cells(runs):
        mine = runs[(runs["protocol"] == protocol) & (runs["effect"] == mechanism) & (runs["knockout"] != "true")]
        module = EFFECT_MODULE.get(_effect(mechanism), "")
        removed = mine[mine["arm"] == f"mian_{module}"]["lift"]
        full = mine[mine["arm"] == MIAN_FULL]["lift"]
        control = POSITIVE_CONTROL.get(_form(mechanism), "")
        for arm in present_in_order(list(mine["arm"]), CALIBRATED_ARMS):
            cell = mine[mine["arm"] == arm]
            lift, lift_std, n = _lift(cell)
            auc, auc_std, _ = mean_std(cell["test_auc"])
            ablation = arm.startswith("mian_no_")
            other = full if ablation else (removed if arm.startswith("mian_") else pd.Series(dtype=float))
            _, p = welch(cell["lift"], other) if len(other) else (math.nan, math.nan)
            rows.append({
                "protocol": protocol, "mechanism": mechanism, "arm": arm, "label": ARM_LABELS.get(arm, arm),
                "role": ("positive control" if arm == control else "negative control" if arm == NEGATIVE_CONTROL
                         else ""),
                "removes_its_module": arm == f"mian_{module}", "runs": n,
                "data_seeds": " ".join(sorted(set(str(s) for s in cell["data_seed"]))),
                "lift_mean": lift, "lift_std": lift_std, "auc_mean": auc, "auc_std": auc_std,
                "compared_with": (MIAN_FULL if ablation else f"mian_{module}" if arm.startswith("mian_") and len(other)
                                  else ""),
                "diff_lift": lift - mean_std(other)[0] if len(other) else math.nan, "p": p,
                "not_learned_runs": int((cell["learned"] == "false").sum()),
                "decided": bool(gates.loc[(protocol, mechanism), "decided"]),
            })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ Markdown
def _fmt(mean: float, std: float, n: int, digits: int = 2) -> str:
    if not n or math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({n})" if not math.isnan(std) else f"{mean:.{digits}f} ({n})"


def gate_markdown(gates: pd.DataFrame) -> str:
    """The gate's verdict in words, one line per cell: what effects.md says first."""
    lines = []
    for _, g in gates.iterrows():
        control = ARM_LABELS.get(g["positive_control"], g["positive_control"])
        numbers = (f"{control} captures {_fmt(g['positive_lift_mean'], g['positive_lift_std'], g['positive_runs'])} "
                   f"of the lift, LR {_fmt(g['lr_lift_mean'], g['lr_lift_std'], g['lr_runs'])}, {control} trained "
                   f"on the knock-out data {_fmt(g['knockout_lift_mean'], g['knockout_lift_std'], g['knockout_runs'])}")
        where = f"`{g['mechanism']}` under `{g['protocol']}`"
        if g["decided"]:
            lines.append(f"- Calibrated {where}: the benchmark can decide ({numbers}).")
        else:
            lines.append(f"- **Calibrated {where}: the benchmark cannot decide** ({g['reason']}; {numbers}); its "
                         "MIAN rows are shown, not interpreted.")
    return "\n".join(lines) + "\n" if lines else ""


def mechanisms_markdown(gates: pd.DataFrame, lifts: pd.DataFrame, data: str) -> str:
    calibration = [[g["protocol"], g["mechanism"], g["data_seeds"], f"{g['strength_mean']:.3f}",
                    f"{g['oracle_auc']:.4f}", f"{g['knockout_auc']:.4f}", f"{g['fm_surrogate_auc']:.4f}",
                    f"{g['fm_surrogate_lift']:.2f}", "yes" if g["decided"] else "**cannot decide**"]
                   for _, g in gates.iterrows()]
    body = []
    for _, r in lifts.iterrows():
        lift = _fmt(r["lift_mean"], r["lift_std"], r["runs"])
        if r["not_learned_runs"]:
            lift += f" †{int(r['not_learned_runs'])}/{int(r['runs'])}"
        compared = "–" if not r["compared_with"] else (
            f"{r['diff_lift']:+.2f} vs {ARM_LABELS.get(r['compared_with'], r['compared_with'])}, p "
            + ("n/a" if math.isnan(r["p"]) else f"{r['p']:.2g}"))
        label = r["label"] + (f" ({r['role']})" if r["role"] else "")
        if r["removes_its_module"]:
            label = f"**{label}**"
        body.append([r["protocol"], r["mechanism"], label, lift if r["decided"] else f"({lift})",
                     _fmt(r["auc_mean"], r["auc_std"], r["runs"], 4), compared])
    header_cal = ["protocol", "mechanism", "data seeds", "strength", "oracle AUC", "knock-out AUC",
                  "FM surrogate AUC", "FM surrogate lift", "decided"]
    header = ["protocol", "mechanism", "arm", "lift captured", "test AUC", "change in lift"]
    return "\n".join([
        "## Calibrated mechanisms: one planted effect of one form at a time", "",
        f"Data: {data}.", "", md_table(header_cal, calibration), "",
        "Calibration (benchmark/data/calibrated.py), means over the data seeds run: the strength found by bisection "
        "so that the oracle's expected AUC is 0.70 on a held-out draw; the oracle's and the knock-out's (the effect "
        "removed) test AUC; the best FM-representable surrogate's test AUC and its lift captured (how much of the "
        f"effect an FM-shaped model can reach). Decided: the gate (the positive control >= {POSITIVE_LIFT} of the "
        f"lift, LR and the control on the knock-out data <= {NEGATIVE_LIFT}).", "",
        md_table(header, body), "",
        "Cells: lift captured = (test AUC − knock-out AUC) / (oracle AUC − knock-out AUC), each run against its "
        "own data seed's AUCs, mean ± std over the runs (data seeds × training seeds); in parentheses where the cell "
        "cannot decide (not to be interpreted). Change in lift: for MIAN with every module, against MIAN without "
        "the module meant for the effect (**bold**: IBIM for the sequence, IUIM for user x item, ICIM for context x "
        "item); for an ablation, against the literal MIAN; Welch's two-sided p. †k/n: k of the n runs did not learn "
        "(benchmark/diagnostics.py).", ""])
