"""Scale benchmark of `dataset=custom`: a generated click log of about Amazon Books' size, from CSV to cache.

    python -m benchmark.data.bench_custom [--rows 10000000] [--gzip] [--out results/scale]

Generates (not timed) `log.csv`: user_id, item_id, cate_id, timestamp, one row per positive event (Books' shape:
603,668 users with at least 5 events and a heavy tail, 367,982 items with Zipf-like popularity in 1,600
categories, ids as text like the Amazon files'), then builds it in a fresh process with an empty cache under the
declaration below (history from the log, one sampled negative per positive, split per user by time, month and
weekday as context): wall time, CPU time (user + system, all threads) and peak RSS of the build, and the entry's
size. `--out` writes `custom-<rows>-<machine>.md/.json`. The files stay in the work dir for reruns.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BOOKS = {"users": 603_668, "items": 367_982, "categories": 1_600}
TARGETS = {"build_s": 120, "build_peak_rss_mib": 3 * 1024}
OVERRIDES = {"files": ["log.csv"], "columns": {"label": None}, "negatives": 1, "time_fields": ["month", "weekday"]}


def generate(path: Path, rows: int, users: int, items: int, categories: int, seed: int) -> None:
    """The log, in chunks of rows, rows in random order (not sorted by user or time)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from benchmark.data.bench_preprocess import _ids

    rng = np.random.default_rng(seed)
    user_names = np.array(_ids(rng, users, b"A", 13))
    item_names = np.array(_ids(rng, items, b"B00", 7))
    cate_of = np.concatenate([np.arange(categories), rng.integers(0, categories, size=items - categories)])
    per_user = 5 + rng.multinomial(rows - 5 * users, (w := rng.pareto(1.2, users) + 0.05) / w.sum())
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    start_day = rng.integers(11_000, 16_000, size=users)
    first = np.cumsum(per_user) - per_user
    order = rng.permutation(rows)
    chunk = 1_000_000
    with pacsv.CSVWriter(str(path), pa.schema([("user_id", pa.string()), ("item_id", pa.string()),
                                               ("cate_id", pa.string()), ("timestamp", pa.int64())])) as out:
        for lo in range(0, rows, chunk):
            k = order[lo:lo + chunk]  # event numbers: user u owns first[u] .. first[u] + per_user[u] - 1
            user = np.searchsorted(first, k, side="right") - 1
            item = rng.choice(items, size=len(k), p=popularity / popularity.sum())
            day = start_day[user] + (k - first[user]) * 7 + rng.integers(0, 7, size=len(k))
            ts = day * 86_400 + rng.integers(0, 86_400, size=len(k))
            out.write_table(pa.table({"user_id": user_names[user], "item_id": item_names[item],
                                      "cate_id": np.char.add("C", cate_of[item].astype(str)), "timestamp": ts}))


def child_build(raw: Path, cache: Path) -> dict[str, Any]:
    """The measured build, in a process of its own: preprocess `raw` into the empty `cache`."""
    import logging

    from omegaconf import OmegaConf

    from benchmark.config import group_config, validate_dataset
    from benchmark.data import custom

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = OmegaConf.merge(group_config("dataset", "custom"), OVERRIDES)
    cfg.raw_dir = str(raw)
    validate_dataset(cfg)
    started = time.perf_counter()
    dataset = custom.load(cfg, cache)
    build_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"build_s": round(build_s, 1), "build_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "build_peak_rss_mib": round(usage.ru_maxrss / 1024),
            **{k: dataset.stats[k] for k in ("rows", "users", "items", "samples", "train_samples", "valid_samples",
                                             "test_samples", "mean_hist_len")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.bench_custom", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="default: <temp>/mian-custom-bench")
    p.add_argument("--out", type=Path, default=None, help="folder for custom-<rows>-<machine>.md/.json")
    p.add_argument("--child", nargs=2, metavar=("RAW", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child_build(Path(args.child[0]), Path(args.child[1]))))
        return 0
    counts = {k: min(v, args.rows // 10) for k, v in BOOKS.items()}
    workdir = args.workdir or Path(tempfile.gettempdir()) / "mian-custom-bench"
    raw = workdir / f"raw-{args.rows}"
    raw.mkdir(parents=True, exist_ok=True)
    params = {"rows": args.rows, "seed": args.seed, **counts}
    marker = raw / "params.json"
    if not marker.exists() or json.loads(marker.read_text()) != params:
        print(f"generating {args.rows:,} rows in {raw} ...", flush=True)
        t = time.perf_counter()
        generate(raw / "log.csv", args.rows, counts["users"], counts["items"], counts["categories"], args.seed)
        marker.write_text(json.dumps(params))
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    cache = workdir / f"cache-{os.getpid()}"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmark.data.bench_custom", "--child", str(raw), str(cache)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    print(proc.stderr[-4000:], flush=True)
    try:
        if proc.returncode:
            raise SystemExit(f"the build failed (exit {proc.returncode}): {proc.stdout[-2000:]}")
        result: dict[str, Any] = {"generated": params, **json.loads(proc.stdout.strip().splitlines()[-1])}
        stages = [line for line in proc.stderr.splitlines() if "benchmark.data.custom: built " in line]
        result["stages"] = stages[-1].split("): ", 1)[-1] if stages else ""
        result["cache_entry_bytes"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    from benchmark.machine import host_summary, machine_slug, package_version, python_version, short_commit
    from benchmark.io import write_result_files

    result.update({
        "build_process_wall_s": round(wall, 1), "csv_bytes": (raw / "log.csv").stat().st_size,
        "declaration": OVERRIDES, "machine": host_summary(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min_after": round(os.getloadavg()[0], 2), "python": python_version(),
        "pyarrow": package_version("pyarrow"), "commit": short_commit(),
        "command": "python -m benchmark.data.bench_custom " + " ".join(argv if argv is not None else sys.argv[1:]),
    })
    print(json.dumps(result, indent=1))
    if args.out:
        write_result_files(args.out, f"custom-{args.rows // 1_000_000}m-{machine_slug()}", result, render(result))
    return 0


def render(r: dict[str, Any]) -> str:
    g = r["generated"]
    rows = [("preprocessing wall (s), empty cache", r["build_s"], f"<= {TARGETS['build_s']}"),
            ("CPU time, user + system, all threads (s)", r["build_cpu_s"], ""),
            ("peak RSS (MiB)", r["build_peak_rss_mib"], f"<= {TARGETS['build_peak_rss_mib']}"),
            ("cache entry on disk (GB)", f"{r['cache_entry_bytes'] / 1e9:.3f}", ""),
            ("CSV size (GB)", f"{r['csv_bytes'] / 1e9:.2f}", "")]
    return "\n".join([
        f"# Scale: dataset=custom, a {g['rows']:,}-row generated CSV log", "",
        f"Machine: {r['machine']}; Python {r['python']}, pyarrow {r['pyarrow']}; commit {r['commit']}; "
        f"OMP_NUM_THREADS {r['omp_num_threads'] or 'unset'}; load average after the run: "
        f"{r['load_average_1min_after']}.", "",
        f"Command: `{r['command']}`", "",
        f"Data: {g['rows']:,} positive events by {g['users']:,} users of a catalogue of {g['items']:,} items "
        f"({r['items']:,} occur) in {g['categories']:,} categories; declaration {json.dumps(r['declaration'])} over conf/dataset/custom.yaml; "
        f"{r['samples']:,} samples ({r['train_samples']:,} train, {r['valid_samples']:,} validation, "
        f"{r['test_samples']:,} test), mean history length {r['mean_hist_len']}.", "",
        "| measure | ours | target |", "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows), "",
        f"Wall time per stage of the build: {r.get('stages') or 'not recorded'}.", "",
        "The wall time is measured while other jobs share the machine (the load average above); the CPU time is the "
        "steadier figure. Peak RSS includes the interpreter with torch imported (about 260 MiB).", ""])


if __name__ == "__main__":
    sys.exit(main())
