"""Efficiency benchmark: every model's training epoch through this suite's trainer and through DeepCTR-Torch's
own `fit()`, in one process, on the same synthetic rows (paper Section 4.5 for scale).

    python -m benchmark.bench [--models mian,din,...] [--batch-sizes 128,2048] [--steps 50] [--repeats 5]
                              [--device auto] [--compile-models mian] [--threads 1] [--out results/efficiency]

For each model and batch size B, on a training split of exactly steps x B rows of the suite's synthetic data:
    eager    Trainer.train_epoch, trainer.cuda_graph=false
    graph    Trainer.train_epoch, the whole step captured as one CUDA graph (CUDA only)
    compile  as graph (eager on a CPU) plus trainer.compile=true (only the models in --compile-models)
    fit      the library's own model class (build_library_net, without the adapter's cheaper equivalents of
             some library layers: docs/baselines.md) trained by its own
             fit(x, y, batch_size=B, epochs=1, verbose=0, shuffle=True): no metrics, no progress bar, its
             cheapest setting; its epoch includes its per-epoch set-up (concatenating the columns). MIAN has none.
A timed unit is one epoch (steps steps, each of B rows). Every variant first runs one untimed epoch (warm-up:
allocator, CUDA-graph capture, compilation; reported as warmup_s), then `repeats` timed epochs, the variants
interleaved (A B C, C B A, ...) so that load from other processes falls on all of them alike; tables give
medians. ms/step = epoch time / steps. Projected epoch times at the paper's scale are ms/step x
ceil(samples / B) with the sample counts of the paper's Table 1 (all splits: an upper bound for the training
part).

On CUDA it also checks that graphed and eager steps compute the same thing: the same seed and rows, dropout 0,
the losses of the first steps must agree within `EQUIVALENCE_RTOL` (see `graph_equivalence`).

Writes <out>/<machine>.csv and <out>/<machine>.md (atomically), with the machine, versions, git commit, the exact
command and the load average before and after.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmark import CONFIG_DIR, PAPER_DIR, PROJECT_ROOT
from benchmark.config import validate_config
from benchmark.data import load_dataset
from benchmark.data.schema import Dataset, Schema
from benchmark.io import atomic_write_text
from benchmark.machine import machine_facts, machine_slug
from benchmark.paths import results_dir
from benchmark.trainer import Trainer, select_device, synchronize
from benchmark.names import DEEPCTR_MODELS, NATIVE_MODELS
from models import build_model

MODELS = (*NATIVE_MODELS, *DEEPCTR_MODELS)  # MIAN first: the efficiency table compares to it
PAPER_SAMPLES = {"electronics": 1_689_188, "books": 8_900_038}  # paper Table 1, samples of all splits
PAPER_EFFICIENCY = [PAPER_DIR / "reported_efficiency.csv",
                    PROJECT_ROOT.parent / "shared" / "paper" / "reported_efficiency.csv"]
EQUIVALENCE_STEPS = 8
EQUIVALENCE_RTOL = 1e-3
EVAL_ROWS = 1024  # the trainer needs valid/test splits; the benchmark never evaluates
MIN_TIMED_STEPS = 30  # steps x repeats below which the targets' verdicts carry a caution


# ---- data ------------------------------------------------------------------------------------------------------
def compose_config(*overrides: str) -> DictConfig:
    """The config `python -m benchmark <overrides>` would see, validated."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["trainer.progress=false", *overrides])
    validate_config(cfg)
    return cfg


def synthetic_rows(rows: int, seed: int = 0) -> Dataset:
    """The suite's synthetic data (conf/dataset/synthetic.yaml) with enough users for `rows` training rows;
    the training split is tiled should it still fall short."""
    base = compose_config("dataset=synthetic")
    per_user = (int(base.dataset.min_samples_per_user) + int(base.dataset.max_samples_per_user)) / 2
    train_share = 1.0 - float(base.dataset.valid_fraction) - float(base.dataset.test_fraction)
    users = math.ceil(rows / (per_user * train_share) * 1.1) + 10
    cfg = compose_config("dataset=synthetic", f"dataset.num_users={users}", f"dataset.seed={seed}")
    dataset = load_dataset(cfg.dataset)
    train = dataset.splits["train"]
    n = len(train["label"])
    if n < rows:
        reps = math.ceil(rows / n)
        dataset.splits["train"] = {k: np.concatenate([v] * reps) for k, v in train.items()}
    return dataset


def with_train_rows(dataset: Dataset, rows: int) -> Dataset:
    """The first `rows` training rows, and small validation and test splits."""
    splits = {"train": {k: v[:rows] for k, v in dataset.splits["train"].items()}}
    for name in ("valid", "test"):
        splits[name] = {k: v[:EVAL_ROWS] for k, v in dataset.splits[name].items()}
    return Dataset(name=dataset.name, schema=dataset.schema, splits=splits, sequences=dataset.sequences,
                   stats=dict(dataset.stats))


def fit_inputs(model_cfg: DictConfig, schema: Schema, split: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The dict of column arrays DeepCTR-Torch's fit() takes, with the adapter's column names, from a split in
    the dense form (`Dataset.dense`)."""
    from models.deepctr_adapter import feature_layout

    neg_hist = model_cfg.name == "dien" and bool(model_cfg.use_negsampling)
    layout = feature_layout(schema, int(model_cfg.embedding_dim), neg_hist=neg_hist)
    columns = {}
    for name, (key, index) in layout.sources.items():
        values = split[key]
        columns[name] = values if values.ndim == 1 else values[:, index] if values.ndim == 2 else values[:, :, index]
    return columns


# ---- the variants ------------------------------------------------------------------------------------------------
@dataclass
class Variant:
    """One way of training one model: `run_epoch(epoch)` trains one epoch of the benchmark's rows."""

    name: str
    run_epoch: Callable[[int], None]
    step_mode: str
    warmup_s: float = math.nan
    times: list[float] = field(default_factory=list)


def trainer_variant(name: str, cfg: DictConfig, dataset: Dataset, device: torch.device, seed: int = 0) -> Variant:
    torch.manual_seed(seed)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, seed, device)
    trainer = Trainer(model, dataset, cfg.trainer, seed, device)
    mode = trainer.step_mode + (f" ({trainer.graph_reason})" if trainer.graph_reason else "")
    return Variant(name, lambda epoch: trainer.train_epoch(epoch, progress=False), mode)


def fit_variant(cfg: DictConfig, dataset: Dataset, device: torch.device) -> Variant:
    from models.deepctr_adapter import build_library_net

    net = build_library_net(cfg.model, dataset.schema, device)
    net.compile("adam", "binary_crossentropy")
    x = fit_inputs(cfg.model, dataset.schema, dataset.dense("train"))
    y = dataset.splits["train"]["label"]
    batch_size = int(cfg.trainer.batch_size)

    def run_epoch(epoch: int) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # fit() prints the device and the sample counts
            net.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)

    return Variant("fit", run_epoch, "deepctr_torch fit()")


def timed(run: Callable[[int], None], epoch: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    run(epoch)
    synchronize(device)
    return time.perf_counter() - start


def measure(variants: list[Variant], repeats: int, device: torch.device) -> None:
    """One untimed warm-up epoch each, then `repeats` timed epochs, interleaved and in alternating order."""
    for v in variants:
        v.warmup_s = timed(v.run_epoch, 0, device)
    for r in range(repeats):
        for v in variants if r % 2 == 0 else variants[::-1]:
            v.times.append(timed(v.run_epoch, r + 1, device))


def bench_model(model: str, batch_size: int, dataset: Dataset, device: torch.device, steps: int, repeats: int,
                compile_model: bool, dropout: float | None = None) -> list[Variant]:
    """Time every variant of one model at one batch size (rows: steps x batch_size)."""
    data = with_train_rows(dataset, steps * batch_size)
    common = [f"model={model}", f"trainer.batch_size={batch_size}", f"trainer.device={device}"]
    if dropout is not None:
        common.append(f"model.dropout={dropout}")
    variants = [trainer_variant("eager", compose_config(*common, "trainer.cuda_graph=false"), data, device)]
    if device.type == "cuda":
        variants.append(trainer_variant("graph", compose_config(*common, "trainer.cuda_graph=true"), data, device))
    if compile_model:
        cfg = compose_config(*common, f"trainer.cuda_graph={str(device.type == 'cuda').lower()}",
                             "trainer.compile=true")
        variants.append(trainer_variant("compile", cfg, data, device))
    if model != "mian":
        variants.append(fit_variant(compose_config(*common), data, device))
    measure(variants, repeats, device)
    for v in variants:  # free the trainers and their data (and CUDA graphs) before the next model
        v.run_epoch = _measured
    return variants


def _measured(epoch: int) -> None:
    raise RuntimeError("this variant has been measured and released")


# ---- graphed == eager -------------------------------------------------------------------------------------------
def graph_equivalence(model: str, dataset: Dataset, device: torch.device, batch_size: int = 128,
                      steps: int = EQUIVALENCE_STEPS, seed: int = 0, overrides: tuple[str, ...] = ()
                      ) -> dict[str, list[float]]:
    """Per-step training losses of the eager and the graphed step (same seed, same rows, dropout 0). The
    training split holds one batch, so each epoch is one step and its mean loss is that step's loss: the first
    step is the eager warm-up, the others are graph replays, each seeing the weights the previous steps left."""
    data = with_train_rows(dataset, batch_size)
    losses: dict[str, list[float]] = {}
    for mode in ("false", "true"):
        cfg = compose_config(f"model={model}", f"trainer.batch_size={batch_size}", f"trainer.device={device}",
                             "model.dropout=0.0", f"trainer.cuda_graph={mode}", *overrides)
        torch.manual_seed(seed)
        net = build_model(cfg.model, cfg.ablation, data.schema, seed, device)
        trainer = Trainer(net, data, cfg.trainer, seed, device)
        key = "graph" if mode == "true" else "eager"
        if mode == "true" and trainer.step_mode.split("+")[0] != "cuda_graph":
            key = f"graph fell back to eager: {trainer.graph_reason}"
        losses[key] = [trainer.train_epoch(epoch, progress=False) for epoch in range(1, steps + 1)]
    return losses


def max_relative_difference(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / max(abs(x), 1e-8) for x, y in zip(a, b))


# ---- the machine and the report -------------------------------------------------------------------------------
def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def paper_efficiency() -> tuple[dict[str, float], str]:
    """{model: seconds per Books epoch} from the paper's Section 4.5, and where they were read."""
    for path in PAPER_EFFICIENCY:
        if path.is_file():
            frame = pd.read_csv(path)
            books = frame[frame["dataset"] == "books"]
            hardware = ", ".join(sorted(set(books["hardware"])))
            return dict(zip(books["model"], books["seconds_per_epoch"].astype(float))), f"{path.name} ({hardware})"
    print(f"[bench] the paper's efficiency numbers were not found at {[str(p) for p in PAPER_EFFICIENCY]}; "
          "the report leaves them out", file=sys.stderr)
    return {}, "not found"


def rows_for(model: str, batch_size: int, steps: int, repeats: int, variants: list[Variant],
             paper: dict[str, float]) -> list[dict[str, Any]]:
    fit = next((v for v in variants if v.name == "fit"), None)
    eager = next(v for v in variants if v.name == "eager")
    fit_ms = statistics.median(fit.times) / steps * 1e3 if fit else math.nan
    eager_ms = statistics.median(eager.times) / steps * 1e3
    rows = []
    for v in variants:
        ms = statistics.median(v.times) / steps * 1e3
        rows.append({
            "model": model, "batch_size": batch_size, "variant": v.name, "step_mode": v.step_mode,
            "steps": steps, "repeats": repeats, "ms_per_step": ms, "ms_per_step_min": min(v.times) / steps * 1e3,
            "steps_per_s": 1e3 / ms, "epoch_s": statistics.median(v.times), "warmup_s": v.warmup_s,
            "speedup_vs_fit": fit_ms / ms if v.name != "fit" else math.nan,
            "speedup_vs_eager": eager_ms / ms,
            **{f"{name}_epoch_s": ms * math.ceil(samples / batch_size) / 1e3 for name, samples in PAPER_SAMPLES.items()},
            "paper_books_epoch_s": paper.get(model, math.nan),
        })
    return rows


def target_lines(frame: pd.DataFrame, device: torch.device, checks: dict[str, dict[str, list[float]]]) -> list[str]:
    """The issue's targets, measured here: met, missed, or not measured by this run."""

    def best(model: str, batch: int) -> pd.Series | None:
        ours = frame[(frame["model"] == model) & (frame["batch_size"] == batch) & (frame["variant"] != "fit")]
        return None if ours.empty else ours.loc[ours["ms_per_step"].idxmin()]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = []
    batch = 128 if 128 in set(frame["batch_size"]) else int(frame["batch_size"].min())
    if device.type == "cuda":
        row = best("mian", batch)
        if row is not None:
            lines.append(f"- MIAN at batch {batch}, best variant ({row['variant']}): {row['ms_per_step']:.3f} ms/step "
                         f"(target <= 1.0 ms at batch 128): {verdict(row['ms_per_step'] <= 1.0)}")
            lines.append(f"- MIAN epoch at Books size (batch {batch}): {row['books_epoch_s']:.1f} s "
                         f"(target < 90 s): {verdict(row['books_epoch_s'] < 90)}")
        for model in sorted(set(frame["model"]) - {"mian"}):
            for b in sorted(set(frame["batch_size"])):
                row = best(model, b)
                if row is not None and not math.isnan(row["speedup_vs_fit"]):
                    lines.append(f"- {model} at batch {b}: {row['speedup_vs_fit']:.2f}x faster than fit() "
                                 f"({row['variant']}; target >= 3x): {verdict(row['speedup_vs_fit'] >= 3)}")
        for model, losses in checks.items():
            keys = list(losses)
            if keys != ["eager", "graph"]:
                lines.append(f"- graphed == eager, {model}: NOT CHECKED ({keys[-1]})")
                continue
            diff = max_relative_difference(losses["eager"], losses["graph"])
            lines.append(f"- graphed == eager, {model}: first {len(losses['eager'])} step losses within "
                         f"{diff:.2e} relative (tolerance {EQUIVALENCE_RTOL}): {verdict(diff <= EQUIVALENCE_RTOL)}")
    else:
        row = frame[(frame["model"] == "din") & (frame["batch_size"] == batch) & (frame["variant"] == "eager")]
        if not row.empty:
            ratio = float(row["speedup_vs_fit"].iloc[0])
            lines.append(f"- DIN at batch {batch}, default trainer (eager): {ratio:.2f}x fit() "
                         f"(CPU target >= 1.5x): {verdict(ratio >= 1.5)}")
        row = frame[(frame["model"] == "din") & (frame["batch_size"] == batch) & (frame["variant"] == "compile")]
        if not row.empty:
            ratio = float(row["speedup_vs_fit"].iloc[0])
            lines.append(f"- DIN at batch {batch}, trainer.compile=true: {ratio:.2f}x fit(): {verdict(ratio >= 1.5)}")
        lines.append("- GPU targets (MIAN <= 1.0 ms/step, >= 3x fit(), Books epoch < 90 s, graphed == eager): not "
                     "measured on this machine; run benchmark/gpu_check.sh on a CUDA machine")
    return lines


def markdown(frame: pd.DataFrame, info: dict[str, str], meta: dict[str, str], targets: list[str],
             paper_source: str) -> str:
    shown = frame.copy()
    columns = ["model", "batch_size", "variant", "ms_per_step", "steps_per_s", "epoch_s", "warmup_s",
               "speedup_vs_fit", "speedup_vs_eager", "electronics_epoch_s", "books_epoch_s", "paper_books_epoch_s",
               "step_mode"]
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = ""
    for _, row in shown[columns].iterrows():
        cells = []
        for c in columns:
            value = row[c]
            if isinstance(value, float):
                cells.append("" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}")
            else:
                cells.append(str(value).replace("|", "/"))
        body += "| " + " | ".join(cells) + " |\n"
    lines = [f"# Training speed: this suite's trainer vs DeepCTR-Torch fit() ({meta['machine_slug']})", ""]
    lines += [f"- {k}: {v}" for k, v in {**info, **meta}.items() if k != "machine_slug"]
    lines += ["", "## Targets", "", *targets, "", "## Measurements", "",
              "Medians over the timed epochs; ms_per_step = epoch time / steps; speedup_vs_fit = fit() ms/step / "
              "this ms/step; electronics/books_epoch_s = ms/step x ceil(paper Table 1 samples / batch) "
              "(Electronics 1,689,188, Books 8,900,038 samples, all splits). paper_books_epoch_s: the paper's "
              f"Section 4.5, on 4x Tesla K80 ({paper_source}). The trainer's variants (eager, graph, compile) "
              "train this suite's model, fit() the library's own class: the same function and parameters "
              "(tests/test_baselines.py), but the adapter recomputes some library layers more cheaply "
              "(docs/baselines.md: DIEN's forward, the pooling, DIN's and DIEN's attention unit and Dice), so a "
              "speed-up is that of the adapter and the trainer together.", "", header + body]
    return "\n".join(lines)


def result_paths(out: Path, slug: str) -> tuple[Path, Path]:
    """The CSV and Markdown files of one machine's benchmark in `out`."""
    return out / f"{slug}.csv", out / f"{slug}.md"


def write_report(out: Path, variants_by_key: dict[tuple[str, int], list[Variant]], steps: int, repeats: int,
                 info: dict[str, str], meta: dict[str, str], checks: dict[str, dict[str, list[float]]],
                 device: torch.device) -> tuple[Path, Path]:
    paper, paper_source = paper_efficiency()
    rows = []
    for (model, batch), variants in variants_by_key.items():
        rows += rows_for(model, batch, steps, repeats, variants, paper)
    frame = pd.DataFrame(rows)
    targets = target_lines(frame, device, checks) if not frame.empty else []
    if targets and steps * repeats < MIN_TIMED_STEPS:
        targets.insert(0, f"- CAUTION: {steps} steps x {repeats} timed epochs per variant is too few timed steps "
                          f"(< {MIN_TIMED_STEPS}) for these verdicts: an indication only (defaults: 50 x 5)")
    slug = meta["machine_slug"]
    csv_path, md_path = result_paths(out, slug)
    comment = "".join(f"# {k}: {v}\n" for k, v in {**info, **meta}.items())
    atomic_write_text(csv_path, comment + frame.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(md_path, markdown(frame, info, meta, targets, paper_source))
    return csv_path, md_path


# ---- command line -----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmark.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, default: all")
    parser.add_argument("--batch-sizes", default="128,2048")
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant (after one warm-up)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--compile-models", default="mian",
                        help="models also timed with trainer.compile=true (comma-separated, or 'none')")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--no-check", action="store_true", help="skip the graphed == eager check (CUDA)")
    parser.add_argument("--out", type=Path, default=results_dir() / "efficiency")
    parser.add_argument("--force", action="store_true",
                        help="replace this machine's files in --out (otherwise an existing file stops the run)")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    except ValueError:
        parser.error(f"--batch-sizes {args.batch_sizes!r}: give comma-separated integers, e.g. 128,2048")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: give a folder")
    if args.threads < 0:
        parser.error(f"--threads {args.threads}: give a number of threads, or 0 for torch's default")
    args.compile_models = [] if args.compile_models == "none" else args.compile_models.split(",")
    unknown = sorted(set(args.models + args.compile_models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    if args.steps < 1 or args.repeats < 1 or any(b < 1 for b in args.batch_sizes):
        parser.error("--steps, --repeats and every batch size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = select_device(args.device)
    except (ValueError, RuntimeError) as error:
        sys.exit(f"error: --device {args.device!r}: {str(error).replace('trainer.device', '--device')}")
    slug = machine_slug(device)
    paths = result_paths(args.out, slug)
    existing = [str(p) for p in paths if p.exists()]
    if existing and not args.force:
        # an earlier measurement (perhaps a committed one of all models) must not be replaced by accident
        sys.exit(f"error: {' and '.join(existing)} already exist: pass --force to replace them, or --out another "
                 "folder")
    info = machine_facts(device)
    meta = {
        "machine_slug": slug,
        "command": "python -m benchmark.bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_before": load_average(),
        "data": f"synthetic (conf/dataset/synthetic.yaml), {args.steps} x batch training rows per model and batch",
    }
    print(f"[bench] {info.get('gpu', info['cpu'])}; load {meta['load_average_before']}", file=sys.stderr)
    dataset = synthetic_rows(max(args.batch_sizes) * args.steps)
    checks: dict[str, dict[str, list[float]]] = {}
    results: dict[tuple[str, int], list[Variant]] = {}
    for model in args.models:
        if device.type == "cuda" and not args.no_check:
            checks[model] = graph_equivalence(model, dataset, device)
        for batch in args.batch_sizes:
            started = time.perf_counter()
            results[(model, batch)] = bench_model(model, batch, dataset, device, args.steps, args.repeats,
                                                  model in args.compile_models)
            summary = ", ".join(f"{v.name} {statistics.median(v.times) / args.steps * 1e3:.2f}"
                                for v in results[(model, batch)])
            print(f"[bench] {model} batch {batch}: ms/step {summary} ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr)
            meta["load_average_after"] = load_average()
            paths = write_report(args.out, results, args.steps, args.repeats, info, meta, checks, device)
    print(f"[bench] wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return paths


if __name__ == "__main__":
    main()
