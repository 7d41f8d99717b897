"""The tables: their rows and columns (frames, one row per table row, the CSV lines) and the declaration of each
results table (TABLES), from the records of benchmark/report/runs.py."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from benchmark.report.figures import table2_figures, table4_figures, verdict_figures
from benchmark.report.names import (
    ABLATION_LABELS, ABLATIONS, AMAZON, ARM_LABELS, CONTROL_ARMS, DIAGNOSTICS, TABLE_DATASETS, EFFECT_CONTROLS,
    EFFECT_MODULE, EFFECT_VARIANTS, EFFECTS, ENCODER_LABELS, ENCODERS, LEARNED_MARGIN, MODEL_LABELS, MODELS,
    PAPER_ENCODER, ordered, present_in_order,
)
from benchmark.report.render import efficiency_template, readings_template
from benchmark.report.mechanisms import arm_of, effects_head, effects_template, gate_frame, lift_frame
from benchmark.report.sections import build_sections, full_mian_of_table2, paper_numbers, section_template
from benchmark.report.significance import welch_test
from benchmark.report.spec import (
    Built, Context, Part, Row, Section, TableSpec, data_text, literal, protocols_of, run_command,
)
from benchmark.report.stats import best_keys, mean_std, welch
from benchmark.report.tuning import build_tuning, tuning_figures, tuning_template
from benchmark.report.verdict import answer, cells_frame, parts_frame, verdict_of, verdict_page, verdict_runs


def table2_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table2") & (records["dataset"] == dataset)], protocol)
    rows = [Row(m, MODEL_LABELS.get(m, m), runs[runs["model"] == m], paper_numbers(paper, "table2", dataset, m),
                model=m) for m in ordered(list(runs["model"]), MODELS)]
    section = Section("table2", dataset, rows, protocol=protocol)
    mian = next(r for r in rows if r.key == "mian")
    baselines = [r for r in rows if r.key != "mian" and len(r.runs)]
    if len(mian.runs) and baselines:
        best = max(baselines, key=lambda r: mean_std(r.runs["test_auc"])[0])
        section.tests = [welch_test(section, mian, best, m) for m in ("test_auc", "test_logloss")]
        section.notes.append(f"Best baseline by mean test AUC: {best.label}.")
    section.notes += ranking_note(rows)
    return section


def table3_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, baseline: str,
                   protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table3") & (records["dataset"] == dataset)], protocol)
    mian = runs[runs["model"] == "mian"]
    rows = [Row(v, ABLATION_LABELS.get(v, v), mian[mian["variant"] == v],
                paper_numbers(paper, "table3", dataset, "mian", v), model="mian", variant=v)
            for v in ordered(list(mian["variant"]), ABLATIONS)]
    if len(mian) and not len(rows[0].runs):
        rows[0].runs, rows[0].source = full_mian_of_table2(records, dataset, protocol), "table2 runs"
    own = runs[runs["model"] == baseline]
    source = "table3 runs"
    if own.empty:
        own = literal(records[(records["table"] == "table2") & (records["dataset"] == dataset)
                              & (records["model"] == baseline)], protocol)
        source = "table2 runs"
    reported = (paper_numbers(paper, "table3", dataset, baseline) or paper_numbers(paper, "table2", dataset, baseline))
    base = Row(baseline, f"{MODEL_LABELS.get(baseline, baseline)} (baseline)", own, reported, model=baseline,
               source=source)
    rows.append(base)
    section = Section("table3", dataset, rows, compare_to="full", protocol=protocol)
    full = rows[0]
    if len(full.runs) and len(base.runs):
        section.tests = [welch_test(section, full, base, m) for m in ("test_auc", "test_logloss")]
    section.tests += [welch_test(section, r, full, "test_auc") for r in rows[1:-1] if len(r.runs) and len(full.runs)]
    section.notes.append(f"The {base.label} row comes from the {source} of this dataset "
                         f"(`--table3-baseline` picks the model; table3 sweeps only MIAN's ablations).")
    return section


def table4_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table4") & (records["dataset"] == dataset)
                           & (records["model"] == "mian")], protocol)
    rows = [Row(e, ENCODER_LABELS.get(e, e), runs[runs["encoder"] == e],
                paper_numbers(paper, "table4", dataset, "mian", PAPER_ENCODER.get(e, e)), model="mian", encoder=e)
            for e in ordered(list(runs["encoder"]), ENCODERS)]
    if len(runs) and not len(rows[0].runs):
        rows[0].runs, rows[0].source = full_mian_of_table2(records, dataset, protocol), "table2 runs"
    section = Section("table4", dataset, rows, compare_to="pre_ln", protocol=protocol)
    section.tests = [welch_test(section, rows[0], r, m) for r in rows[1:] for m in ("test_auc", "test_logloss")
                     if len(r.runs) and len(rows[0].runs)]
    return section


def ranking_note(rows: list[Row]) -> list[str]:
    """Our ordering of the models by mean test AUC beside the paper's, with Kendall's tau over both."""
    both = [r for r in rows if len(r.runs) and r.paper]
    if len(both) < 3:
        return []
    ours = sorted(both, key=lambda r: -mean_std(r.runs["test_auc"])[0])
    theirs = sorted(both, key=lambda r: -r.paper["auc"])
    tau, p = stats.kendalltau([mean_std(r.runs["test_auc"])[0] for r in both], [r.paper["auc"] for r in both])
    return [f"Ranking by AUC, ours: {' > '.join(r.label for r in ours)}; paper: "
            f"{' > '.join(r.label for r in theirs)}; Kendall's tau {tau:.2f} (p {p:.3f})."]


def effects_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (planted effect, variant) of the `effects` experiment: test AUC over seeds, the data's oracle
    AUC, and the change against the full MIAN on the same data with Welch's test."""
    effects = records[(records["table"] == "effects") & (records["model"] == "mian")
                      & (records["dataset"] != "calibrated")]  # the calibrated data's tables: report/mechanisms.py
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
            rows.append({"protocol": protocol, "effect": effect, "variant": variant, "removes_its_module": EFFECT_MODULE.get(effect) == variant,
                         "runs": n, "auc_mean": mean, "auc_std": std, "logloss_mean": mean_std(cell["test_logloss"])[0],
                         "oracle_auc": oracle,
                         "diff_vs_full": mean - full_mean if variant != "full" else math.nan, "t": t, "p": p,
                         "not_learned_runs": int((cell["learned"] == "false").sum())})
    return pd.DataFrame(rows, columns=["protocol", "effect", "variant", "removes_its_module", "runs", "auc_mean", "auc_std",
                                       "logloss_mean", "oracle_auc", "diff_vs_full", "t", "p", "not_learned_runs"])


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
                "diff_vs_module_removed": mean - mean_std(removed)[0] if is_mian else math.nan, "p_vs_module_removed": p,
                "not_learned_runs": int((cell["learned"] == "false").sum()),
                **{f"{d}_mean": mean_std(cell[d])[0] for d in ("diag_train_loss_ratio", "diag_ibim_entropy",
                                                               "diag_ibim_max_weight")},
            })
    return pd.DataFrame(rows)


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


def efficiency_frame(records: pd.DataFrame, paper_eff: pd.DataFrame, dataset: str, command: str) -> pd.DataFrame:
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


# ---------------------------------------------------------------------------------------- the declarations


def build_efficiency(ctx: Context, spec: TableSpec) -> Built:
    used = spec.reads(ctx)
    parts = []
    for dataset in ordered(list(used["dataset"]), TABLE_DATASETS):
        command = spec.command_for(dataset)
        parts.append(Part(efficiency_frame(ctx.records, ctx.paper_eff, dataset, command), dataset,
                          data_text(used[used["dataset"] == dataset]), command))
    return Built(parts, used)


def build_effects(ctx: Context, spec: TableSpec) -> Built | None:
    used = spec.reads(ctx)
    if not len(used):
        return None
    parts, files = [], {}
    mechanisms = used[used["dataset"] == "calibrated"]
    if len(mechanisms):  # the calibrated data (report/mechanisms.py): lift captured behind each cell's gate
        gates = gate_frame(ctx.records)
        parts.append(Part(lift_frame(ctx.records), dataset="calibrated", data=data_text(mechanisms),
                          extra={"gates": gates}))
        files["effects_gate"] = gates
    legacy = used[used["dataset"] != "calibrated"]
    if len(legacy):  # the first generator's runs (benchmark/data/synthetic.py)
        controls = controls_frame(ctx.records)
        parts.append(Part(effects_frame(ctx.records), data=data_text(legacy), extra={"controls": controls}))
        if len(controls):
            files["effects_controls"] = controls
    return Built(parts, used, files=files)


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


def build_verdict(ctx: Context, spec: TableSpec) -> Built | None:
    """The claims of benchmark/report/verdict/: one CSV row per cell (verdict.csv), one per part
    (verdict_parts.csv)."""
    if not len(spec.reads(ctx)):
        return None
    verdict = verdict_of(ctx)
    return Built([Part(cells_frame(verdict), extra={"verdict": verdict})], spec.reads(ctx),
                 files={"verdict_parts": parts_frame(verdict)})


def _table3_command(dataset: str) -> str:
    """On the Amazon data Table 3's baseline row needs the table2 sweep too."""
    command = run_command("table3", dataset)
    return f"{run_command('table2', dataset)} && {command}" if dataset in AMAZON else command


TABLES = (
    TableSpec("tuning", "The tuning track: an equal budget per arm, tuned on validation, tested once",
              reads=lambda ctx: ctx.table("tune"), build=build_tuning, template=tuning_template,
              count_older=False, figures=tuning_figures),
    TableSpec("table2", "Table 2: all models, test AUC / Logloss / gAUC", reads=lambda ctx: ctx.table("table2"),
              build=build_sections, template=section_template,
              sections=lambda ctx, dataset, protocol: table2_section(ctx.records, ctx.paper, dataset, protocol),
              figures=table2_figures),
    TableSpec("table3", "Table 3: MIAN ablations, test AUC / Logloss / gAUC",
              reads=lambda ctx: pd.concat([ctx.table("table3"), ctx.table("table2", model=ctx.baseline)]),
              build=build_sections, template=section_template,
              sections=lambda ctx, dataset, protocol: table3_section(ctx.records, ctx.paper, dataset, ctx.baseline,
                                                                     protocol),
              command=_table3_command, provenance_from_rows=True),
    TableSpec("table4", "Table 4: MIAN's behaviour encoder, test AUC / Logloss / gAUC",
              reads=lambda ctx: ctx.table("table4"), build=build_sections, template=section_template,
              sections=lambda ctx, dataset, protocol: table4_section(ctx.records, ctx.paper, dataset, protocol),
              figures=table4_figures),
    TableSpec("efficiency", "Efficiency (Section 4.5): training seconds per epoch",
              reads=lambda ctx: ctx.table("efficiency"), build=build_efficiency, template=efficiency_template),
    TableSpec("effects", "Does each MIAN module model the effect it is meant to? (synthetic, one planted effect at a "
              "time)", reads=lambda ctx: ctx.table("effects"), build=build_effects, template=effects_template,
              head=effects_head),
    TableSpec("readings", "MIAN under the readings of its attention score (Eq. 8), test AUC",
              reads=lambda ctx: ctx.table("readings"), build=build_readings, template=readings_template,
              count_older=False),
    TableSpec("verdict", "Does MIAN reproduce? The paper's claims where it made them (test AUC)",
              reads=verdict_runs, build=build_verdict, template=lambda part: verdict_page(part.extra["verdict"]),
              head=lambda parts: answer(parts[0].extra["verdict"]), count_older=False, figures=verdict_figures),
)
