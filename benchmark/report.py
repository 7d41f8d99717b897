"""`python -m benchmark.report`: regenerate results/ (Tables 2-4, efficiency, Figures 5-6) from MLflow alone.

    python -m benchmark.report [--tracking-uri URI] [--out results] [--table3-baseline dien]
    python -m benchmark.report --stores results/runs --table3-baseline xdeepfm   # the committed tables
    python -m benchmark.report --from-export results/export      # the same files, from the committed export

It reads the FINISHED runs of the experiment configs (param `experiment_name`: table2, table3, table4,
efficiency), writes one Markdown and one CSV file per table (mean +- std over seeds and the run count per cell,
the paper's number beside ours, the best per column marked, Welch's t-test of MIAN against the best baseline),
significance.csv, the PNG figures under figures/, and the export of the runs it read (export/: runs.csv,
history.csv, gim_weights.csv) from which `--from-export` rebuilds identical tables. Every file names its data,
machine, package versions, git commit(s) and the commands that produced it. Files are written atomically.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from scipy import stats

from benchmark import PROJECT_ROOT
from benchmark.io import atomic_write_bytes

PAPER_DIR = Path(__file__).resolve().parent / "paper_results"

# ------------------------------------------------------------------------------------------- reading the runs
# Three frames, the same whichever the source:
# - `runs`: one row per FINISHED run of an experiment config (param `experiment_name` in EXPERIMENTS) and the
#   sweep parent runs they belong to; columns `run_id`, `status`, `experiment`, `start_time`, `tags.*`,
#   `params.*` (strings, "" when absent) and `metrics.*` (floats, NaN when absent);
# - `history`: every per-epoch metric of those runs: `run_id`, `key`, `step`, `value`;
# - `gim`: the GIM weights MIAN runs logged (gim_weights.csv), long form: `run_id`, `example`, `test_index`,
#   `label`, `prob`, `position`, `name`, `weight`.
EXPERIMENTS = ("table2", "table3", "table4", "efficiency", "effects", "readings", "sensitivity")
EPOCH_METRICS = ("train_loss", "val_auc", "val_logloss", "val_gauc", "epoch_time_s")
EXPORT_FILES = {"runs": "runs.csv", "history": "history.csv", "gim": "gim_weights.csv"}
HISTORY_COLUMNS = ["run_id", "key", "step", "value"]
GIM_COLUMNS = ["run_id", "example", "test_index", "label", "prob", "position", "name", "weight"]


@dataclass
class RunData:
    runs: pd.DataFrame
    history: pd.DataFrame
    gim: pd.DataFrame
    source: str  # where it was read from, for the results' headers


def _normalise_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Metrics as floats, everything else as strings ("" when absent), rows in a fixed order."""
    columns = {}
    for column in sorted(frame.columns, key=lambda c: (c.split(".")[0] in ("tags", "params", "metrics"), c)):
        if column.startswith("metrics."):
            columns[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        else:
            columns[column] = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and v != v)
                                                else str(v)).astype(object)
    frame = pd.DataFrame(columns, index=frame.index)
    order = ["params.experiment_name", "tags.dataset", "tags.model", "tags.variant", "tags.encoder", "tags.seed",
             "run_id"]
    missing = {c: pd.Series("", index=frame.index, dtype=object) for c in order if c not in frame.columns}
    frame = pd.concat([frame, pd.DataFrame(missing)], axis=1) if missing else frame.copy()
    keys = frame[order].copy()
    keys["tags.seed"] = pd.to_numeric(keys["tags.seed"], errors="coerce").fillna(-1)
    return frame.loc[keys.sort_values(order, kind="stable").index].reset_index(drop=True)


def _normalise_history(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=HISTORY_COLUMNS).copy()
    frame["run_id"] = frame["run_id"].astype(str)
    frame["key"] = frame["key"].astype(str)
    frame["step"] = frame["step"].astype(int)
    frame["value"] = frame["value"].astype(float)
    return frame.sort_values(["run_id", "key", "step"], kind="stable").reset_index(drop=True)


def _normalise_gim(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=GIM_COLUMNS).copy()
    for column in ("run_id", "name"):
        frame[column] = frame[column].astype(str)
    for column in ("example", "test_index", "position"):
        frame[column] = frame[column].astype(int)
    for column in ("label", "prob", "weight"):
        frame[column] = frame[column].astype(float)
    return frame.sort_values(["run_id", "example", "position"], kind="stable").reset_index(drop=True)


def gim_long(run_id: str, text: str) -> pd.DataFrame:
    """One run's gim_weights.csv (columns test_index, <gim_names...>, label, prob) in long form."""
    wide = pd.read_csv(io.StringIO(text))
    names = [c for c in wide.columns if c not in ("test_index", "label", "prob")]
    rows = [
        {"run_id": run_id, "example": example, "test_index": int(row["test_index"]), "label": float(row["label"]),
         "prob": float(row["prob"]), "position": position, "name": name, "weight": float(row[name])}
        for example, (_, row) in enumerate(wide.iterrows())
        for position, name in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=GIM_COLUMNS)


def read_mlflow(uri: str, place: str | None = None, artifacts: Path | None = None) -> RunData:
    """Every FINISHED run of an experiment config in the store at `uri`, with its sweep parent. `place` names
    the store in the results (default: its file, relative to the project when inside it; else `uri`);
    `artifacts` is the folder its artifact paths resolve against when they are not where they were written
    (an extracted archive, benchmark/stores.py). Paths in the runs' params and tags are made portable."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from benchmark.stores import artifact_file, portable_runs, repo_place
    from benchmark.tracking import sqlite_path

    db = sqlite_path(uri)
    store = place or (repo_place(db) if db is not None else None)
    if db is not None and not db.is_file():
        # opening it would create an empty store: a mistyped path must not leave a file behind
        raise ValueError(f"there is no MLflow store at {uri} (no such file): check --tracking-uri")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if not experiments:
        raise ValueError(f"the MLflow store {uri} holds no experiments")
    frame = mlflow.search_runs(experiment_ids=list(experiments), filter_string="attributes.status = 'FINISHED'",
                               output_format="pandas")
    if frame.empty or "params.experiment_name" not in frame.columns:
        raise ValueError(f"the MLflow store {uri} holds no finished runs of an experiment config "
                         f"({', '.join(EXPERIMENTS)}): run e.g. `python -m benchmark experiment=table2` first")
    frame["experiment"] = frame["experiment_id"].map(experiments)
    is_job = frame["params.experiment_name"].isin(EXPERIMENTS)
    parent_ids = frame.loc[is_job, "tags.mlflow.parentRunId"] if "tags.mlflow.parentRunId" in frame else []
    parents = set(pd.Series(parent_ids, dtype=object).dropna())
    frame = frame[is_job | frame["run_id"].isin(parents)]
    artifact_uris = dict(zip(frame["run_id"], frame["artifact_uri"])) if "artifact_uri" in frame else {}
    frame = frame.drop(columns=[c for c in ("artifact_uri", "end_time", "experiment_id") if c in frame.columns])
    frame["start_time"] = frame["start_time"].map(
        lambda t: t.isoformat(timespec="microseconds") if hasattr(t, "isoformat") else str(t))

    history, gim = [], []
    for run_id, model in zip(frame["run_id"], frame.get("tags.model", pd.Series(index=frame.index))):
        if run_id in parents:
            continue
        for key in EPOCH_METRICS:
            history += [{"run_id": run_id, "key": key, "step": m.step, "value": m.value}
                        for m in client.get_metric_history(run_id, key)]
        if model == "mian":
            try:
                if artifacts is None:
                    text = mlflow.artifacts.load_text(f"runs:/{run_id}/gim_weights.csv")
                else:
                    path = artifact_file(str(artifact_uris.get(run_id, "")), artifacts, "gim_weights.csv")
                    if path is None:
                        continue
                    text = path.read_text()
            except Exception:  # noqa: BLE001 - no GIM (ablation no_gim) or the artifact is gone: no figure row
                continue
            gim.append(gim_long(run_id, text))
    gim_frame = pd.concat(gim, ignore_index=True) if gim else pd.DataFrame(columns=GIM_COLUMNS)
    return RunData(_normalise_runs(portable_runs(frame, store)),
                   _normalise_history(pd.DataFrame(history, columns=HISTORY_COLUMNS)), _normalise_gim(gim_frame),
                   f"MLflow store {place or uri}")


def merge(parts: list[RunData]) -> RunData:
    """Several sources read as one (e.g. the CPU store beside the stores of a GPU session). A run id present in
    two sources is an error: the same run copied twice would count twice in a table."""
    if len(parts) == 1:
        return parts[0]
    runs = pd.concat([p.runs for p in parts], ignore_index=True)
    twice = runs["run_id"][runs["run_id"].duplicated()]
    if len(twice):
        raise ValueError(f"run {twice.iloc[0]} is in more than one of the stores given; give each store once")
    return RunData(_normalise_runs(runs), pd.concat([p.history for p in parts], ignore_index=True),
                   pd.concat([p.gim for p in parts], ignore_index=True),
                   " + ".join(p.source for p in parts))


def read_export(folder: Path) -> RunData:
    """The frames `write_export` wrote, with the same types as `read_mlflow` gives."""
    paths = {name: Path(folder) / file for name, file in EXPORT_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"export incomplete, missing: {', '.join(missing)}")
    runs = pd.read_csv(paths["runs"], dtype=str, keep_default_na=False)
    if "params.experiment_name" not in runs or not runs["params.experiment_name"].isin(EXPERIMENTS).any():
        raise ValueError(f"the export {folder} holds no runs of an experiment config ({', '.join(EXPERIMENTS)})")
    history = pd.read_csv(paths["history"], dtype={"run_id": str, "key": str})
    gim = pd.read_csv(paths["gim"], dtype={"run_id": str, "name": str})
    return RunData(_normalise_runs(runs), _normalise_history(history), _normalise_gim(gim), f"export {folder}")


def runs_left_out(previous_export: Path, data: RunData) -> pd.DataFrame:
    """The runs of the export already in the output (what its tables were built from) that `data` lacks."""
    path = previous_export / EXPORT_FILES["runs"]
    if not path.is_file():
        return pd.DataFrame(columns=["run_id"])
    previous = pd.read_csv(path, dtype=str, keep_default_na=False)
    return previous[~previous["run_id"].isin(set(data.runs["run_id"]))]


def left_out_message(left_out: pd.DataFrame, out: Path) -> str:
    keys = left_out.reindex(columns=["params.experiment_name", "tags.experiment_name", "tags.dataset"], fill_value="")
    tables = keys["params.experiment_name"].where(keys["params.experiment_name"] != "", keys["tags.experiment_name"])
    pairs = pd.Series(list(zip(tables, keys["tags.dataset"]))).value_counts().sort_index()
    counts = ", ".join(f"{table or '?'}/{dataset or '?'}: {n}" for (table, dataset), n in pairs.items())
    return (f"{out} holds results built from {len(left_out)} runs that the sources given do not have ({counts}); "
            "nothing was written. Give every store they came from (--tracking-uri once per store; "
            "results/README.md names the committed ones), or pass --force to replace those results.")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write the whole file or nothing (benchmark/io.py: temporary file beside it, then os.replace)."""
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def write_export(data: RunData, folder: Path) -> list[Path]:
    """runs.csv, history.csv and gim_weights.csv: everything the report reads, as plain CSV."""
    written = []
    for name, file in EXPORT_FILES.items():
        path = Path(folder) / file
        write_atomic(path, getattr(data, name).to_csv(index=False, lineterminator="\n"))
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------------ the tables
MODELS = ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm", "din", "dien", "mian")
MODEL_LABELS = {"lr": "LR", "wide_deep": "Wide&Deep", "dcn": "DCN", "deepfm": "DeepFM", "xdeepfm": "xDeepFM",
                "din": "DIN", "dien": "DIEN", "mian": "MIAN"}
ABLATIONS = ("full", "no_iuim", "no_icim", "no_ibim", "no_gim", "no_iuim_icim")
ABLATION_LABELS = {"full": "MIAN", "no_iuim": "w/o IUIM", "no_icim": "w/o ICIM", "no_ibim": "w/o IBIM",
                   "no_gim": "w/o GIM", "no_iuim_icim": "w/o IUIM & ICIM"}
ENCODERS = ("pre_ln", "post_ln", "none")
ENCODER_LABELS = {"pre_ln": "Pre-LN Transformer (MIAN)", "post_ln": "Post-LN Transformer", "none": "no Transformer"}
PAPER_ENCODER = {"pre_ln": "pre_ln", "post_ln": "post_ln", "none": "no_transformer"}
DATASETS = ("synthetic", "movielens", "electronics", "books")
DATASET_LABELS = {"synthetic": "Synthetic", "movielens": "MovieLens-1M", "electronics": "Amazon Electronics",
                  "books": "Amazon Books"}
# MovieLens-1M stands in for the paper's private commercial dataset (rich profile, short histories).
PAPER_DATASET = {"movielens": "commercial", "electronics": "electronics", "books": "books"}
PAPER_DATASET_LABELS = {
    "commercial": "the paper's private Commercial dataset, for which MovieLens-1M stands in: compare orderings "
                  "and gaps, not levels",
    "electronics": "Amazon Electronics (same data and protocol)", "books": "Amazon Books (same data and protocol)",
}
DATASET_ARGS = {"movielens": ["dataset.raw_dir=../shared/data/ml-1m-part"]}
AMAZON = ("electronics", "books")
TITLES = {"table2": "Table 2: all models, test AUC / Logloss / gAUC",
          "table3": "Table 3: MIAN ablations, test AUC / Logloss / gAUC",
          "table4": "Table 4: MIAN's behaviour encoder, test AUC / Logloss / gAUC",
          "efficiency": "Efficiency (Section 4.5): training seconds per epoch",
          "effects": "Does each MIAN module model the effect it is meant to? (synthetic, one planted effect at a time)",
          "readings": "MIAN under the readings of its attention score (Eq. 8), test AUC",
          "verdict": "Which of the paper's claims hold here? (test AUC, every dataset, protocol and reading)"}
METRICS = (("test_auc", "AUC", "max"), ("test_logloss", "Logloss", "min"), ("test_gauc", "gAUC", "max"))
INTERACTIONS = ("R_ibim", "R_iuim", "R_icim")
EFFECTS = ("sequence", "user", "context")
# The ablation that removes the module meant to model each planted effect (MIAN Section 3.2).
EFFECT_MODULE = {"sequence": "no_ibim", "user": "no_iuim", "context": "no_icim"}
EFFECT_VARIANTS = ("full", "no_ibim", "no_iuim", "no_icim")


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series("", index=frame.index, dtype=object)


def data_description(row: pd.Series) -> str:
    """What data a run trained on, from its params (e.g. 'MovieLens-1M: ML-1M, users 1-2999 (...)')."""
    get = lambda key: str(row.get(f"params.{key}", "") or "")  # noqa: E731
    dataset = str(row.get("tags.dataset", ""))
    splits = "/".join(get(f"data.{s}_samples") or "?" for s in ("train", "valid", "test"))
    if dataset == "movielens":
        raw_dir = get("dataset.raw_dir") or "datasets/raw/movielens"
        return (f"MovieLens-1M: {get('data.subset') or 'ML-1M'}, from {raw_dir}"
                f" (train/valid/test samples {splits})")
    if dataset == "synthetic":
        return (f"Synthetic (benchmark/data/synthetic.py, data seed {get('dataset.seed')}: {get('data.users')} users, "
                f"{get('data.items')} items, train/valid/test samples {splits})")
    return (f"{DATASET_LABELS.get(dataset, dataset)}: {get('data.users')} users, {get('data.items')} items, "
            f"train/valid/test samples {splits}")


def machine_description(row: pd.Series) -> str:
    device, cpu = str(row.get("tags.device", "")), str(row.get("tags.cpu_model", ""))
    if device.startswith("CPU"):
        return f"{device}: {cpu}" if cpu else device
    return f"{device} (host CPU: {cpu})" if cpu else device


# The last epoch's learning diagnostics (benchmark/diagnostics.py) that the readings tables show.
DIAGNOSTICS = ("diag_train_loss_ratio", "diag_mlp_alive_units", "diag_ibim_entropy", "diag_ibim_max_weight",
               "diag_gim_spread")
CELL_KEY = ["table", "dataset", "model", "variant", "encoder", "reading", "protocol", "effect", "seed"]
# MIAN's open readings (models/mian.py) as run tags, with the default a run without the tag had.
READING_TAGS = {"ibim_score": "additive", "field_score": "additive", "e_b_pool": "mean", "positional": "learned"}


def reading_of(row: pd.Series) -> str:
    """A MIAN run's non-default readings, e.g. 'ibim_score=din field_score=din' ('' for the paper's literal
    reading, and for every other model)."""
    if row.get("tags.model") != "mian":
        return ""
    return " ".join(f"{key}={row.get(f'tags.{key}')}" for key, default in READING_TAGS.items()
                    if str(row.get(f"tags.{key}", "") or default) != default)


def protocol_tag(row: pd.Series) -> str:
    """The run's `protocol` tag (benchmark/run.py: the protocol and every knob set apart from it); runs older than
    the tag ran the shared protocol, with their L2 as logged."""
    tag = str(row.get("tags.protocol", "") or "")
    if tag:
        return tag
    l2 = pd.to_numeric(row.get("params.trainer.l2", ""), errors="coerce")
    return "shared" if l2 != l2 or l2 == 1e-3 else f"shared l2={l2:g}"


def learned_of(row: pd.Series) -> str:
    """'true' / 'false' (benchmark/diagnostics.py: did the final training loss leave the base-rate entropy?),
    from the run's tag or, for runs older than the tag, from its last train_loss and the training labels'
    positive rate; '' when neither is known."""
    from benchmark.diagnostics import binary_entropy, learned

    tag = str(row.get("tags.learned", "") or "")
    if tag:
        return tag
    loss = pd.to_numeric(row.get("metrics.train_loss", np.nan), errors="coerce")
    base = pd.to_numeric(row.get("metrics.train_base_entropy", np.nan), errors="coerce")
    if base != base:
        rate = pd.to_numeric(row.get("params.data.train_positive_rate", "") or row.get("params.data.positive_rate", ""),
                             errors="coerce")
        base = binary_entropy(float(rate)) if 0 < rate < 1 else np.nan
    if loss != loss or base != base:
        return ""
    return str(learned(float(loss), float(base))).lower()


def job_records(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per job run (sweep parents left out) with the fields the tables use. When a cell's seed was run
    more than once (a sweep repeated), the latest finished run counts; the older ones are returned apart."""
    jobs = runs[_col(runs, "params.experiment_name").isin(EXPERIMENTS) & (_col(runs, "tags.model") != "")]
    records = pd.DataFrame({
        "run_id": jobs["run_id"], "start_time": _col(jobs, "start_time"),
        "parent": _col(jobs, "tags.mlflow.parentRunId"),
        "table": jobs["params.experiment_name"], "dataset": _col(jobs, "tags.dataset"),
        "model": _col(jobs, "tags.model"), "variant": _col(jobs, "tags.variant"),
        "encoder": _col(jobs, "tags.encoder"), "seed": pd.to_numeric(_col(jobs, "tags.seed"), errors="coerce"),
        "reading": [reading_of(row) for _, row in jobs.iterrows()],
        "learned": [learned_of(row) for _, row in jobs.iterrows()],
        "protocol": [protocol_tag(row) for _, row in jobs.iterrows()],
        "step_mode": _col(jobs, "tags.step_mode"), "git_commit": _col(jobs, "tags.git_commit"),
        "packages": [p or f"torch=={t}" for p, t in zip(_col(jobs, "tags.packages"), _col(jobs, "tags.torch_version"))],
        "command": _col(jobs, "tags.command"),
        "data": [data_description(row) for _, row in jobs.iterrows()],
        "machine": [machine_description(row) for _, row in jobs.iterrows()],
    })
    records["effect"] = [planted_effect(row) if table == "effects" else ""
                         for table, (_, row) in zip(records["table"], jobs.iterrows())]
    records["oracle_auc"] = pd.to_numeric(_col(jobs, "params.data.oracle_test_auc"), errors="coerce")
    for name in ("test_auc", "test_logloss", "test_gauc", "epoch_time_mean_s", "first_epoch_time_s", "best_epoch",
                 *DIAGNOSTICS):
        records[name] = jobs[f"metrics.{name}"] if f"metrics.{name}" in jobs.columns else np.nan
    latest = records.sort_values(["start_time", "run_id"], kind="stable").drop_duplicates(CELL_KEY, keep="last")
    older = records[~records["run_id"].isin(latest["run_id"])]
    return records[records["run_id"].isin(latest["run_id"])].reset_index(drop=True), older.reset_index(drop=True)


def planted_effect(row: pd.Series) -> str:
    """Which synthetic effects a run's data had (conf/effects/): 'user', 'sequence+context', ... or 'none'."""
    strengths = {e: pd.to_numeric(row.get(f"params.dataset.effects.{e}", ""), errors="coerce") for e in EFFECTS}
    return "+".join(e for e, v in strengths.items() if v == v and v != 0) or "none"


def read_paper(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = pd.read_csv(folder / "reported_results.csv", dtype={"table": str, "variant": str},
                          keep_default_na=False)
    efficiency = pd.read_csv(folder / "reported_efficiency.csv")
    return results, efficiency


def paper_numbers(paper: pd.DataFrame, table: str, dataset: str, model: str, variant: str = "") -> dict[str, float]:
    """The paper's AUC and Logloss for one row, {} when it reports none."""
    paper_dataset = PAPER_DATASET.get(dataset)
    match = paper[(paper["table"] == table.removeprefix("table")) & (paper["dataset"] == paper_dataset)
                  & (paper["model"] == model) & (paper["variant"] == variant)]
    if match.empty:
        return {}
    return {"auc": float(match["auc"].iloc[0]), "logloss": float(match["logloss"].iloc[0])}


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().astype(float)
    return (float(v.mean()) if len(v) else math.nan, float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))


def welch(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Welch's t statistic and two-sided p-value, NaN with fewer than two runs on a side."""
    a, b = a.dropna().astype(float), b.dropna().astype(float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():  # identical values on a side: scipy warns, the p-value says it
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def run_command(table: str, dataset: str, extra: list[str] | None = None) -> str:
    return shlex.join(["python", "-m", "benchmark", f"experiment={table}", f"dataset={dataset}",
                       *DATASET_ARGS.get(dataset, []), *(extra or [])])


@dataclass
class Row:
    key: str
    label: str
    runs: pd.DataFrame
    paper: dict[str, float]
    model: str = ""
    variant: str = ""
    encoder: str = ""
    source: str = ""


@dataclass
class Section:
    table: str
    dataset: str
    rows: list[Row]
    tests: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compare_to: str = ""  # a row key: extra column with Welch's p of each row against it
    protocol: str = "shared"

    @property
    def measured(self) -> bool:
        return any(len(r.runs) for r in self.rows)


def _test(section: Section, a: Row, b: Row, metric: str) -> dict[str, Any]:
    t, p = welch(a.runs[metric], b.runs[metric])
    ma, _, na = mean_std(a.runs[metric])
    mb, _, nb = mean_std(b.runs[metric])
    return {"table": section.table, "dataset": section.dataset, "protocol": section.protocol, "metric": metric, "a": a.label, "b": b.label,
            "n_a": na, "n_b": nb, "mean_a": ma, "mean_b": mb, "diff": ma - mb, "t": t, "p": p}


def literal(records: pd.DataFrame, protocol: str = "shared") -> pd.DataFrame:
    """The runs of MIAN's literal reading (and every other model's) under `protocol`: Tables 2-4 as the paper
    specifies MIAN, one section per dataset and protocol; the other readings have tables of their own
    (readings.md, effects.md)."""
    return records[(records["reading"] == "") & (records["protocol"] == protocol)]


def protocols_of(records: pd.DataFrame) -> list[str]:
    """The protocols the records ran under, `shared` first (and `shared` alone when there are none)."""
    return present_in_order(list(records["protocol"]), ("shared",)) or ["shared"]


def not_learned_suffix(k: int, n: int) -> str:
    """' †k/n' when k of the n runs behind a cell ended at the base-rate entropy (not learned), else ''."""
    return f" †{int(k)}/{int(n)}" if k else ""


def not_learned_mark(runs: pd.DataFrame) -> str:
    return not_learned_suffix(int((runs["learned"] == "false").sum()), len(runs))


NOT_LEARNED_NOTE = ("†k/n: k of the cell's n runs did not learn: their final training loss is within 0.5% of "
                    "the base-rate entropy of the training labels (benchmark/diagnostics.py).")


def ordered(found: list[str], canonical: tuple[str, ...]) -> list[str]:
    return list(canonical) + sorted(set(found) - set(canonical) - {""})


def present_in_order(found: list[str], canonical: tuple[str, ...]) -> list[str]:
    """The values that occur in `found`, in `ordered`'s order (the canonical ones absent from `found` left out)."""
    return [v for v in ordered(found, canonical) if v in set(found)]


def table2_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table2") & (records["dataset"] == dataset)], protocol)
    rows = [Row(m, MODEL_LABELS.get(m, m), runs[runs["model"] == m], paper_numbers(paper, "table2", dataset, m),
                model=m) for m in ordered(list(runs["model"]), MODELS)]
    section = Section("table2", dataset, rows, protocol=protocol)
    mian = next(r for r in rows if r.key == "mian")
    baselines = [r for r in rows if r.key != "mian" and len(r.runs)]
    if len(mian.runs) and baselines:
        best = max(baselines, key=lambda r: mean_std(r.runs["test_auc"])[0])
        section.tests = [_test(section, mian, best, m) for m in ("test_auc", "test_logloss")]
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
        section.tests = [_test(section, full, base, m) for m in ("test_auc", "test_logloss")]
    section.tests += [_test(section, r, full, "test_auc") for r in rows[1:-1] if len(r.runs) and len(full.runs)]
    section.notes.append(f"The {base.label} row comes from the {source} of this dataset "
                         f"(`--table3-baseline` picks the model; table3 sweeps only MIAN's ablations).")
    return section


def table4_section(records: pd.DataFrame, paper: pd.DataFrame, dataset: str, protocol: str = "shared") -> Section:
    runs = literal(records[(records["table"] == "table4") & (records["dataset"] == dataset)
                           & (records["model"] == "mian")], protocol)
    rows = [Row(e, ENCODER_LABELS.get(e, e), runs[runs["encoder"] == e],
                paper_numbers(paper, "table4", dataset, "mian", PAPER_ENCODER.get(e, e)), model="mian", encoder=e)
            for e in ordered(list(runs["encoder"]), ENCODERS)]
    section = Section("table4", dataset, rows, compare_to="pre_ln", protocol=protocol)
    section.tests = [_test(section, rows[0], r, m) for r in rows[1:] for m in ("test_auc", "test_logloss")
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


# ---------------------------------------------------------------------------------------------- formatting
def fmt(mean: float, std: float, digits: int = 4) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f} ± n/a"


def fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def best_keys(values: dict[str, float], goal: str) -> set[str]:
    valid = {k: v for k, v in values.items() if not math.isnan(v)}
    if not valid:
        return set()
    target = max(valid.values()) if goal == "max" else min(valid.values())
    return {k for k, v in valid.items() if v == target}


def md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def section_frame(section: Section, command: str) -> pd.DataFrame:
    """The CSV rows of one section: one per table row."""
    records = []
    means = {m: {r.key: mean_std(r.runs[m])[0] for r in section.rows} for m, _, _ in METRICS}
    best = {m: best_keys(means[m], goal) for m, _, goal in METRICS}
    paper_best = {k: best_keys({r.key: r.paper.get(k, math.nan) for r in section.rows}, goal)
                  for k, goal in (("auc", "max"), ("logloss", "min"))}
    compare = next((r for r in section.rows if r.key == section.compare_to), None)
    for row in section.rows:
        record: dict[str, Any] = {
            "table": section.table, "dataset": section.dataset, "protocol": section.protocol, "row": row.label, "model": row.model,
            "variant": row.variant, "encoder": row.encoder,
            "status": "measured" if len(row.runs) else "not run here", "runs": len(row.runs),
            "seeds": " ".join(str(int(s)) for s in sorted(row.runs["seed"].dropna())),
            "not_learned_runs": int((row.runs["learned"] == "false").sum()),
        }
        for metric, _, _ in METRICS:
            mean, std, _ = mean_std(row.runs[metric])
            record[f"{metric}_mean"], record[f"{metric}_std"] = mean, std
        record["paper_dataset"] = PAPER_DATASET.get(section.dataset, "") if row.paper else ""
        record["paper_auc"] = row.paper.get("auc", math.nan)
        record["paper_logloss"] = row.paper.get("logloss", math.nan)
        for metric, _, _ in METRICS:
            record[f"best_{metric}"] = row.key in best[metric]
        record["paper_best_auc"] = row.key in paper_best["auc"]
        record["paper_best_logloss"] = row.key in paper_best["logloss"]
        if compare is not None:
            record[f"p_auc_vs_{compare.key}"] = welch(row.runs["test_auc"], compare.runs["test_auc"])[1] \
                if row is not compare else math.nan
        record["source"] = row.source or (f"{section.table} runs" if len(row.runs) else "")
        record["command"] = "" if len(row.runs) else command
        records.append(record)
    return pd.DataFrame(records)


def section_markdown(section: Section, frame: pd.DataFrame, command: str, data: str) -> str:
    title = DATASET_LABELS.get(section.dataset, section.dataset)
    if section.protocol != "shared":
        title += f", protocol `{section.protocol}`"
    parts = [f"## {title}", ""]
    paper_dataset = PAPER_DATASET.get(section.dataset)
    has_paper = any(r.paper for r in section.rows)
    if section.measured:
        parts.append(f"Data: {data}.")
    else:
        why = (" (the Amazon files were not available on the machine that produced these results)"
               if section.dataset in AMAZON else "")
        parts.append(f"**Not run here**{why}. To run it: `{command}`, then `python -m benchmark.report`.")
    if has_paper:
        parts.append(f"Paper column: {PAPER_DATASET_LABELS[paper_dataset]}.")
    else:
        parts.append("The paper reports no number for this table on this dataset.")
    parts.append("")
    header = ["", "runs", "AUC", "Logloss", "gAUC", "paper AUC", "paper Logloss"]
    compare = next((r for r in section.rows if r.key == section.compare_to), None)
    if compare is not None:
        header.append(f"p (AUC) vs {compare.label}")
    body = []
    for row, (_, rec) in zip(section.rows, frame.iterrows()):
        cells = [row.label + (f" ({row.source})" if row.source and len(row.runs) else ""), str(rec["runs"])]
        for metric, _, _ in METRICS:
            text = fmt(rec[f"{metric}_mean"], rec[f"{metric}_std"]) if rec["runs"] else "not run"
            cells.append((f"**{text}**" if rec[f"best_{metric}"] else text)
                         + (not_learned_mark(row.runs) if metric == "test_auc" else ""))
        for key in ("auc", "logloss"):
            value = rec[f"paper_{key}"]
            text = "–" if math.isnan(value) else f"{value:.4f}"
            cells.append(f"**{text}**" if rec[f"paper_best_{key}"] else text)
        if compare is not None:
            cells.append("" if row is compare else fmt_p(rec[f"p_auc_vs_{compare.key}"]))
        body.append(cells)
    parts.append(md_table(header, body))
    parts.append("")
    parts.append("Cells: mean ± standard deviation over seeds (sample std), `runs` finished runs; **bold**: best in "
                 "the column (ours and the paper's separately)."
                 + (f" {NOT_LEARNED_NOTE}" if frame["not_learned_runs"].sum() else ""))
    names = {"test_auc": "AUC", "test_logloss": "Logloss"}
    for test in section.tests:
        if section.compare_to and not test["b"].endswith("(baseline)") and test["metric"] == "test_auc":
            continue  # already in the p column
        verdict = (f"Welch's t {test['t']:.2f}, p {fmt_p(test['p'])}" if not math.isnan(test["p"])
                   else "not testable (Welch's test needs 2 runs or more on each side)")
        parts.append(f"- {test['a']} vs {test['b']}, test {names[test['metric']]}: {test['mean_a']:.4f} vs "
                     f"{test['mean_b']:.4f} (difference {test['diff']:+.4f}), {verdict}; runs {test['n_a']} vs "
                     f"{test['n_b']}.")
    parts += [f"- {note}" for note in section.notes]
    return "\n".join(parts) + "\n"


@dataclass
class Provenance:
    data: str
    machine: str
    packages: str
    commits: str
    commands: list[str]
    report: str

    def lines(self) -> list[tuple[str, str]]:
        return [("Data", self.data), ("Machine", self.machine), ("Packages", self.packages),
                ("Git commit", self.commits), ("Produced by", " ; ".join(self.commands) or "no runs"),
                ("Report", self.report)]

    def markdown(self) -> str:
        return "\n".join(f"- **{k}**: {v}" for k, v in self.lines()) + "\n"

    def csv_comment(self) -> str:
        return "".join(f"# {k}: {v}\n" for k, v in self.lines())

    def short(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.lines()]


def provenance(records: pd.DataFrame, runs: pd.DataFrame, source: str, report_command: str,
               older: int = 0) -> Provenance:
    """Where these records' numbers come from: data, machine, packages, commits and the exact commands (each
    sweep's command from its parent run, else each run's own)."""
    join = lambda values: " ; ".join(sorted(set(v for v in values if v))) or "–"  # noqa: E731
    parent_commands = runs.set_index("run_id")["tags.command"] if "tags.command" in runs.columns else pd.Series()
    commands = []
    for parent, command, row in zip(records["parent"], records["command"], records.itertuples()):
        text = parent_commands.get(parent, "") if parent else ""
        text = text or command or shlex.join(["python", "-m", "benchmark", f"experiment={row.table}",
                                              f"dataset={row.dataset}", f"model={row.model}", f"seed={int(row.seed)}"])
        if f"`{text}`" not in commands:
            commands.append(f"`{text}`")
    report = f"`{report_command}` from the {source} ({len(records)} runs"
    report += f"; {older} older runs of the same cell and seed left out)" if older else ")"
    return Provenance(join(records["data"]), join(records["machine"]), join(records["packages"]),
                      join(records["git_commit"]), commands, report)


# ---------------------------------------------------------------------------------------------- the effects
def effects_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (planted effect, variant) of the `effects` experiment: test AUC over seeds, the data's oracle
    AUC, and the change against the full MIAN on the same data with Welch's test."""
    effects = records[(records["table"] == "effects") & (records["model"] == "mian")]
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


def effects_markdown(frame: pd.DataFrame, data: str) -> str:
    command = "python -m benchmark experiment=effects hydra/launcher=local_parallel"
    body = []
    for protocol, effect in dict.fromkeys(zip(frame["protocol"], frame["effect"])):
        mine = frame[(frame["effect"] == effect) & (frame["protocol"] == protocol)].set_index("variant")
        oracle = float(mine["oracle_auc"].iloc[0])
        cells = [protocol, effect, "–" if math.isnan(oracle) else f"{oracle:.4f}"]
        for variant in EFFECT_VARIANTS:
            if variant not in mine.index:
                cells.append("not run")
                continue
            r = mine.loc[variant]
            text = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
            text += not_learned_suffix(r["not_learned_runs"], r["runs"])
            if variant != "full":
                text += f"; {r['diff_vs_full']:+.4f}, p {fmt_p(r['p'])}"
            cells.append(f"**{text}**" if r["removes_its_module"] else text)
        body.append(cells)
    header = ["protocol", "planted effect", "oracle AUC"] + [ABLATION_LABELS[v] for v in EFFECT_VARIANTS]
    return "\n".join([
        "## Synthetic data with one planted effect at a time", "",
        f"Data: {data}.", f"Command: `{command}`.", "",
        md_table(header, body), "",
        "Cells: test AUC mean ± std over seeds (runs); for an ablation, its change against the full MIAN on the same "
        "data and Welch's two-sided p. **Bold**: the ablation that removes the module meant to model the planted "
        "effect (IBIM for the behaviour sequence, IUIM for user fields x item, ICIM for context x item); if MIAN's "
        "modules do what the paper says, the bold cell is the one that loses AUC and the others stay level. "
        + NOT_LEARNED_NOTE, ""])


# The arms of experiment=effects (conf/arm/) in the controls table's order, and what each is.
CONTROL_ARMS = ("din", "dien", "deepfm", "xdeepfm", "mian_additive", "mian_per_position", "mian_bahdanau",
                "mian_bilinear", "mian_din")
ARM_LABELS = {**{m: MODEL_LABELS[m] for m in MODELS}, "mian_additive": "MIAN additive (literal)",
              "mian_per_position": "MIAN per_position", "mian_bahdanau": "MIAN bahdanau",
              "mian_bilinear": "MIAN bilinear", "mian_din": "MIAN din"}
# The positive controls the effects experiment runs for each planted effect (conf/experiment/effects.yaml).
EFFECT_CONTROLS = {"sequence": ("din", "dien", "deepfm"), "user": ("deepfm", "xdeepfm"),
                   "context": ("deepfm", "xdeepfm")}
LEARNED_MARGIN = 0.05  # a model learned a planted effect when its test AUC is within this of the oracle's


def arm_of(record: pd.Series) -> str:
    """The conf/arm/ name of an effects run: the baseline's name, `mian_<ablation>`, or `mian_<IBIM reading>`."""
    if record["model"] != "mian":
        return str(record["model"])
    if record["variant"] != "full":
        return f"mian_{record['variant']}"
    readings = dict(part.split("=", 1) for part in str(record["reading"]).split())
    return f"mian_{readings.get('ibim_score', 'additive')}"


def controls_frame(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (planted effect, arm) of the effects experiment: test AUC, its gap to the oracle, whether it
    learned the effect (within LEARNED_MARGIN of the oracle), and for MIAN's readings the change against the
    ablation that removes the effect's module (does the module, under this reading, matter?)."""
    runs = records[records["table"] == "effects"].copy()
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


def controls_markdown(frame: pd.DataFrame) -> tuple[str, str]:
    """(the verdict in words for the top of effects.md, the controls table section)."""
    if frame.empty:
        return "", ""
    verdicts, body = [], []
    for protocol, effect in dict.fromkeys(zip(frame["protocol"], frame["effect"])):
        mine = frame[(frame["effect"] == effect) & (frame["protocol"] == protocol)]
        oracle = float(mine["oracle_auc"].iloc[0])
        best = mine.loc[mine["auc_mean"].idxmax()]
        if not mine["learned_effect"].any():
            verdicts.append(
                f"**Defect: under the protocol `{protocol}` no model learns the planted {effect} effect.** The best, "
                f"{best['label']}, reaches test AUC {best['auc_mean']:.4f} against the oracle's {oracle:.4f} (gap "
                f"{best['gap_to_oracle']:.3f} > {LEARNED_MARGIN}): the generator or this protocol keeps the effect "
                "from being learned, so the ablation rows for it say nothing about MIAN's module.")
        else:
            learners = ", ".join(mine[mine["learned_effect"]]["label"])
            verdicts.append(f"Under the protocol `{protocol}` the planted {effect} effect is learnable: within "
                            f"{LEARNED_MARGIN} of the oracle's test AUC {oracle:.4f}: {learners}.")
        for _, r in mine.iterrows():
            auc = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
            auc += not_learned_suffix(r["not_learned_runs"], r["runs"])
            module = ("–" if math.isnan(r["diff_vs_module_removed"])
                      else f"{r['diff_vs_module_removed']:+.4f}, p {fmt_p(r['p_vs_module_removed'])}")
            diag = lambda key, digits=2: ("–" if math.isnan(r[f"{key}_mean"])  # noqa: E731
                                          else f"{r[f'{key}_mean']:.{digits}f}")
            body.append([protocol, effect, r["label"] + (" (control)" if r["control"] else ""), f"{oracle:.4f}",
                         f"**{auc}**" if r["learned_effect"] else auc, f"{r['gap_to_oracle']:.4f}", module,
                         diag("diag_train_loss_ratio", 3), diag("diag_ibim_entropy"), diag("diag_ibim_max_weight")])
    header = ["protocol", "planted effect", "model", "oracle AUC", "test AUC", "gap to oracle",
              "vs its module removed", "train loss ÷ base", "IBIM entropy", "IBIM max weight"]
    table = "\n".join([
        "## Positive controls and MIAN's score readings", "",
        md_table(header, body), "",
        f"Cells: test AUC mean ± std over seeds (runs); **bold**: within {LEARNED_MARGIN} of the oracle's AUC (the "
        "model learned the effect). `vs its module removed`: a MIAN reading's AUC minus that of MIAN without the "
        "module meant for the effect (w/o IBIM for the sequence, w/o IUIM for user x item, w/o ICIM for context x "
        "item), with Welch's p: does the module, under this reading, matter? The last three columns are the last "
        "epoch's diagnostics, mean over runs (benchmark/diagnostics.py): the training loss over the base-rate "
        "entropy (1.0: nothing learned), IBIM's weight entropy over log(history length) (1.0: uniform) and its "
        "largest weight. Readings: docs/mian.md. " + NOT_LEARNED_NOTE, ""])
    return "\n\n".join(verdicts) + "\n", table


# ----------------------------------------------------------------------------------------------- the readings
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


def readings_markdown(frame: pd.DataFrame, dataset: str, data: str) -> str:
    label = DATASET_LABELS.get(dataset, dataset)
    best = MODEL_LABELS.get(str(frame["best_baseline"].iloc[0]), "best baseline") if len(frame) else ""
    body = []
    diff = lambda r, key: ("–" if math.isnan(r[f"diff_vs_{key}"])  # noqa: E731
                           else f"{r[f'diff_vs_{key}']:+.4f}, p {fmt_p(r[f'p_vs_{key}'])}")
    diag = lambda r, key: "–" if math.isnan(r[f"{key}_mean"]) else f"{r[f'{key}_mean']:.2f}"  # noqa: E731
    for _, r in frame.iterrows():
        auc = f"{fmt(r['auc_mean'], r['auc_std'])} ({int(r['runs'])})"
        auc += not_learned_suffix(r["not_learned_runs"], r["runs"])
        body.append([ENCODER_LABELS.get(r["encoder"], r["encoder"]), r["ibim_score"], r["source"], auc,
                     f"{r['logloss_mean']:.4f}", "" if r["ibim_score"] == "additive" else diff(r, "additive"),
                     diff(r, "no_ibim"), diff(r, "best_baseline"), diag(r, "diag_ibim_entropy"),
                     diag(r, "diag_ibim_max_weight")])
    header = ["encoder", "IBIM score", "runs from", "test AUC", "Logloss", "vs additive", "vs w/o IBIM",
              f"vs {best}", "IBIM entropy", "IBIM max weight"]
    return "\n".join([
        f"## {label}", "", f"Data: {data}.", "", md_table(header, body), "",
        "Cells: test AUC mean ± std over seeds (runs), Logloss mean; each `vs` column: the difference in mean test "
        "AUC and Welch's p against the literal additive reading with the same encoder, against MIAN w/o IBIM "
        f"(table3 runs; it has no IBIM, so no reading) and against the best baseline of table2 ({best}). The IBIM "
        "columns are the last epoch's diagnostics (benchmark/diagnostics.py; runs older than them show –): weight "
        "entropy over log(history length), 1.0 uniform, and the largest weight. " + NOT_LEARNED_NOTE, ""])


# ------------------------------------------------------------------------------------------- the efficiency
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


def efficiency_markdown(frame: pd.DataFrame, dataset: str, command: str, data: str) -> str:
    parts = [f"## {DATASET_LABELS.get(dataset, dataset)}", ""]
    if frame["runs"].sum():
        parts.append(f"Data: {data}.")
    else:
        parts.append(f"**Not run here**. To run it: `{command}`, then `python -m benchmark.report`.")
    parts += ["Paper column: Amazon Books on 4x NVIDIA Tesla K80 (Section 4.5): compare the ratios to DIN, "
              "not the seconds.", ""]
    header = ["", "runs", "s/epoch", "first epoch s", "÷ DIN", "step", "paper s/epoch", "paper ÷ DIN"]
    body = []
    for _, rec in frame.iterrows():
        time = fmt(rec["epoch_time_mean_s_mean"], rec["epoch_time_mean_s_std"], 3) if rec["runs"] else "not run"
        body.append([
            rec["row"], str(rec["runs"]), f"**{time}**" if rec["best_epoch_time"] else time,
            fmt(rec["first_epoch_time_s_mean"], rec["first_epoch_time_s_std"], 3) if rec["runs"] else "–",
            "–" if math.isnan(rec["relative_to_din"]) else f"{rec['relative_to_din']:.2f}", rec["step_mode"] or "–",
            "–" if math.isnan(rec["paper_seconds_per_epoch"]) else f"{rec['paper_seconds_per_epoch']:.0f}",
            "–" if math.isnan(rec["paper_seconds_per_epoch"]) else f"{rec['paper_relative_to_din']:.2f}",
        ])
    parts.append(md_table(header, body))
    parts.append("")
    parts.append("s/epoch: the training part of an epoch after the first (warm-up) one, mean ± std over seeds; "
                 "first epoch shown apart; **bold**: fastest.")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------- writing
def _csv(frame: pd.DataFrame, header: str) -> str:
    return header + frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")


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


def build_report(data: RunData, out: Path, paper_dir: Path, baseline: str, report_command: str) -> list[Path]:
    """Write every results file from `data`; returns the paths written."""
    from benchmark import figures

    paper, paper_eff = read_paper(paper_dir)
    records, older = job_records(data.runs)
    written: list[Path] = []

    def write(name: str, content: str | bytes) -> None:
        path = out / name
        write_atomic(path, content)
        written.append(path)

    all_tests: list[dict[str, Any]] = []
    for table in ("table2", "table3", "table4"):
        used = records[records["table"] == table]
        if table == "table3":  # the baseline rows may come from table2
            used = pd.concat([used, records[(records["table"] == "table2") & (records["model"] == baseline)]])
        datasets = ordered(list(used["dataset"]), DATASETS)
        sections, frames, texts = [], [], []
        cells = [(dataset, protocol) for dataset in datasets
                 for protocol in protocols_of(used[used["dataset"] == dataset])]
        for dataset, protocol in cells:
            if table == "table2":
                section = table2_section(records, paper, dataset, protocol)
            elif table == "table3":
                section = table3_section(records, paper, dataset, baseline, protocol)
            else:
                section = table4_section(records, paper, dataset, protocol)
            command = run_command(table, dataset)
            if table == "table3" and section.dataset in AMAZON:
                command = f"{run_command('table2', dataset)} && {command}"
            frame = section_frame(section, command)
            in_section = pd.concat([r.runs for r in section.rows])
            data_text = " ; ".join(sorted(set(in_section["data"]))) if len(in_section) else ""
            sections.append(section)
            frames.append(frame)
            texts.append(section_markdown(section, frame, command, data_text))
            all_tests += section.tests
        if table == "table3":
            used = pd.concat([pd.concat([r.runs for r in s.rows]) for s in sections]).drop_duplicates("run_id")
        prov = provenance(used, data.runs, data.source, report_command, int((older["table"] == table).sum()))
        write(f"{table}.md", f"# {TITLES[table]}\n\n{prov.markdown()}\n" + "\n".join(texts))
        write(f"{table}.csv", _csv(pd.concat(frames, ignore_index=True), prov.csv_comment()))
        written += write_figures(table, records, data, prov, figures, out)

    used = records[records["table"] == "efficiency"]
    frames, texts = [], []
    for dataset in ordered(list(used["dataset"]), DATASETS):
        command = run_command("efficiency", dataset)
        frame = efficiency_frame(records, paper_eff, dataset, command)
        mine = used[used["dataset"] == dataset]
        frames.append(frame)
        texts.append(efficiency_markdown(frame, dataset, command, " ; ".join(sorted(set(mine["data"])))))
    prov = provenance(used, data.runs, data.source, report_command, int((older["table"] == "efficiency").sum()))
    write("efficiency.md", f"# {TITLES['efficiency']}\n\n{prov.markdown()}\n" + "\n".join(texts))
    write("efficiency.csv", _csv(pd.concat(frames, ignore_index=True), prov.csv_comment()))

    used = records[records["table"] == "effects"]
    if len(used):
        frame = effects_frame(records)
        prov = provenance(used, data.runs, data.source, report_command, int((older["table"] == "effects").sum()))
        controls = controls_frame(records)
        verdict, controls_text = controls_markdown(controls)
        write("effects.md", f"# {TITLES['effects']}\n\n{verdict}\n{prov.markdown()}\n"
              + effects_markdown(frame, " ; ".join(sorted(set(used["data"])))) + "\n" + controls_text)
        write("effects.csv", _csv(frame, prov.csv_comment()))
        if len(controls):
            write("effects_controls.csv", _csv(controls, prov.csv_comment()))

    used = records[records["table"] == "readings"]
    if len(used):
        frames, texts, behind = [], [], []
        for dataset in ordered(list(used["dataset"]), DATASETS):
            frame = readings_frame(records, dataset)
            if frame.empty:
                continue
            frames.append(frame)
            mine = records[(records["dataset"] == dataset) & (
                (records["table"] == "readings") | ((records["table"] == "table4") & (records["reading"] == ""))
                | ((records["table"] == "table3") & (records["variant"] == "no_ibim"))
                | ((records["table"] == "table2") & (records["model"] == frame["best_baseline"].iloc[0])))]
            behind.append(mine)
            texts.append(readings_markdown(frame, dataset, " ; ".join(sorted(set(mine["data"])))))
        if frames:
            behind_all = pd.concat(behind)
            prov = provenance(behind_all, data.runs, data.source, report_command)
            write("readings.md", f"# {TITLES['readings']}\n\n{prov.markdown()}\n" + "\n".join(texts))
            write("readings.csv", _csv(pd.concat(frames, ignore_index=True), prov.csv_comment()))

    from benchmark.verdict import one_per_seed, verdict_frame, verdict_markdown

    used = one_per_seed(records)
    if len(used):
        frame = verdict_frame(records)
        prov = provenance(used, data.runs, data.source, report_command)
        write("verdict.md", f"# {TITLES['verdict']}\n\n{prov.markdown()}\n{verdict_markdown(frame)}")
        write("verdict.csv", _csv(frame, prov.csv_comment()))

    prov = provenance(records, data.runs, data.source, report_command, len(older))
    tests = pd.DataFrame(all_tests, columns=["table", "dataset", "protocol", "metric", "a", "b", "n_a", "n_b", "mean_a",
                                             "mean_b", "diff", "t", "p"])
    write("significance.csv", _csv(tests, prov.csv_comment() + "# Welch's t-test (scipy.stats.ttest_ind, "
                                   "equal_var=False) over seeds, two-sided\n"))
    return written


def write_figures(table: str, records: pd.DataFrame, data: RunData, prov: Provenance, figures: Any,
                  out: Path) -> list[Path]:
    """table2: validation curves per model and Figure 6 (GIM weights); table4: Figure 5 (curves per encoder)."""
    written = []
    runs = records[records["table"] == table]
    for dataset in ordered(list(runs["dataset"]), DATASETS):
        mine = runs[runs["dataset"] == dataset]
        if mine.empty:
            continue
        label = DATASET_LABELS.get(dataset, dataset)
        lines = prov.short()

        def write_curves(name: str, column: str, canonical: tuple[str, ...], labels: dict[str, str],
                         title: str) -> None:
            """Validation curves, one line per value of `column` (mean over its runs)."""
            groups = {labels.get(v, v): list(mine[mine[column] == v]["run_id"])
                      for v in present_in_order(list(mine[column]), canonical)}
            path = out / "figures" / f"{name}_{dataset}.png"
            write_atomic(path, figures.training_curves(data.history, groups, f"{title} on {label}: mean over seeds "
                                                       "per epoch", lines))
            written.append(path)

        if table == "table2":
            write_curves("table2_curves", "model", MODELS, MODEL_LABELS, "All models")
            mian = mine[(mine["model"] == "mian")]
            with_gim = [r for r in mian["run_id"] if (data.gim["run_id"] == r).any()]
            if with_gim:
                first = with_gim[0]
                seed = int(mian.set_index("run_id").loc[first, "seed"])
                path = out / "figures" / f"figure6_gim_{dataset}.png"
                title = (f"GIM weights of {data.gim[data.gim['run_id'] == first]['example'].nunique()} random test "
                         f"examples, MIAN on {label} (seed {seed}, run {first[:8]})\n"
                         + gim_share_note(data.gim, with_gim))
                write_atomic(path, figures.gim_heatmap(data.gim[data.gim["run_id"] == first], title, lines))
                written.append(path)
        elif table == "table4":
            write_curves("figure5_encoders", "encoder", ENCODERS, ENCODER_LABELS, "MIAN's behaviour encoder")
    return written


# ---------------------------------------------------------------------------------------------------- main
def read_sources(uris: list[str] | None, stores: Path | None) -> list[RunData]:
    """The stores given by URI (the default store when neither is given) and those archived under `stores`."""
    from benchmark.stores import extracted_stores
    from benchmark.tracking import resolve_tracking_uri

    parts = [read_mlflow(resolve_tracking_uri(uri)) for uri in (uris or ([] if stores else [None]))]
    if stores is not None:
        if not stores.is_dir():
            raise ValueError(f"--stores {stores} is not a folder")
        with extracted_stores(stores) as found:
            parts += [read_mlflow(f"sqlite:///{s.db}", s.place, s.artifacts) for s in found]
    return parts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmark.report", description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", action="append", metavar="URI",
                        help="MLflow store to read (default: $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db);"
                        " give it more than once to read several stores as one")
    parser.add_argument("--stores", type=Path, metavar="DIR",
                        help="read the stores archived under DIR (each folder's runs.tar.gz; the ones DIR/stores.txt "
                        "lists when it exists), e.g. results/runs for the committed tables; with --tracking-uri too")
    parser.add_argument("--from-export", type=Path, metavar="DIR",
                        help="read the runs from an export folder (runs.csv, history.csv, gim_weights.csv) instead")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results", help="output folder (default results/)")
    parser.add_argument("--export", type=Path, metavar="DIR",
                        help="where to write the export of the runs read (default <out>/export; not with "
                        "--from-export)")
    parser.add_argument("--table3-baseline", default="dien", choices=[m for m in MODELS if m != "mian"],
                        help="baseline row of Table 3 (default dien, as in the paper)")
    parser.add_argument("--force", action="store_true",
                        help="write even when the output's results came from runs the sources given lack")
    parser.add_argument("--paper-dir", type=Path, default=PAPER_DIR, help="folder of the paper's CSVs")
    args = parser.parse_args(argv)
    report_command = shlex.join(["python", "-m", "benchmark.report", *argv])
    try:
        for option, folder in (("--out", args.out), ("--export", args.export)):
            if folder is not None and folder.exists() and not folder.is_dir():
                raise ValueError(f"{option} {folder} is a file: give a folder")
        if args.from_export is not None:
            data = read_export(args.from_export)
        else:
            data = merge(read_sources(args.tracking_uri, args.stores))
        left_out = runs_left_out(args.export or args.out / "export", data)
        if len(left_out) and not args.force:
            raise ValueError(left_out_message(left_out, args.out))
        written = build_report(data, args.out, args.paper_dir, args.table3_baseline, report_command)
        if args.from_export is None:
            written += write_export(data, args.export or args.out / "export")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
