"""The training step on the stored layout against the layout before it, side by side in one run.

    python -m benchmark.bench_layout [--models mian,din,dien] [--rows N] [--batch-size B] [--steps S] [--repeats R]

Before, every sample carried its own padded [T, Fi] int64 copy of its history and of its negatives, and a batch
was `index_select` on those dense arrays. Now histories are stored once and each batch's windows are built by
index arithmetic (benchmark/batches.py). Both feed the same trainer's step on the synthetic data: the step of one
trainer is timed with its data held either way, the two alternating repeat by repeat (this machine is noisy, so
the ratio is the result, not the absolute times; the minimum of the repeats is the least disturbed by other
work). The two layouts' batches are checked equal first.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.bench import compose_config, load_average, synthetic_rows, with_train_rows
from benchmark.machine import cpu_model, machine_slug
from benchmark.trainer import Trainer
from models import build_model


class DenseSplit:
    """A split in the layout before: every array per sample (dense [N, T, Fi] int64 windows), `index_select`."""

    def __init__(self, dense: dict[str, np.ndarray], keys: tuple[str, ...]) -> None:
        self.arrays = {k: torch.as_tensor(dense[k]) for k in keys}
        self.keys = keys

    def batch(self, index: Tensor) -> dict[str, Tensor]:
        return {k: self.arrays[k].index_select(0, index) for k in self.keys}


def time_steps(trainer: Trainer, batches: list[Tensor]) -> float:
    """Seconds per training step over `batches` (the loss read once at the end, as in an epoch)."""
    started = time.perf_counter()
    for index in batches:
        trainer._step(index)
    float(trainer.loss_sum)
    return (time.perf_counter() - started) / len(batches)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.bench_layout", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mian,din,dien")
    p.add_argument("--rows", type=int, default=20_000, help="training rows of the synthetic data")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="folder for layout-step-<machine>.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    dataset = with_train_rows(synthetic_rows(args.rows), args.rows)
    dense = dataset.dense("train")
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, args.rows, (args.batch_size,), generator=generator) for _ in range(args.steps)]
    lines = ["| model | stored once: ms/step, median (min) | dense per sample: ms/step, median (min) | ratio of the "
             "medians (of the minima) |", "|---|---|---|---|"]
    for name in args.models.split(","):
        cfg = compose_config(f"model={name}", f"trainer.batch_size={args.batch_size}")
        model = build_model(cfg.model, cfg.ablation, dataset.schema, 0, torch.device("cpu"))
        trainer = Trainer(model, dataset, cfg.trainer, 0, torch.device("cpu"))
        layouts = {"stored once": trainer.data["train"], "dense": DenseSplit(dense, trainer.data["train"].keys)}
        for key, value in layouts["dense"].batch(batches[0]).items():
            if not torch.equal(value, layouts["stored once"].batch(batches[0])[key]):
                raise SystemExit(f"{name}: the two layouts' batches differ in {key!r}")
        times: dict[str, list[float]] = {k: [] for k in layouts}
        for repeat in range(args.repeats + 1):  # repeat 0 warms up
            for label, split in layouts.items():
                trainer.data["train"] = split  # type: ignore[assignment]
                seconds = time_steps(trainer, batches)
                if repeat:
                    times[label].append(seconds)
        (new, new_min), (old, old_min) = ((statistics.median(t) * 1000, min(t) * 1000) for t in times.values())
        lines.append(f"| {name} | {new:.1f} ({new_min:.1f}) | {old:.1f} ({old_min:.1f}) | {new / old:.2f} "
                     f"({new_min / old_min:.2f}) |")
        print(lines[-1], flush=True)
    header = [f"# The training step: histories stored once against dense per-sample windows", "",
              f"Machine: {cpu_model()}, 1 torch thread; load average at the end {load_average()}. Synthetic data, "
              f"{args.rows:,} training rows, batch {args.batch_size}, {args.repeats} alternating repeats of "
              f"{args.steps} steps each way (medians and minima).", "",
              f"Command: `python -m benchmark.bench_layout {' '.join(argv if argv is not None else sys.argv[1:])}`",
              ""]
    text = "\n".join(header + lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"layout-step-{machine_slug(torch.device('cpu'))}.md"
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
