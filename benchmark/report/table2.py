"""Table 2 (results/table2.md): every model on each dataset and protocol, MIAN tested against the best baseline,
our ranking beside the paper's; its figures: validation curves per model and Figure 6 (GIM weights)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy import stats

from benchmark.report.figures import by_dataset, curves
from benchmark.report.names import DATASET_LABELS, INTERACTIONS, MODEL_LABELS, MODELS, ordered
from benchmark.report.provenance import Provenance
from benchmark.report.runs import write_atomic
from benchmark.report.sections import build_sections, paper_numbers, section_template
from benchmark.report.significance import welch_test
from benchmark.report.spec import Context, Row, Section, TableSpec, literal
from benchmark.report.stats import mean_std


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


def table2_figures(ctx: Context, prov: Provenance, out: Path) -> list[Path]:
    """Per dataset: validation curves per model and Figure 6 (the GIM weights of a MIAN run's test examples)."""
    from benchmark import figures as drawing

    written, gim, lines = [], ctx.data.gim, prov.short()
    for dataset, mine in by_dataset(ctx.records, "table2"):
        written.append(curves(ctx, mine, out, "table2_curves", dataset, "model", MODELS, MODEL_LABELS,
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


TABLE = TableSpec("table2", "Table 2: all models, test AUC / Logloss / gAUC", reads=lambda ctx: ctx.table("table2"),
                  build=build_sections, template=section_template,
                  sections=lambda ctx, dataset, protocol: table2_section(ctx.records, ctx.paper, dataset, protocol),
                  figures=table2_figures)
