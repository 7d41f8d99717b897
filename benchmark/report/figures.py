"""The report's figures (drawn by benchmark/figures.py): validation curves of Tables 2 and 4 (the paper's Figure 5),
the GIM weights of sampled test examples (Figure 6) and the verdict's forest plot."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from benchmark.report.names import (
    DATASET_LABELS, ENCODER_LABELS, ENCODERS, INTERACTIONS, MODEL_LABELS, MODELS, TABLE_DATASETS, ordered,
    present_in_order,
)
from benchmark.report.runs import write_atomic
from benchmark.report.verdict import forest_rows, verdict_of

if TYPE_CHECKING:
    from benchmark.report.provenance import Provenance
    from benchmark.report.spec import Context


def gim_share_note(gim: pd.DataFrame, run_ids: list[str]) -> str:
    rows = gim[gim["run_id"].isin(run_ids)]
    if rows.empty:
        return ""
    per_example = rows.assign(inter=rows["name"].isin(INTERACTIONS) * rows["weight"]) \
        .groupby(["run_id", "example"])[["inter", "weight"]].sum()
    share = float((per_example["inter"] / per_example["weight"]).mean())
    counts = rows.groupby(["run_id", "example"])["name"].agg(lambda n: n.isin(INTERACTIONS).mean())
    return (f"GIM weight on the interaction representations ({', '.join(INTERACTIONS)}), mean over "
            f"{len(per_example)} sampled test examples of {rows['run_id'].nunique()} MIAN runs: {share:.2f} of the "
            f"total (uniform weights would give {float(counts.mean()):.2f}; the paper's Figure 6 shows them "
            "dominating the original features).")


def _curves(ctx: Context, mine: pd.DataFrame, out: Path, name: str, dataset: str, column: str,
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


def _by_dataset(records: pd.DataFrame, table: str) -> list[tuple[str, pd.DataFrame]]:
    runs = records[records["table"] == table]
    pairs = [(dataset, runs[runs["dataset"] == dataset]) for dataset in ordered(list(runs["dataset"]), TABLE_DATASETS)]
    return [(dataset, mine) for dataset, mine in pairs if not mine.empty]


def table2_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """Per dataset: validation curves per model and Figure 6 (the GIM weights of a MIAN run's test examples)."""
    from benchmark import figures as drawing

    written, gim, lines = [], ctx.data.gim, prov.short()
    for dataset, mine in _by_dataset(ctx.records, "table2"):
        written.append(_curves(ctx, mine, out, "table2_curves", dataset, "model", MODELS, MODEL_LABELS,
                               "All models", lines))
        mian = mine[(mine["model"] == "mian")]
        with_gim = [r for r in mian["run_id"] if (gim["run_id"] == r).any()]
        if with_gim:
            first = with_gim[0]
            seed = int(mian.set_index("run_id").loc[first, "seed"])
            path = out / "figures" / f"figure6_gim_{dataset}.png"
            title = (f"GIM weights of {gim[gim['run_id'] == first]['example'].nunique()} random test "
                     f"examples, MIAN on {DATASET_LABELS.get(dataset, dataset)} (seed {seed}, run {first[:8]})\n"
                     + gim_share_note(gim, with_gim))
            write_atomic(path, drawing.gim_heatmap(gim[gim["run_id"] == first], title, lines))
            written.append(path)
    return written


def table4_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """Per dataset: Figure 5, validation curves per behaviour encoder."""
    return [_curves(ctx, mine, out, "figure5_encoders", dataset, "encoder", ENCODERS, ENCODER_LABELS,
                    "MIAN's behaviour encoder", prov.short())
            for dataset, mine in _by_dataset(ctx.records, "table4")]


def verdict_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """figures/verdict.png: every tested claim's effect and 95% interval beside the paper's."""
    from benchmark import figures as drawing

    rows = forest_rows(verdict_of(ctx))
    path = out / "figures" / "verdict.png"
    short = [f"{key}: {value}" for key, value in prov.lines() if key in ("Git commit", "Report")]
    write_atomic(path, drawing.forest(rows, "The paper's claims: our effect (95% interval) beside the paper's",
                                      short + ["Data, machines and commands: results/verdict.md"]))
    return [path]
