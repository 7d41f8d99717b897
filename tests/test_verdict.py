"""results/verdict.md (benchmark/report/verdict/): each outcome on hand-made numbers, composite claims, the
primary family as declared, the validity gate and duplicate arms, and the page from hand-made runs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.report import names as report_names
from benchmark.report.stats import detectable_effect, seeds_needed, welch_interval
from benchmark.report.verdict import (
    CANNOT_DECIDE, CONSISTENT, CONTRADICTED, NOT_SIGNIFICANT, NOT_TESTED, REFUSED, SAME_RUNS, SMALLER,
    UNDERPOWERED, PartTest, Primary, answer, judge_part, load_primary, measure, verdict_cells, verdict_page,
)
from benchmark.report.verdict.judge import deciding
from benchmark.report.runs import read_paper
from benchmark import PAPER_DIR

PAPER = read_paper(PAPER_DIR)[0]
PRIMARY = load_primary()


# ------------------------------------------------------------------------------------------- the statistics
def test_welch_interval_matches_scipy_and_refuses_an_arm_without_spread() -> None:
    a, b = np.array([0.78, 0.781, 0.779, 0.7795]), np.array([0.76, 0.762, 0.759])
    c = welch_interval(a, b)
    assert c.effect == pytest.approx(a.mean() - b.mean())
    assert c.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert c.low < c.effect < c.high and c.low > 0
    assert math.isnan(welch_interval(a, b[:1]).p)
    refused = welch_interval(a, np.array([0.76, 0.76, 0.76]))  # identical runs: no variance to test against
    assert math.isnan(refused.p) and math.isnan(refused.low) and refused.effect == pytest.approx(a.mean() - 0.76)


def test_the_smallest_detectable_effect_is_what_the_seeds_needed_detect() -> None:
    sd = 0.003
    effect = detectable_effect(sd, 3, 3)
    assert seeds_needed(effect, sd) == 3 and seeds_needed(effect * 0.9, sd) > 3
    assert detectable_effect(sd, 10, 10) < effect < detectable_effect(sd, 2, 2)
    assert math.isnan(detectable_effect(sd, 1, 3)) and math.isnan(detectable_effect(0.0, 3, 3))


# ------------------------------------------------------------------------------- outcomes, hand-made numbers
def part(effect: float, low: float, high: float, p_adjusted: float, paper: float, n: int = 3) -> PartTest:
    runs = pd.DataFrame({"run_id": ["r"], "seed": [0], "learned": ["true"], "model": ["lr"], "test_auc": [0.7]})
    return PartTest("a − b", runs, runs, paper=paper, effect=effect, low=low, high=high, p=p_adjusted,
                    p_adjusted=p_adjusted, n_a=n, n_b=n)


@pytest.mark.parametrize(("numbers", "outcome"), [
    ((+0.010, +0.006, +0.014, 0.01, 0.005), CONSISTENT),
    ((-0.014, -0.018, -0.010, 0.002, 0.003), CONTRADICTED),
    # MovieLens C3 as the reviewer read it: the interval excludes the paper's +0.0043: smaller, not inconclusive
    ((-0.0013, -0.0053, +0.0026, 1.0, 0.0043), SMALLER),
    ((+0.002, -0.006, +0.010, 0.6, 0.004), UNDERPOWERED),  # holds both 0 and the paper's effect
    ((+0.002, -0.006, +0.010, 0.6, math.nan), NOT_SIGNIFICANT),  # the paper gives no size here
])
def test_each_outcome_on_hand_made_numbers(numbers: tuple[float, ...], outcome: str) -> None:
    assert judge_part(part(*numbers)) == outcome


def test_an_arm_without_runs_or_spread_is_not_judged() -> None:
    empty = part(math.nan, math.nan, math.nan, math.nan, 0.004)
    empty.a = empty.a.iloc[:0]
    assert judge_part(empty) == NOT_TESTED
    flat = measure("a − b", _runs([0.76, 0.76, 0.76]), _runs([0.75, 0.751, 0.749]), 0.004)
    assert math.isnan(flat.p) and judge_part(flat) == REFUSED


def test_a_composite_with_one_significantly_negative_part_is_contradicted() -> None:
    parts = [part(+0.010, +0.006, +0.014, 0.01, 0.01), part(+0.002, -0.010, +0.014, 0.9, 0.01),
             part(-0.190, -0.200, -0.180, 7.8e-10, 0.01)]
    for p in parts:
        p.outcome = judge_part(p)
    outcome, shown = deciding(parts)
    assert outcome == CONTRADICTED and shown is parts[2]  # the interval and p shown are those of the same part
    outcome, shown = deciding(parts[:2])
    assert outcome == UNDERPOWERED
    for p in parts[:2]:
        p.outcome = CONSISTENT
    assert deciding(parts[:2]) == (CONSISTENT, parts[1])  # consistent only when every part is: the weakest shown


# ---------------------------------------------------------------------------------------- hand-made columns
def _runs(aucs: list[float], **fields: object) -> pd.DataFrame:
    return pd.DataFrame([{"test_auc": auc, "seed": seed, "learned": "true", "run_id": f"{id(aucs)}-{seed}",
                          "model": "lr", "variant": "default", "encoder": "", **fields}
                         for seed, auc in enumerate(aucs)])


def _records(cells: dict[tuple[str, str, str], list[float]], dataset: str = "movielens", protocol: str = "shared",
             reading: str = "", table: str = "table2", val: dict[str, float] | None = None) -> pd.DataFrame:
    """Hand-made runs: {(model, variant, encoder): test AUCs, one per seed}; validation AUC from `val`, else the
    test AUC."""
    rows = []
    for (model, variant, encoder), aucs in cells.items():
        for seed, auc in enumerate(aucs):
            rows.append({"table": table, "dataset": dataset, "protocol": protocol, "model": model,
                         "variant": variant, "encoder": encoder, "reading": reading if model == "mian" else "",
                         "seed": seed, "test_auc": auc, "best_val_auc": (val or {}).get(model, auc),
                         "learned": "true", "start_time": f"{seed}", "git_commit": "abc1234",
                         "config": f"{model}-{variant}-{encoder}-{reading}-{seed}",
                         "run_id": f"{dataset}-{protocol}-{reading}-{model}-{variant}-{encoder}-{seed}",
                         "diag_ibim_entropy": math.nan, "diag_ln_gain_min": math.nan, "effect": "",
                         "oracle_auc": math.nan})
    return pd.DataFrame(rows)


MOVIELENS = {
    ("mian", "full", "pre_ln"): [0.760, 0.761, 0.759],
    ("mian", "full", "post_ln"): [0.750, 0.751, 0.749],
    ("mian", "full", "none"): [0.755, 0.756, 0.754],
    ("mian", "no_iuim_icim", "pre_ln"): [0.740, 0.741, 0.739],  # C3 is no claim on the commercial stand-in
    ("xdeepfm", "default", ""): [0.775, 0.776, 0.774],
    ("deepfm", "default", ""): [0.768, 0.769, 0.767],
    ("din", "default", ""): [0.746, 0.745, 0.747],
}


def _cell(verdict, table: str, claim: str, dataset: str = "movielens", reading: str = ""):
    return next(c for c in verdict.cells if (c.table, c.claim, c.dataset, c.reading) == (table, claim, dataset,
                                                                                           reading))


def test_the_primary_family_is_exactly_the_declared_cells() -> None:
    synthetic = _records(MOVIELENS, dataset="synthetic")
    reading = _records({("mian", "full", "pre_ln"): [0.70, 0.71, 0.72]}, reading="readout=product")
    verdict = verdict_cells(pd.concat([_records(MOVIELENS), synthetic, reading], ignore_index=True), PAPER, PRIMARY)
    primary = verdict.table("primary")
    assert [(c.claim, c.dataset) for c in primary] == [(claim, d) for d in PRIMARY.datasets
                                                      for claim in PRIMARY.claims[d]]
    assert {c.claim for c in primary if c.dataset == "movielens"} == {"C1", "C5"}  # no C3, C6 on MovieLens
    assert not any(c.dataset == "synthetic" for c in verdict.cells if c.table != "mechanism")
    tested = [p for c in primary for p in c.parts if not math.isnan(p.p)]
    assert len(tested) == verdict.family_size("primary") == 3  # C1's one part and C5's two
    raw = sorted(p.p for p in tested)
    assert min(p.p_adjusted for p in tested) == pytest.approx(min(1.0, 3 * raw[0]))  # Holm over these alone
    robust = _cell(verdict, "robustness", "C1", reading="readout=product")
    assert robust.family != "primary" and verdict.family_size(robust.family) == 1
    assert _cell(verdict, "primary", "C1").outcome == CONTRADICTED
    assert _cell(verdict, "primary", "C5").outcome == CONTRADICTED  # none beats Post-LN, significantly
    assert [c.outcome for c in primary if c.dataset != "movielens"] == [NOT_TESTED] * (len(primary) - 2)


def test_c1_takes_its_baseline_from_validation_auc_not_from_the_test() -> None:
    # DeepFM has the best test AUC, xDeepFM the best validation AUC: xDeepFM is the comparison
    verdict = verdict_cells(_records(MOVIELENS, val={"xdeepfm": 0.80, "deepfm": 0.79, "din": 0.70}), PAPER, PRIMARY)
    c1 = _cell(verdict, "primary", "C1")
    assert c1.shown.label.startswith("MIAN − xDeepFM")
    assert c1.shown.effect == pytest.approx(0.760 - 0.775)
    assert c1.shown.paper == pytest.approx(0.7674 - 0.7646)  # MIAN minus the paper's own best (DCN), commercial


def test_c2_is_removing_ibim_against_every_other_setting_with_the_paper_sizes() -> None:
    mian = {("mian", v, "pre_ln"): [0.80 + d, 0.801 + d, 0.799 + d] for v, d in
            (("full", 0.0), ("no_iuim", -0.004), ("no_icim", -0.001), ("no_gim", -0.004), ("no_iuim_icim", -0.007),
             ("no_ibim", 0.0))}
    verdict = verdict_cells(_records(mian, dataset="movielens_seq"), PAPER, PRIMARY)
    c2 = _cell(verdict, "primary", "C2", dataset="movielens_seq")
    assert [p.label for p in c2.parts] == ["w/o IUIM − w/o IBIM", "w/o ICIM − w/o IBIM", "w/o GIM − w/o IBIM",
                                           "w/o IUIM & ICIM − w/o IBIM"]
    assert [round(p.paper, 4) for p in c2.parts] == [0.0032, 0.0059, 0.0029, 0.0003]  # Electronics, Table 3
    assert [round(p.paper_also, 4) for p in c2.parts] == [0.0033, 0.0040, 0.0035, 0.0012]  # Books beside it
    assert c2.outcome == CONTRADICTED  # removing IBIM costs nothing, the others cost up to 0.007
    c3 = _cell(verdict, "primary", "C3", dataset="movielens_seq")
    assert c3.shown.paper == pytest.approx(0.8913 - 0.8846)


def test_a_run_that_did_not_learn_is_left_out_and_counted() -> None:
    records = _records(MOVIELENS)
    stuck = records[(records["model"] == "mian") & (records["encoder"] == "pre_ln")
                    & (records["variant"] == "full")].iloc[[0]].assign(seed=3, test_auc=0.5, learned="false",
                                                                       run_id="stuck", config="stuck")
    verdict = verdict_cells(pd.concat([records, stuck], ignore_index=True), PAPER, PRIMARY)
    c1 = _cell(verdict, "primary", "C1")
    assert c1.shown.n_a == 3 and c1.shown.effect == pytest.approx(0.760 - 0.775)  # 0.5 is not in the mean
    assert c1.gate.not_learned == 1 and "1 run(s) did not learn, left out" in c1.gate.text()


def test_the_gate_reports_inactive_mechanisms() -> None:
    records = _records(MOVIELENS)
    records.loc[records["model"] == "mian", ["diag_ibim_entropy", "diag_ln_gain_min"]] = [0.99, 0.2]
    c5 = _cell(verdict_cells(records, PAPER, PRIMARY), "primary", "C5")
    assert c5.gate.ibim_inactive and c5.gate.ln_collapsed
    assert "IBIM inactive (weight entropy 0.99" in c5.gate.text() and "LayerNorm gains collapsed" in c5.gate.text()


def test_a_duplicate_arm_counts_once() -> None:
    shared = _records(MOVIELENS)
    # under `library` only the baselines' settings change: MIAN's runs there are the same configs and seeds
    library = _records(MOVIELENS, protocol="library").assign(
        run_id=lambda f: f["run_id"] + "-again",
        config=lambda f: f["config"].where(f["model"] == "mian", f["config"] + "-library"))
    verdict = verdict_cells(pd.concat([shared, library], ignore_index=True), PAPER, PRIMARY)
    c5 = next(c for c in verdict.table("robustness") if c.claim == "C5" and c.protocol == "library")
    assert c5.outcome == SAME_RUNS and all(p.duplicate_of for p in c5.parts)
    assert all(math.isnan(p.p_adjusted) for p in c5.parts)
    c1 = next(c for c in verdict.table("robustness") if c.claim == "C1" and c.protocol == "library")
    assert c1.outcome == CONTRADICTED and not c1.shown.duplicate_of  # other baselines: another test
    assert verdict.family_size(c1.family) == 1


def test_a_mechanism_check_whose_controls_did_not_learn_cannot_decide() -> None:
    def effects(effect: str, control_auc: float) -> pd.DataFrame:
        module = report_names.EFFECT_MODULE[effect]
        runs = _records({("mian", "full", "pre_ln"): [0.62, 0.621, 0.619], ("mian", module, "pre_ln"): [0.60, 0.601,
                                                                                                      0.599],
                         ("deepfm", "default", ""): [control_auc] * 2 + [control_auc + 0.001]},
                        dataset="synthetic", table="effects")
        return runs.assign(effect=effect, oracle_auc=0.72, run_id=lambda f: f["run_id"] + effect)

    verdict = verdict_cells(pd.concat([effects("context", 0.70), effects("user", 0.60)], ignore_index=True), PAPER,
                            PRIMARY)
    mechanism = {c.check.split(":")[0]: c for c in verdict.table("mechanism")}
    assert mechanism["context effect"].outcome == CONSISTENT  # DeepFM within 0.05 of the oracle: decidable
    assert mechanism["user effect"].outcome == CANNOT_DECIDE  # no control learned the user effect
    assert "no positive control learned the effect" in mechanism["user effect"].note
    assert verdict.family_size("mechanism") == 2 and verdict.family_size("primary") == 0


def test_the_declaration_agrees_with_the_report_and_scopes_the_claims() -> None:
    assert isinstance(PRIMARY, Primary) and PRIMARY.protocol == "shared" and PRIMARY.reading == ""
    assert PRIMARY.paper_dataset == {d: report_names.PAPER_DATASET[d] for d in PRIMARY.datasets}
    assert "synthetic" not in PRIMARY.datasets
    for dataset in ("movielens_seq", "electronics", "books"):
        assert PRIMARY.claims[dataset] == ("C1", "C2", "C3", "C4", "C5", "C6")
    assert PRIMARY.claims["movielens"] == ("C1", "C5")


def test_the_page_answers_first_and_names_its_columns_in_words() -> None:
    records = pd.concat([_records(MOVIELENS), _records({("mian", "full", "pre_ln"): [0.70, 0.71]},
                                                       reading="readout=product")], ignore_index=True)
    verdict = verdict_cells(records, PAPER, PRIMARY)
    top = answer(verdict)
    assert len(top.strip().splitlines()) == 5 and top.startswith("1. **Does MIAN reproduce?**")
    page = verdict_page(verdict)
    assert "## Primary cells" in page and "## Robustness" in page and "figures/verdict.png" in page
    assert "| MovieLens-1M | shared | readout product |" in page  # words, not tag strings
    assert "readout=product" not in page.split("## Provenance")[0].split("## Robustness")[1].split("\n\n", 2)[2]
    assert "`abc1234`" in page
