"""The statistics of every results table: mean and spread over seeds, bootstrap intervals, Welch's tests with
their interval, Holm's correction of a family of tests, and the seeds a t-test needs to detect a given gap. One
implementation of each: the verdict (benchmark/report/verdict/) uses these too."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats


ALPHA = 0.05  # two-sided significance level of every test, interval and power computation
POWER = 0.8  # the power the seeds-needed line asks for
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same values give the same interval, whatever else the report holds


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().astype(float)
    return (float(v.mean()) if len(v) else math.nan, float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))


def bootstrap_interval(values: pd.Series | np.ndarray, level: float = 1 - ALPHA,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: `resamples` draws with replacement of the values (the seeds'
    results of one cell), from a generator seeded with `seed` so that the interval depends on the values alone.
    (NaN, NaN) with fewer than two values."""
    v = pd.Series(values, dtype=float).dropna().to_numpy()
    if len(v) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def welch(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Welch's t statistic and two-sided p-value, NaN with fewer than two runs on a side."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():  # identical values on a side: scipy warns, the p-value says it
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


@dataclass
class Comparison:
    effect: float
    low: float
    high: float
    p: float
    runs: int
    not_learned: int


def welch_interval(a: np.ndarray, b: np.ndarray) -> Comparison:
    """mean(a) - mean(b) with Welch's two-sided p and its 95% Welch-Satterthwaite interval: NaN with fewer than
    two values on a side, and refused (NaN) when a side has no spread at all, whose variance the test cannot
    estimate (identical runs are one observation repeated, not evidence of a certain difference)."""
    effect = float(np.mean(a) - np.mean(b)) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return Comparison(effect, math.nan, math.nan, math.nan, len(a) + len(b), 0)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # identical values (a variance from rounding is no spread)
        return Comparison(effect, math.nan, math.nan, math.nan, len(a) + len(b), 0)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(1 - ALPHA / 2, dof)) * se
    p = float(2 * stats.t.sf(abs(effect) / se, dof))
    return Comparison(effect, effect - half, effect + half, p, len(a) + len(b), 0)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment; NaN p-values stay NaN and do not count in the family."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def pooled_std(a: pd.Series, b: pd.Series) -> float:
    """The two samples' pooled standard deviation (the t-test's), NaN without two values on each side."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))


def seeds_needed(gap: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds per arm a two-sided two-sample t-test (equal arms, level `alpha`) needs to detect a true difference
    `gap` with probability `power` when both arms spread as `sd`: the smallest n >= 2 whose power, from the
    noncentral t distribution (df 2n - 2, noncentrality gap / (sd * sqrt(2 / n))), reaches `power`. The normal
    approximation n = 2 ((z_{1-alpha/2} + z_{power}) sd / gap)^2 is a lower bound, where the search starts.
    NaN when gap or sd is unknown or the gap is 0."""
    if math.isnan(gap) or math.isnan(sd) or gap == 0:
        return math.nan
    if sd == 0:
        return 2.0
    effect = abs(gap) / sd
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, math.floor(2 * (z / effect) ** 2))
    while True:
        df = 2 * n - 2
        critical = stats.t.ppf(1 - alpha / 2, df)
        noncentrality = effect / math.sqrt(2 / n)
        reached = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
        if reached >= power:
            return float(n)
        n += 1


def detectable_effect(sd: float, n_a: int, n_b: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference a two-sided two-sample t-test (level `alpha`, df n_a + n_b - 2) detects with
    probability `power` when both arms spread as `sd`: the noncentrality at which the noncentral t reaches
    `power`, times sd * sqrt(1/n_a + 1/n_b). NaN without two runs on each side or a spread."""
    if n_a < 2 or n_b < 2 or math.isnan(sd) or sd <= 0:
        return math.nan
    df = n_a + n_b - 2
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(noncentrality: float) -> float:
        return (stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)) - power

    upper = 1.0
    while shortfall(upper) < 0:  # widen the bracket step by step: far out the noncentral t's tails are NaN
        upper *= 2
    noncentrality = optimize.brentq(shortfall, 0.0, upper)
    return float(noncentrality * sd * math.sqrt(1 / n_a + 1 / n_b))


def best_keys(values: dict[str, float], goal: str) -> set[str]:
    """The keys of the best value (`goal` max or min; ties all count), NaN left out."""
    valid = {k: v for k, v in values.items() if not math.isnan(v)}
    if not valid:
        return set()
    target = max(valid.values()) if goal == "max" else min(valid.values())
    return {k for k, v in valid.items() if v == target}
