"""PNG figures of the report: training curves per epoch (the paper's Figure 5) and GIM weights of sampled test
examples (Figure 6). Each figure carries its provenance in a footer and in the PNG's text chunks."""
from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

CURVE_PANELS = (("train_loss", "training loss"), ("val_auc", "validation AUC"), ("val_logloss", "validation Logloss"))


def _footer(fig: plt.Figure, provenance: list[str], title: str) -> None:
    """Provenance lines (wrapped) at the bottom, the title at the top, and the axes laid out between them."""
    width_chars = int(fig.get_figwidth() * 72 / 3.6)
    lines = [part for line in provenance for part in textwrap.wrap(line, width_chars) or [""]]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, va="bottom", ha="left", color="0.35")
    titles = [part for line in title.split("\n") for part in textwrap.wrap(line, int(width_chars / 1.9))]
    fig.suptitle("\n".join(titles), fontsize=10)
    height = fig.get_figheight() * 72
    fig.tight_layout(rect=(0, min(0.6, (len(lines) * 7.5 + 8) / height), 1,
                           1 - min(0.3, (len(titles) * 13 + 4) / height)))


def _png(fig: plt.Figure, title: str, provenance: list[str]) -> bytes:
    """The figure as PNG bytes, with the provenance in the PNG's Description too."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110,
                metadata={"Title": title, "Description": "\n".join(provenance), "Software": "benchmark.report"})
    plt.close(fig)
    return buffer.getvalue()


def training_curves(history: pd.DataFrame, groups: dict[str, list[str]], title: str,
                    provenance: list[str]) -> bytes:
    """One line per group (label -> run ids): the mean over its runs of each metric at each epoch, with a
    band of +- one standard deviation; runs stopped early contribute to the epochs they reached."""
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 5.4))
    for (key, label), ax in zip(CURVE_PANELS, axes):
        for name, run_ids in groups.items():
            rows = history[(history["key"] == key) & history["run_id"].isin(run_ids)]
            if rows.empty:
                continue
            stats = rows.groupby("step")["value"].agg(["mean", "std", "count"]).reset_index()
            ax.plot(stats["step"], stats["mean"], marker="o", markersize=3, label=f"{name} ({len(run_ids)})")
            band = stats["std"].fillna(0.0)
            ax.fill_between(stats["step"], stats["mean"] - band, stats["mean"] + band, alpha=0.12)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.grid(alpha=0.3)
    for ax in axes:  # one legend, on the first panel that has lines
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, title="runs", title_fontsize=7)
            break
    _footer(fig, provenance, title)
    return _png(fig, title, provenance)


def gim_heatmap(gim: pd.DataFrame, title: str, provenance: list[str]) -> bytes:
    """GIM weights of one run's sampled test examples: representations as rows, examples as columns (the
    paper's layout), each example's label and predicted probability under its column."""
    examples = sorted(gim["example"].unique())
    names = gim.drop_duplicates("position").sort_values("position")["name"].tolist()
    matrix = np.full((len(names), len(examples)), np.nan)
    for _, row in gim.iterrows():
        matrix[int(row["position"]), examples.index(int(row["example"]))] = row["weight"]
    info = gim.drop_duplicates("example").set_index("example")
    fig, ax = plt.subplots(figsize=(max(8.0, 1.0 + 0.62 * len(examples)), 3.2 + 0.5 * len(names)))
    # 0 to the largest weight, at least twice the uniform weight: uniform weights show as a middle tone
    top = max(float(np.nanmax(matrix)), 2.0 / len(names))
    image = ax.imshow(matrix, cmap="Reds", vmin=0.0, vmax=top, aspect="auto")
    for i in range(len(names)):
        for j in range(len(examples)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(len(examples)),
                  [f"#{info.loc[e, 'test_index']}\ny={info.loc[e, 'label']:.0f}\np={info.loc[e, 'prob']:.2f}"
                   for e in examples], fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    _footer(fig, provenance, title)
    return _png(fig, title, provenance)


def forest(rows: pd.DataFrame, title: str, provenance: list[str]) -> bytes:
    """One line per comparison (columns label, effect, low, high, paper, group): our effect with its interval,
    the paper's effect beside it (a diamond), zero marked; rows of group 'robustness' drawn in grey."""
    fig, ax = plt.subplots(figsize=(10.0, 3.4 + 0.4 * max(len(rows), 1)))
    y = np.arange(len(rows))[::-1]
    for yi, (_, row) in zip(y, rows.iterrows()):
        colour = "tab:blue" if row["group"] == "primary" else "0.55"
        if row["low"] == row["low"]:
            ax.plot([row["low"], row["high"]], [yi, yi], color=colour, linewidth=2)
        ax.plot(row["effect"], yi, "o", color=colour)
        if row["paper"] == row["paper"]:
            ax.plot(row["paper"], yi, "D", color="tab:red", markersize=5)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(y, list(rows["label"]), fontsize=7)
    ax.set_xlabel("difference in mean test AUC, the claim's direction positive")
    ax.plot([], [], "o-", color="tab:blue", label="ours, primary (95% interval)")
    ax.plot([], [], "o-", color="0.55", label="ours, robustness")
    ax.plot([], [], "D", color="tab:red", label="the paper's")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    ax.grid(axis="x", alpha=0.3)
    _footer(fig, provenance, title)
    return _png(fig, title, provenance)
