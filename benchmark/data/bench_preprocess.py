"""Scale benchmark on generated raw files of Amazon Electronics or Books size.

    python -m benchmark.data.bench_preprocess [--dataset electronics|books] [--train-eval] [--out DIR] ...

Writes `reviews_<Stem>_5.json.gz` and `meta_<Stem>.json.gz` in the original formats (JSON lines, Python dict
literals) with the dataset's counts (Electronics: 1,689,188 reviews by 192,403 users of 63,001 items in 801
categories, 500,000 metadata lines; Books: 8,898,041 reviews by 603,668 users of 367,982 items in 1,600
categories, the 2,370,585 lines of the real meta_Books.json.gz) and realistic line lengths, then times the pipeline
on them in a fresh process with an empty cache: the build's wall time and peak RSS (maximum resident set size,
measured before the arrays are read back), the cache entry's size on disk, and the same after
`Dataset.validate()`, which reads every array through the memory map (file-backed pages that count as resident
but are reclaimable page cache). With `--train-eval`, a second fresh process loads the entry and measures what
training needs: the load's time, the training data's resident size on the device for MIAN's and DIN's inputs,
timed training steps of both, and one full evaluation (AUC, Logloss, gAUC) of the validation and test splits
with its time and peak RSS. `--out` writes the result as `<dataset>-<machine>.md/.json`. The generated files are
kept in the work dir for reruns; the cache entry is removed afterwards.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)


def _ids(rng: np.random.Generator, n: int, prefix: bytes, length: int) -> list[str]:
    """n distinct random ids like 'A1B2...' of `length` characters after `prefix`."""
    out: set[str] = set()
    while len(out) < n:
        raw = _ALNUM[rng.integers(0, len(_ALNUM), size=(2 * (n - len(out)), length))]
        out.update((prefix + bytes(row)).decode() for row in raw)
    return sorted(out)[:n] if len(out) == n else list(out)[:n]


def generate(raw: Path, n_reviews: int, n_users: int, n_items: int, n_cates: int, n_meta: int, seed: int,
             stem: str = "Electronics") -> None:
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    users = _ids(rng, n_users, b"A", 13)
    asins = _ids(rng, n_meta, b"B00", 7)  # the first n_items are reviewed
    rng.shuffle(asins)
    # reviews per user: 5-core plus a heavy tail; items: every item once, then by Zipf-like popularity
    extra = rng.multinomial(n_reviews - 5 * n_users, (w := rng.pareto(1.2, n_users) + 0.05) / w.sum())
    per_user = 5 + extra
    user_of = np.repeat(np.arange(n_users), per_user)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_of = np.concatenate([rng.permutation(n_items),
                              rng.choice(n_items, size=n_reviews - n_items, p=popularity / popularity.sum())])
    rng.shuffle(item_of)
    start_day = rng.integers(11_000, 16_000, size=n_users)  # 2000 .. 2013
    gaps = rng.geometric(0.03, size=n_reviews) - 1
    first = np.repeat(np.cumsum(per_user) - per_user, per_user)
    csum = np.cumsum(gaps)
    day = start_day[user_of] + csum - csum[first]
    day = np.minimum(day, 16_250)  # mid 2014
    rating = rng.choice([1, 2, 3, 4, 5], size=n_reviews, p=[0.06, 0.05, 0.09, 0.21, 0.59])
    text_len = np.minimum(rng.lognormal(6.0, 0.9, size=n_reviews).astype(np.int64) + 20, 20_000)
    helpful = rng.integers(0, 20, size=(n_reviews, 2))
    words = rng.choice(np.array("the a this works great battery cable sound price quality after months "
                                "really good bad returned would recommend screen easy use product".split()),
                       size=400_000)
    blob = " ".join(words)
    offsets = rng.integers(0, len(blob) - 20_100, size=n_reviews)
    order = rng.permutation(n_reviews)  # the file is not sorted by user or time
    dates: dict[int, str] = {}

    def review_time(d: int) -> str:
        if d not in dates:
            dates[d] = datetime.fromtimestamp(d * 86400, tz=timezone.utc).strftime("%m %d, %Y").lstrip("0")
        return dates[d]

    with gzip.open(raw / f"reviews_{stem}_5.json.gz", "wb", compresslevel=1) as f:
        batch = []
        for k in order:
            o = offsets[k]
            batch.append(
                f'{{"reviewerID": "{users[user_of[k]]}", "asin": "{asins[item_of[k]]}", "reviewerName": "J. Doe", '
                f'"helpful": [{helpful[k, 0]}, {helpful[k, 1]}], "reviewText": "{blob[o:o + text_len[k]]}", '
                f'"overall": {rating[k]}.0, "summary": "{blob[o + 7:o + 40]}", "unixReviewTime": {day[k] * 86400}, '
                f'"reviewTime": "{review_time(int(day[k]))}"}}\n'
            )
            if len(batch) == 20_000:
                f.write("".join(batch).encode())
                batch = []
        f.write("".join(batch).encode())

    leaves = [f"Leaf Category {i}" if i % 7 else f"Kids' Category {i}" for i in range(n_cates)]
    item_leaf = np.concatenate([np.arange(n_cates), rng.integers(0, n_cates, size=n_meta - n_cates)])
    rng.shuffle(item_leaf[n_items:])
    with gzip.open(raw / f"meta_{stem}.json.gz", "wb", compresslevel=1) as f:
        batch = []
        for j in rng.permutation(n_meta):
            related = {key: [asins[r] for r in rng.integers(0, n_meta, size=rng.integers(0, 30))]
                       for key in ("also_bought", "also_viewed", "bought_together")}
            paths = [[stem, "Accessories & Supplies", "Audio & Video Accessories"]] * int(rng.integers(0, 2))
            paths.append([stem, "Computers & Accessories", leaves[item_leaf[j]]])
            d = {"asin": asins[j], "related": related, "title": blob[j % 20_000: j % 20_000 + 60],
                 "price": round(float(rng.uniform(1, 500)), 2),
                 "salesRank": {stem: int(rng.integers(1, 10**6))},
                 "imUrl": f"http://ecx.images-amazon.com/images/I/{asins[j]}.jpg", "categories": paths}
            if j % 3 == 0:
                d["description"] = blob[j % 50_000: j % 50_000 + 300]
            batch.append(repr(d) + "\n")
            if len(batch) == 20_000:
                f.write("".join(batch).encode())
                batch = []
        f.write("".join(batch).encode())


PRESETS: dict[str, dict[str, Any]] = {
    "electronics": {"stem": "Electronics", "reviews": 1_689_188, "users": 192_403, "items": 63_001,
                    "categories": 801, "meta_lines": 500_000},
    "books": {"stem": "Books", "reviews": 8_898_041, "users": 603_668, "items": 367_982, "categories": 1_600,
              "meta_lines": 2_370_585},
}
TARGETS = {"electronics": {"build_s": 30}, "books": {"build_s": 300, "build_peak_rss_mib": 4096,
                                                    "cache_entry_bytes": 1.5e9, "resident_bytes": 2e9,
                                                    "eval_s": 60}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.bench_preprocess", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(PRESETS), default="electronics", help="whose counts to generate")
    p.add_argument("--workdir", type=Path, default=None, help="default: <temp>/mian-scale-bench-<dataset>")
    for key in ("reviews", "users", "items", "categories", "meta_lines"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help="override the preset's count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-eval", action="store_true", help="also load the entry, time training steps, evaluate")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per model (--train-eval)")
    p.add_argument("--batch-size", type=int, default=1024, help="training batch size (--train-eval)")
    p.add_argument("--eval-batch-size", type=int, default=1024,
                   help="evaluation batch (--train-eval; on a CPU 1024 is about 3x faster than 8192 for DIN)")
    p.add_argument("--out", type=Path, default=None, help="folder for <dataset>-<machine>.md/.json")
    p.add_argument("--child", nargs=3, metavar=("STAGE", "RAW", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        stage, raw, cache = args.child
        out = (child_build if stage == "build" else child_train_eval)(args.dataset, Path(raw), Path(cache), args)
        print(json.dumps(out))
        return 0
    preset = PRESETS[args.dataset]
    counts = {k: preset[k] if getattr(args, k) is None else getattr(args, k)
              for k in ("reviews", "users", "items", "categories", "meta_lines")}
    workdir = args.workdir or Path(tempfile.gettempdir()) / f"mian-scale-bench-{args.dataset}"
    raw = workdir / "raw"
    params = {**counts, "seed": args.seed, "stem": preset["stem"]}
    marker = raw / "params.json"
    if not marker.exists() or json.loads(marker.read_text()) != params:
        print(f"generating raw files in {raw} ...", flush=True)
        t = time.perf_counter()
        generate(raw, counts["reviews"], counts["users"], counts["items"], counts["categories"],
                 counts["meta_lines"], args.seed, stem=preset["stem"])
        marker.write_text(json.dumps(params))
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    sizes = {f.name: f.stat().st_size for f in sorted(raw.glob("*.gz"))}
    cache = workdir / f"cache-{os.getpid()}"
    result: dict[str, Any] = {"dataset": args.dataset, **counts}
    try:
        build = _run_child("build", args, raw, cache)
        result.update(build)
        result["cache_entry_bytes"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        if args.train_eval:
            result.update(_run_child("train-eval", args, raw, cache))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    from benchmark.machine import host_summary, machine_slug, python_version, torch_version
    from benchmark.io import write_result_files

    result.update({
        "machine": host_summary(), "load_average_1min_after": round(os.getloadavg()[0], 2),
        "python": python_version(), "torch": torch_version(), "raw_gz_bytes": sizes,
        "command": "python -m benchmark.data.bench_preprocess " + " ".join(argv if argv is not None else sys.argv[1:]),
    })
    (workdir / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    if args.out:
        write_result_files(args.out, f"{args.dataset}-{machine_slug()}", result, render(result))
    return 0


def _run_child(stage: str, args: argparse.Namespace, raw: Path, cache: Path) -> dict[str, Any]:
    """One measured stage in a fresh process (its peak RSS is its own); returns its JSON line, with its wall."""
    cmd = [sys.executable, "-m", "benchmark.data.bench_preprocess", "--dataset", args.dataset, "--steps",
           str(args.steps), "--batch-size", str(args.batch_size), "--eval-batch-size", str(args.eval_batch_size),
           "--child", stage, str(raw), str(cache)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    print(proc.stderr[-3000:], flush=True)
    if proc.returncode:
        print(proc.stdout)
        raise SystemExit(f"the {stage} stage failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out[f"{stage.replace('-', '_')}_process_wall_s"] = round(wall, 1)
    return out


def _peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _dataset_cfg(name: str, raw: Path) -> Any:
    from benchmark.config import group_config

    cfg = group_config("dataset", name)
    cfg.raw_dir = str(raw)
    cfg.download = False
    return cfg


def child_build(name: str, raw: Path, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The measured build: preprocess `raw` into an empty `cache`, then validate it."""
    import logging

    from benchmark.data import amazon

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    dataset = amazon.load(_dataset_cfg(name, raw), cache)
    build_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    build_rss, build_cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    dataset.validate()  # reads every array through the memory map: its pages count as resident (file-backed)
    return {"build_s": round(build_s, 1), "build_cpu_s": round(build_cpu, 1),
            "build_peak_rss_mib": round(build_rss / 1024),
            "validate_s": round(time.perf_counter() - started - build_s, 1),
            "peak_rss_with_validate_mib": _peak_rss_mib(),
            **{k: dataset.stats[k] for k in ("users", "items", "categories", "reviews", "samples", "train_samples",
                                             "valid_samples", "test_samples", "mean_hist_len")}}


def child_train_eval(name: str, raw: Path, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Load the built entry, then per model: resident size of its training data, timed steps, one evaluation."""
    import torch

    from benchmark.batches import device_splits, model_inputs, resident_bytes
    from benchmark.bench import compose_config
    from benchmark.data import amazon
    from benchmark.trainer import Trainer
    from models import build_model

    torch.set_num_threads(1)
    started = time.perf_counter()
    dataset = amazon.load(_dataset_cfg(name, raw), cache)
    out: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 1), "load_peak_rss_mib": _peak_rss_mib(),
                           "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
                           "timed_steps": args.steps,
                           "layout_bytes_per_sample": layout_bytes_per_sample(dataset)}
    device = torch.device("cpu")
    for model_name in ("mian", "din"):
        cfg = compose_config(f"model={model_name}", f"dataset={name}", f"trainer.batch_size={args.batch_size}",
                             f"trainer.eval_batch_size={args.eval_batch_size}")
        model = build_model(cfg.model, cfg.ablation, dataset.schema, 0, device)
        out[f"{model_name}_resident_bytes"] = resident_bytes(device_splits(dataset, model_inputs(model), device))
        trainer = Trainer(model, dataset, cfg.trainer, 0, device)
        generator = torch.Generator().manual_seed(0)
        batches = [torch.randint(0, trainer.n_train, (args.batch_size,), generator=generator)
                   for _ in range(args.steps + 3)]
        for index in batches[:3]:  # warm-up
            trainer._step(index)
        t = time.perf_counter()
        for index in batches[3:]:
            trainer._step(index)
        float(trainer.loss_sum)
        out[f"{model_name}_step_ms"] = round((time.perf_counter() - t) / args.steps * 1000, 1)
        for split in ("valid", "test"):
            t = time.perf_counter()
            metrics = trainer.evaluate(split)
            out[f"{model_name}_{split}_eval_s"] = round(time.perf_counter() - t, 1)
            out[f"{model_name}_{split}_metrics"] = {k: round(float(v), 4) for k, v in metrics.items()}
        out[f"{model_name}_peak_rss_mib"] = _peak_rss_mib()
        del trainer, model
    return out


def layout_bytes_per_sample(dataset: Any) -> dict[str, float]:
    """Bytes of the stored layout per training sample: the per-sample arrays, and the shared sequences spread
    over every sample of the dataset."""
    n_all = sum(len(s["label"]) for s in dataset.splits.values())
    per_sample = sum(a.itemsize * (a.size // max(len(a), 1)) for a in dataset.splits["train"].values())
    sequences = sum(a.nbytes for a in dataset.sequences.values())
    return {"per_sample_arrays": per_sample, "sequences_per_sample": round(sequences / max(n_all, 1), 2)}


def render(result: dict[str, Any]) -> str:
    """The result as Markdown: what ran, then each measure beside its target."""
    targets = TARGETS.get(result["dataset"], {})
    gib = 2 ** 30

    def row(what: str, value: Any, target: str = "") -> str:
        return f"| {what} | {value} | {target} |"

    lines = [f"# Scale: {result['dataset']}-size generated raw files", "",
             f"Machine: {result['machine']}; Python {result['python']}, torch {result['torch']}. Load average after "
             f"the run: {result['load_average_1min_after']}.", "",
             f"Command: `{result['command']}`", "",
             f"Data: {result['reviews']:,} reviews by {result['users']:,} users of {result['items']:,} items in "
             f"{result['categories']:,} categories, {result['meta_lines']:,} metadata lines; "
             f"{result['samples']:,} samples ({result['train_samples']:,} train, {result['valid_samples']:,} "
             f"validation, {result['test_samples']:,} test).", "",
             "| measure | ours | target |", "|---|---|---|",
             row("preprocessing wall (s), empty cache", result["build_s"], f"<= {targets['build_s']}"
                 if "build_s" in targets else ""),
             row("preprocessing peak RSS (MiB)", result["build_peak_rss_mib"],
                 f"<= {targets['build_peak_rss_mib']}" if "build_peak_rss_mib" in targets else ""),
             row("cache entry on disk (GB)", f"{result['cache_entry_bytes'] / 1e9:.3f}",
                 f"<= {targets['cache_entry_bytes'] / 1e9:.1f}" if "cache_entry_bytes" in targets else "")]
    if "load_s" in result:
        per = result["layout_bytes_per_sample"]
        lines += [row("loading the entry (s)", result["load_s"]),
                  row("layout: bytes per sample (per-sample arrays + shared sequences)",
                      f"{per['per_sample_arrays']} + {per['sequences_per_sample']}")]
        for m in ("mian", "din"):
            lines += [row(f"{m.upper()}: training data resident on the device (GiB)",
                          f"{result[f'{m}_resident_bytes'] / gib:.2f}",
                          f"<= {targets['resident_bytes'] / 1e9:.0f} GB" if "resident_bytes" in targets else ""),
                      row(f"{m.upper()}: training step (ms, batch {result.get('batch_size', '')})",
                          result[f"{m}_step_ms"])]
            for split in ("valid", "test"):
                metrics = result[f"{m}_{split}_metrics"]
                batch = result.get("eval_batch_size", 8192)
                lines.append(row(f"{m.upper()}: full {split} evaluation (s, batch {batch}), "
                                 "AUC / Logloss / gAUC after the timed steps", f"{result[f'{m}_{split}_eval_s']} ({metrics.get('auc')} / "
                                 f"{metrics.get('logloss')} / {metrics.get('gauc')})",
                                 f"<= {targets['eval_s']}" if "eval_s" in targets else ""))
            lines.append(row(f"{m.upper()}: peak RSS of the load-train-evaluate process (MiB)",
                             result[f"{m}_peak_rss_mib"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
