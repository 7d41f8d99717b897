"""Reading the runs: MLflow stores (and their committed archives) or an export, as the same three frames, and
the per-run records the tables are built from."""
from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from benchmark import PAPER_DIR
from benchmark.io import atomic_write_bytes
from benchmark.names import EXPERIMENTS
from benchmark.report.names import DATASET_LABELS, DIAGNOSTICS
from benchmark.tracking.record import RunRecord



# Three frames, the same whichever the source:
# - `runs`: one row per FINISHED run of an experiment config (param `experiment_name` in EXPERIMENTS) and the
#   sweep parent runs they belong to; columns `run_id`, `status`, `experiment`, `start_time`, `tags.*`,
#   `params.*` (strings, "" when absent) and `metrics.*` (floats, NaN when absent);
# - `history`: every per-epoch metric of those runs: `run_id`, `key`, `step`, `value`;
# - `gim`: the GIM weights MIAN runs logged (gim_weights.csv), long form: `run_id`, `example`, `test_index`,
#   `label`, `prob`, `position`, `name`, `weight`.
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


def ghost_run_ids(client: MlflowClient, experiment_ids: list[str]) -> list[str]:
    """RUNNING runs of these experiments that no live process owns (benchmark.tracking.is_orphaned): the
    report lists them and leaves them out, like every run that is not FINISHED."""
    from benchmark.tracking import ghost_runs

    running = client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'", max_results=50_000)
    return [run.info.run_id for run in ghost_runs(list(running))]


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
    ghosts = ghost_run_ids(client, list(experiments))
    if ghosts:
        print(f"[report] {place or uri}: left out {len(ghosts)} RUNNING run(s) that no live process owns (end them "
              f"with `python -m benchmark.tracking reap`): {', '.join(ghosts)}", file=sys.stderr)
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
    if dataset == "calibrated":
        return (f"Calibrated synthetic (benchmark/data/calibrated.py, tier {get('data.tier')}, data seed "
                f"{get('dataset.seed')}: {get('data.users')} users, {get('data.items')} items, train/valid/test "
                f"samples {splits})")
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


# A table cell and seed: one run counts for each (the latest).
CELL_KEY = ["table", "dataset", "model", "variant", "encoder", "reading", "protocol", "effect", "knockout", "data_seed",
            "seed"]


class _Prefixed(Mapping[str, str]):
    """A report row's `tags.*` (or `params.*`) columns as the run's tags (params): keys without the prefix."""

    def __init__(self, row: pd.Series, prefix: str) -> None:
        self.row, self.prefix = row, prefix

    def __getitem__(self, key: str) -> str:
        return self.row[self.prefix + key]

    def __iter__(self) -> Iterator[str]:
        return (str(c)[len(self.prefix):] for c in self.row.index if str(c).startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def record_of(row: pd.Series) -> RunRecord:
    """A run's identity (benchmark/tracking/record.py), old runs' missing tags read as its fallbacks."""
    return RunRecord.from_tags(_Prefixed(row, "tags."), _Prefixed(row, "params."))


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
    """One row per job run (sweep parents left out) with the fields the tables use, its identity read through
    RunRecord. When a cell's seed was run more than once (a sweep repeated), the latest finished run counts; the
    older ones are returned apart."""
    jobs = runs[_col(runs, "params.experiment_name").isin(EXPERIMENTS) & (_col(runs, "tags.model") != "")]
    identity = [record_of(row) for _, row in jobs.iterrows()]
    records = pd.DataFrame({
        "run_id": jobs["run_id"], "start_time": _col(jobs, "start_time"),
        "parent": _col(jobs, "tags.mlflow.parentRunId"),
        "table": [r.experiment for r in identity], "dataset": [r.dataset for r in identity],
        "model": [r.model for r in identity], "variant": [r.variant for r in identity],
        "encoder": [r.encoder for r in identity],
        "seed": pd.to_numeric(pd.Series(["" if r.seed is None else str(r.seed) for r in identity], index=jobs.index,
                                        dtype=object), errors="coerce"),
        "reading": [r.reading for r in identity],
        "learned": [learned_of(row) for _, row in jobs.iterrows()],
        "protocol": [r.protocol for r in identity],
        "step_mode": _col(jobs, "tags.step_mode"), "git_commit": _col(jobs, "tags.git_commit"),
        "packages": [p or f"torch=={t}" for p, t in zip(_col(jobs, "tags.packages"), _col(jobs, "tags.torch_version"))],
        "command": _col(jobs, "tags.command"),
        "data": [data_description(row) for _, row in jobs.iterrows()],
        "machine": [machine_description(row) for _, row in jobs.iterrows()],
    })
    # experiment=effects: the planted effect or mechanism; the calibrated data: its data seed and knock-out variant
    records["effect"] = [r.effect for r in identity]
    records["oracle_auc"] = pd.to_numeric(_col(jobs, "params.data.oracle_test_auc"), errors="coerce")
    records["data_seed"] = pd.Series(["" if r.data_seed is None else str(r.data_seed) for r in identity],
                                     index=jobs.index, dtype=object)
    records["knockout"] = pd.Series(["" if r.knockout is None else str(r.knockout).lower() for r in identity],
                                    index=jobs.index, dtype=object)
    for name, param in (("knockout_auc", "knockout_test_auc"), ("fm_surrogate_auc", "fm_surrogate_auc"),
                        ("strength", "strength")):
        records[name] = pd.to_numeric(_col(jobs, f"params.data.{param}"), errors="coerce")
    for name in ("test_auc", "test_logloss", "test_gauc", "epoch_time_mean_s", "first_epoch_time_s", "best_epoch",
                 "best_val_auc", *DIAGNOSTICS):
        records[name] = jobs[f"metrics.{name}"] if f"metrics.{name}" in jobs.columns else np.nan
    gains = [c for c in jobs.columns if c.startswith("metrics.diag_ln_gain_")]
    records["diag_ln_gain_min"] = jobs[gains].min(axis=1) if gains else np.nan  # the smallest LayerNorm gain RMS
    records["config"] = [config_fingerprint(row) for _, row in jobs.iterrows()]
    latest = records.sort_values(["start_time", "run_id"], kind="stable").drop_duplicates(CELL_KEY, keep="last")
    older = records[~records["run_id"].isin(latest["run_id"])]
    return records[records["run_id"].isin(latest["run_id"])].reset_index(drop=True), older.reset_index(drop=True)


# Params that name where and how a run was kept, not what it trained: left out of its config fingerprint (the
# `protocol` node holds the protocol's own values, only compared with the trainer's for the protocol tag).
BOOKKEEPING_PARAMS = ("params.experiment_name", "params.protocol_name", "params.protocol.", "params.n_parameters",
                      "params.tracking.", "params.data.", "params.dataset.raw_dir", "params.dataset.download",
                      "params.trainer.checkpoint_dir", "params.trainer.progress", "params.trainer.resume")


def config_fingerprint(row: pd.Series) -> str:
    """A short hash of what a run trained (model, ablation, data, trainer and seed params): two runs with the same
    fingerprint are the same arm run twice, e.g. MIAN under `shared` and under `library`, whose settings differ
    only for the baselines. '' for a run that logged none of them."""
    items = sorted((k, str(v)) for k, v in row.items()
                   if k.startswith("params.") and not k.startswith(BOOKKEEPING_PARAMS) and str(v) != "")
    return hashlib.sha256(repr(items).encode()).hexdigest()[:12] if items else ""  # '': nothing to compare


def read_paper(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = pd.read_csv(folder / "reported_results.csv", dtype={"table": str, "variant": str},
                          keep_default_na=False)
    efficiency = pd.read_csv(folder / "reported_efficiency.csv")
    return results, efficiency


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
