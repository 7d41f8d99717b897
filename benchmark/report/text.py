"""How the report writes numbers and tables: the Markdown cells (mean ± std, p-values, intervals, the mark of runs
that did not learn), Markdown tables and the CSV text of a frame. Shared by every table."""
from __future__ import annotations

import math

import pandas as pd


def not_learned_suffix(k: int, n: int) -> str:
    """' †k/n' when k of the n runs behind a cell ended at the base-rate entropy (not learned), else ''."""
    return f" †{int(k)}/{int(n)}" if k else ""


def not_learned_mark(runs: pd.DataFrame) -> str:
    return not_learned_suffix(int((runs["learned"] == "false").sum()), len(runs))


NOT_LEARNED_NOTE = ("†k/n: k of the cell's n runs did not learn: their final training loss is within 0.5% of "
                    "the base-rate entropy of the training labels (benchmark/diagnostics.py).")


def fmt(mean: float, std: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f} ± n/a"


def fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def fmt_p_holm(p: float, p_holm: float) -> str:
    """'0.0077 (Holm 0.046)': the raw p and, when there is one, its Holm-adjusted value."""
    return fmt_p(p) + ("" if math.isnan(p) or math.isnan(p_holm) else f" (Holm {fmt_p(p_holm)})")


def fmt_interval(low: float, high: float, digits: int = 4) -> str:
    """' [low, high]' (with its leading space), '' when there is no interval."""
    return "" if math.isnan(low) else f" [{low:.{digits}f}, {high:.{digits}f}]"


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def csv_text(frame: pd.DataFrame, header: str) -> str:
    """`header` (comment lines) then the frame's CSV, 6 significant digits."""
    return header + frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")
