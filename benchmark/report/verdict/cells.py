"""The verdict's cells: the primary family (conf/verdict/primary.yaml), the robustness columns and the mechanism
checks of the effects experiment, each tested, corrected within its own family and judged.

Families (Holm's correction within each, never across):
    primary      every part of every declared (claim, real dataset) cell, under the declared protocol and reading
    robustness   one family per other (dataset, protocol, reading) column of a real dataset
    mechanism    every check of the effects experiment (synthetic data, one planted effect at a time)
A robustness part whose arms are the same configs and seeds as a part already counted (e.g. MIAN's runs under
`library`, whose settings differ from `shared` only for the baselines) is the same test: it is shown as such and
counts in no family a second time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from benchmark.report.names import DATASET_LABELS, EFFECT_CONTROLS, EFFECT_MODULE, EFFECTS, LEARNED_MARGIN
from benchmark.report.names import ordered, present_in_order
from benchmark.report.stats import holm
from benchmark.report.verdict.claims import (
    CLAIMS, NON_SEQUENTIAL, SEQUENTIAL, Arm, Primary, paper_effect, parts_of,
)
from benchmark.report.verdict.judge import CANNOT_DECIDE, Gate, PartTest, deciding, gate_of, judge_part, measure

SOURCES = ("table2", "table3", "table4", "readings", "sensitivity")  # experiments whose runs test the claims
RUN_KEY = ["dataset", "protocol", "model", "variant", "encoder", "reading", "seed"]
# The module each planted effect is meant for, as the claim whose mechanism it checks.
MECHANISM_CLAIM = {"sequence": "C2", "user": "C3", "context": "C3"}


@dataclass
class Cell:
    table: str  # primary | robustness | mechanism
    family: str  # the Holm family its parts belong to
    claim: str
    dataset: str
    protocol: str
    reading: str
    parts: list[PartTest]
    check: str = ""  # what it checks, in words (the claim's text, or a mechanism check's)
    paper_dataset: str = ""
    also_shown: str = ""  # a second paper dataset shown beside the first
    outcome: str = ""
    shown: PartTest | None = None  # the part that decides the outcome
    gate: Gate = field(default_factory=Gate)
    note: str = ""

    @property
    def runs(self) -> pd.DataFrame:
        frames = [f for p in self.parts for f in (p.a, p.b) if len(f)]
        return pd.concat(frames).drop_duplicates("run_id") if frames else pd.DataFrame(columns=["run_id"])

    @property
    def column(self) -> tuple[str, str, str]:
        return self.dataset, self.protocol, self.reading


def one_per_seed(records: pd.DataFrame) -> pd.DataFrame:
    """One run per dataset, protocol, model, variant, encoder, reading and seed (the latest): a seed run in two
    tables (e.g. MIAN's full model in table2, table3 and table4) counts once."""
    runs = records[records["table"].isin(SOURCES)]
    return runs.sort_values(["start_time", "run_id"], kind="stable").drop_duplicates(RUN_KEY, keep="last")


def claim_cell(table: str, family: str, claim: str, dataset: str, protocol: str, reading: str,
               column: pd.DataFrame, paper: pd.DataFrame, primary: Primary) -> Cell:
    """A claim on one column's runs (one dataset and protocol, MIAN read as `reading`)."""
    paper_dataset, also = primary.paper_dataset.get(dataset, ""), primary.also_shown.get(dataset, "")
    parts = []
    for spec in parts_of(claim, column):
        part = measure(spec.label, spec.a.runs(column, reading), spec.b.runs(column, reading),
                       paper_effect(paper, paper_dataset, claim, spec))
        part.paper_also = paper_effect(paper, also, claim, spec) if also else math.nan
        parts.append(part)
    cell = Cell(table, family, claim, dataset, protocol, reading, parts, CLAIMS[claim], paper_dataset, also)
    cell.note = "no runs" if column.empty else ""
    return cell


def real_columns(runs: pd.DataFrame, dataset: str, primary: Primary) -> list[tuple[str, str]]:
    """The (protocol, reading) columns of a real dataset's runs, the declared primary one first."""
    mine = runs[runs["dataset"] == dataset]
    columns = [(primary.protocol, primary.reading)]
    for protocol in ordered(list(mine["protocol"]), (primary.protocol,)):
        here = mine[mine["protocol"] == protocol]
        if here.empty:
            continue
        readings = sorted(set(here[here["model"] == "mian"]["reading"]) | {""})
        columns += [(protocol, r) for r in readings if (protocol, r) not in columns]
    return columns


def mechanism_cells(records: pd.DataFrame) -> list[Cell]:
    """The effects experiment's checks per protocol and planted effect: does removing the module meant for the
    effect cost AUC (each MIAN reading against the literal ablation), and, on the sequence effect, do DIN and
    DIEN beat the non-sequential models?"""
    effects = records[records["table"] == "effects"]
    cells = []
    for protocol in ordered(list(effects["protocol"]), ("shared",)):
        for effect in present_in_order(list(effects[effects["protocol"] == protocol]["effect"]), EFFECTS):
            group = effects[(effects["protocol"] == protocol) & (effects["effect"] == effect)]
            passed, why = effect_gate(group, effect)
            module = EFFECT_MODULE.get(effect, "")
            readings = sorted(set(group[(group["model"] == "mian") & (group["variant"] == "full")]["reading"]))
            checks = [(MECHANISM_CLAIM.get(effect, ""), r, f"removing {module.removeprefix('no_').upper()} costs AUC",
                       [(Arm("mian"), Arm("mian", module))]) for r in readings if module]
            if effect == "sequence":
                pairs = [(Arm(s), Arm(n)) for s in SEQUENTIAL for n in NON_SEQUENTIAL]
                checks.append(("C6", "", "DIN and DIEN beat the non-sequential models", pairs))
            for claim, reading, text, pairs in checks:
                parts = [measure(f"{a.label} − {b.label}", a.runs(group, reading), b.runs(group, ""), math.nan)
                         for a, b in pairs]
                parts = [p for p in parts if p.tested]
                if not parts:
                    continue
                cell = Cell("mechanism", "mechanism", claim, "synthetic", protocol, reading, parts,
                            f"{effect} effect: {text}")
                cell.note = "" if passed else why
                cells.append(cell)
    return cells


def effect_gate(group: pd.DataFrame, effect: str) -> tuple[bool, str]:
    """Can this data decide a mechanism? Only when a positive control (a model known to express the planted
    effect) learned it: test AUC within LEARNED_MARGIN of the generator's oracle AUC."""
    oracle = float(group["oracle_auc"].mean())
    controls = group[group["model"].isin(EFFECT_CONTROLS.get(effect, ()))]
    if controls.empty or math.isnan(oracle):
        return False, "no positive control was run on this data"
    best = controls.groupby("model")["test_auc"].mean()
    if oracle - float(best.max()) > LEARNED_MARGIN:
        return False, (f"no positive control learned the effect (best {best.idxmax()} {best.max():.3f}, oracle "
                       f"{oracle:.3f})")
    return True, ""


def adjust(parts: list[PartTest]) -> None:
    """Holm's correction over one family, in place; parts without a p (or repeating a counted test) stay out."""
    counted = [p for p in parts if not p.duplicate_of and not math.isnan(p.p)]
    for part, adjusted in zip(counted, holm([p.p for p in counted])):
        part.p_adjusted = adjusted


def judge_cell(cell: Cell) -> None:
    for part in cell.parts:
        part.outcome = judge_part(part)
    cell.outcome, cell.shown = deciding(cell.parts)
    if cell.table == "mechanism" and cell.note:
        cell.outcome = CANNOT_DECIDE
    runs = cell.runs
    cell.gate = gate_of(runs) if len(runs) else Gate()
    cell.gate.no_spread = any(p.gate.no_spread for p in cell.parts)
    untested = sum(not p.tested for p in cell.parts)
    if untested and untested < len(cell.parts):
        cell.note = f"{untested} of {len(cell.parts)} parts without runs"
    if any(p.tested and not (p.n_a and p.n_b) for p in cell.parts):
        cell.note = "every run of an arm did not learn"


@dataclass
class Verdict:
    cells: list[Cell]
    primary: Primary

    def table(self, name: str) -> list[Cell]:
        return [c for c in self.cells if c.table == name]

    def family_size(self, family: str) -> int:
        return sum(1 for c in self.cells if c.family == family for p in c.parts if p.p_adjusted == p.p_adjusted)


def verdict_cells(records: pd.DataFrame, paper: pd.DataFrame, primary: Primary) -> Verdict:
    """Every cell of the verdict, tested, corrected and judged (module docstring)."""
    runs = one_per_seed(records[records["dataset"].isin(primary.datasets)])
    cells: list[Cell] = []
    for dataset in primary.datasets:
        mine = runs[runs["dataset"] == dataset]
        for protocol, reading in real_columns(runs, dataset, primary):
            is_primary = (protocol, reading) == (primary.protocol, primary.reading)
            table = "primary" if is_primary else "robustness"
            family = "primary" if is_primary else f"{dataset} / {protocol} / {reading or 'literal'}"
            column = mine[mine["protocol"] == protocol]
            for claim in CLAIMS:
                if not primary.applies(claim, dataset) or (claim == "C6" and reading):
                    continue  # C6 has no MIAN in it: one cell per dataset and protocol, under the literal reading
                cells.append(claim_cell(table, family, claim, dataset, protocol, reading, column, paper, primary))
    seen: dict[tuple, str] = {}
    for cell in cells:  # primary first: a robustness part that repeats a counted test is not counted again
        for part in cell.parts:
            if not part.n_a or not part.n_b:
                continue
            label = f"{DATASET_LABELS.get(cell.dataset, cell.dataset)}, {cell.family}"
            part.duplicate_of = seen.get(part.identity, "")
            seen.setdefault(part.identity, label)
    cells += mechanism_cells(records)
    for family in dict.fromkeys(c.family for c in cells):
        adjust([p for c in cells if c.family == family for p in c.parts])
    for cell in cells:
        judge_cell(cell)
    return Verdict(cells, primary)
