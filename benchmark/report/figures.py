"""What the tables' figures share (drawn by benchmark/figures.py): validation curves on one dataset, one line per
value of a column, and a table's runs per dataset. Each figure itself lives with its table (table2.py: the
curves and Figure 6; table4.py: Figure 5; verdict/: the forest plot; tuning.py)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.names import DATASET_LABELS, TABLE_DATASETS, ordered, present_in_order
from benchmark.report.runs import write_atomic
from benchmark.report.spec import Context


def curves(ctx: Context, mine: pd.DataFrame, out: Path, name: str, dataset: str, column: str,
           canonical: tuple[str, ...], labels: dict[str, str], title: str, lines: list[str]) -> Path:
    """Validation curves on one dataset, one line per value of `column` (mean over its runs)."""
    from benchmark import figures as drawing

    groups = {labels.get(v, v): list(mine[mine[column] == v]["run_id"])
              for v in present_in_order(list(mine[column]), canonical)}
    path = out / "figures" / f"{name}_{dataset}.png"
    label = DATASET_LABELS.get(dataset, dataset)
    write_atomic(path, drawing.training_curves(ctx.data.history, groups, f"{title} on {label}: mean over seeds "
                                               "per epoch", lines))
    return path


def by_dataset(records: pd.DataFrame, table: str) -> list[tuple[str, pd.DataFrame]]:
    """The runs of experiment `table` per dataset that has any, in the tables' order of datasets."""
    runs = records[records["table"] == table]
    pairs = [(dataset, runs[runs["dataset"] == dataset]) for dataset in ordered(list(runs["dataset"]), TABLE_DATASETS)]
    return [(dataset, mine) for dataset, mine in pairs if not mine.empty]
