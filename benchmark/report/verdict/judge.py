"""One part's test, its outcome against the paper's size, a composite claim's outcome, and the validity gate.

Outcomes, per part (a - b in mean test AUC, the claim's direction positive; p adjusted over the part's family):
    consistent                 the effect in the paper's direction, adjusted p < ALPHA
    contradicted               significant in the other direction
    smaller than the paper's   not significant, and the 95% interval lies below the paper's effect
    underpowered               not significant, and the interval holds both 0 and the paper's effect (or a side
                               has fewer than two runs): the seeds per arm that would decide it are given
    not significant            not significant where the paper gives no size to compare with
    refused                    an arm has no spread (identical results): no p-value
    not tested                 an arm has no runs
A composite claim (several parts) is contradicted when any part is, consistent only when every part is; otherwise
the first that applies of: smaller than the paper's, not tested, refused, underpowered, not significant.

The gate: runs that did not learn (tag `learned=false`: training loss ended at the base-rate entropy) are left out
of the test and counted; a cell with MIAN arms reports whether their mechanisms were active (IBIM's weight
entropy, LayerNorm gain RMS: benchmark/diagnostics.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.report.stats import ALPHA, detectable_effect, pooled_std, seeds_needed, welch_interval

CONSISTENT, CONTRADICTED = "consistent", "contradicted"
SMALLER, UNDERPOWERED, NOT_SIGNIFICANT = "smaller than the paper's", "underpowered", "not significant"
REFUSED, NOT_TESTED = "refused", "not tested"
SAME_RUNS = "same runs"  # a robustness part whose runs are a test already counted: not tested twice
CANNOT_DECIDE = "the benchmark cannot decide"  # a mechanism check whose gate failed
IBIM_UNIFORM = 0.95  # IBIM's weight entropy over its maximum at or above this: the attention is uniform
LN_COLLAPSED = 0.5  # a LayerNorm gain's RMS below half its initial 1.0: collapsed by the weight penalty


@dataclass
class Gate:
    """What the validity gate found in a cell's arms."""
    not_learned: int = 0
    ibim_entropy: float = math.nan  # mean over the MIAN runs that have IBIM
    ln_gain: float = math.nan  # mean over the MIAN runs with a Transformer of their smallest gain RMS
    mian: bool = False  # the cell has MIAN arms whose mechanisms matter
    no_spread: bool = False

    @property
    def ibim_inactive(self) -> bool:
        return self.ibim_entropy >= IBIM_UNIFORM

    @property
    def ln_collapsed(self) -> bool:
        return self.ln_gain < LN_COLLAPSED

    def text(self) -> str:
        notes = []
        if self.not_learned:
            notes.append(f"{self.not_learned} run(s) did not learn, left out")
        if self.no_spread:
            notes.append("an arm has no spread: no p-value")
        if self.ibim_inactive:
            notes.append(f"IBIM inactive (weight entropy {self.ibim_entropy:.2f} of its maximum)")
        if self.ln_collapsed:
            notes.append(f"LayerNorm gains collapsed (RMS {self.ln_gain:.2f})")
        if self.mian and math.isnan(self.ibim_entropy) and math.isnan(self.ln_gain):
            notes.append("mechanisms not recorded")
        return "; ".join(notes) or "passed"


def gate_of(runs: pd.DataFrame) -> Gate:
    """The gate of the runs of a cell's arms (all of them, before the not-learned ones are left out)."""
    mian = runs[runs["model"] == "mian"] if "model" in runs else runs.iloc[:0]
    with_ibim = mian[mian["variant"] != "no_ibim"]
    with_encoder = mian[mian["encoder"].isin(["pre_ln", "post_ln"])]
    mean = lambda s: float(s.mean()) if s.notna().any() else math.nan  # noqa: E731
    return Gate(int((runs["learned"] == "false").sum()),
                mean(with_ibim["diag_ibim_entropy"]) if "diag_ibim_entropy" in runs else math.nan,
                mean(with_encoder["diag_ln_gain_min"]) if "diag_ln_gain_min" in runs else math.nan,
                bool(len(mian)))


@dataclass
class PartTest:
    """One comparison of a cell, tested: the kept runs' Welch test and what decides it against the paper."""
    label: str
    a: pd.DataFrame  # every run of each arm (the gate's), the test uses those that learned
    b: pd.DataFrame
    paper: float = math.nan  # the paper's a - b
    paper_also: float = math.nan  # the same on the paper dataset shown beside (conf/verdict/primary.yaml)
    effect: float = math.nan
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan
    p_adjusted: float = math.nan
    n_a: int = 0
    n_b: int = 0
    sd: float = math.nan
    detectable: float = math.nan  # the smallest true effect these runs detect (power 0.8, unadjusted)
    seeds_needed: float = math.nan  # seeds per arm that would detect the paper's effect at this spread
    gate: Gate = field(default_factory=Gate)
    outcome: str = ""
    duplicate_of: str = ""  # the column whose identical test this one repeats

    @property
    def tested(self) -> bool:
        return bool(len(self.a)) and bool(len(self.b))

    @property
    def identity(self) -> tuple[frozenset[str], frozenset[str]]:
        """What the test compares: the configs of its arms' runs (benchmark/report/runs.py, config_fingerprint)."""
        def key(runs: pd.DataFrame) -> frozenset[str]:
            config = runs["config"] if "config" in runs else pd.Series("", index=runs.index)
            names = config.where(config != "", runs["run_id"])  # a run that logged no config is only itself
            return frozenset(names.astype(str) + ":" + runs["seed"].astype(str))

        return key(self.a), key(self.b)


def learned_values(runs: pd.DataFrame) -> np.ndarray:
    return runs[runs["learned"] != "false"]["test_auc"].dropna().to_numpy(float)


def measure(label: str, a: pd.DataFrame, b: pd.DataFrame, paper: float) -> PartTest:
    """Welch's test of a - b on the runs that learned; the interval, the spread, what it can detect."""
    part = PartTest(label, a, b, paper, gate=gate_of(pd.concat([a, b])))
    if not part.tested:
        return part
    va, vb = learned_values(a), learned_values(b)
    c = welch_interval(va, vb)
    part.effect, part.low, part.high, part.p, part.n_a, part.n_b = c.effect, c.low, c.high, c.p, len(va), len(vb)
    part.gate.no_spread = any(len(v) >= 2 and float(np.ptp(v)) == 0.0 for v in (va, vb))
    part.sd = pooled_std(pd.Series(va), pd.Series(vb))
    part.detectable = detectable_effect(part.sd, len(va), len(vb))
    part.seeds_needed = seeds_needed(part.paper, part.sd)
    return part


def judge_part(part: PartTest) -> str:
    """The part's outcome (module docstring), once its adjusted p is known."""
    if part.duplicate_of:
        return SAME_RUNS
    if not part.tested or not (part.n_a and part.n_b):
        return NOT_TESTED
    if part.gate.no_spread:
        return REFUSED
    if part.p_adjusted < ALPHA:
        return CONSISTENT if part.effect > 0 else CONTRADICTED
    if math.isnan(part.paper):
        return NOT_SIGNIFICANT
    if part.high < part.paper:
        return SMALLER
    return UNDERPOWERED


def deciding(parts: list[PartTest]) -> tuple[str, PartTest | None]:
    """A cell's outcome from its parts' and the part that decides it (the one shown)."""
    if not parts:
        return NOT_TESTED, None
    by = lambda outcome: [p for p in parts if p.outcome == outcome]  # noqa: E731
    p_of = lambda p: p.p_adjusted if p.p_adjusted == p.p_adjusted else 1.0  # noqa: E731
    if by(CONTRADICTED):
        return CONTRADICTED, min(by(CONTRADICTED), key=p_of)
    if all(p.outcome == CONSISTENT for p in parts):
        return CONSISTENT, max(parts, key=p_of)
    if by(SMALLER):
        return SMALLER, min(by(SMALLER), key=lambda p: p.high - p.paper)
    for outcome in (SAME_RUNS, NOT_TESTED, REFUSED):  # shown: the part the paper sized smallest, the hardest bar
        if by(outcome):
            return outcome, min(by(outcome), key=lambda p: p.paper if p.paper == p.paper else math.inf)
    for outcome in (UNDERPOWERED, NOT_SIGNIFICANT):
        if by(outcome):
            return outcome, max(by(outcome), key=lambda p: (p.seeds_needed if p.seeds_needed == p.seeds_needed
                                                             else -1.0, p_of(p)))
    return parts[0].outcome, parts[0]
