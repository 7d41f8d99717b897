"""Preprocessing benchmark on generated raw files of Amazon Electronics size.

    python -m benchmark.data.bench_preprocess [--workdir DIR] [--reviews N] [--meta-lines N] ...

Writes `reviews_Electronics_5.json.gz` and `meta_Electronics.json.gz` in the original formats (JSON lines,
Python dict literals) with Electronics' counts (1,689,188 reviews by 192,403 users of 63,001 items in 801
categories; 500,000 metadata lines) and realistic line lengths, then times the Electronics pipeline on them in
a fresh process with an empty cache. It reports the build's wall time and peak RSS (maximum resident set size,
measured before the arrays are read back), and the same after `Dataset.validate()`, which reads every array
through the memory map (file-backed pages that count as resident but are reclaimable page cache). The generated
files are kept in the work dir for reruns; the cache entry (about 3 GB) is removed afterwards.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)


def _ids(rng: np.random.Generator, n: int, prefix: bytes, length: int) -> list[str]:
    """n distinct random ids like 'A1B2...' of `length` characters after `prefix`."""
    out: set[str] = set()
    while len(out) < n:
        raw = _ALNUM[rng.integers(0, len(_ALNUM), size=(2 * (n - len(out)), length))]
        out.update((prefix + bytes(row)).decode() for row in raw)
    return sorted(out)[:n] if len(out) == n else list(out)[:n]


def generate(raw: Path, n_reviews: int, n_users: int, n_items: int, n_cates: int, n_meta: int, seed: int) -> None:
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

    with gzip.open(raw / "reviews_Electronics_5.json.gz", "wb", compresslevel=1) as f:
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
    with gzip.open(raw / "meta_Electronics.json.gz", "wb", compresslevel=1) as f:
        batch = []
        for j in rng.permutation(n_meta):
            related = {key: [asins[r] for r in rng.integers(0, n_meta, size=rng.integers(0, 30))]
                       for key in ("also_bought", "also_viewed", "bought_together")}
            paths = [["Electronics", "Accessories & Supplies", "Audio & Video Accessories"]] * int(rng.integers(0, 2))
            paths.append(["Electronics", "Computers & Accessories", leaves[item_leaf[j]]])
            d = {"asin": asins[j], "related": related, "title": blob[j % 20_000: j % 20_000 + 60],
                 "price": round(float(rng.uniform(1, 500)), 2),
                 "salesRank": {"Electronics": int(rng.integers(1, 10**6))},
                 "imUrl": f"http://ecx.images-amazon.com/images/I/{asins[j]}.jpg", "categories": paths}
            if j % 3 == 0:
                d["description"] = blob[j % 50_000: j % 50_000 + 300]
            batch.append(repr(d) + "\n")
            if len(batch) == 20_000:
                f.write("".join(batch).encode())
                batch = []
        f.write("".join(batch).encode())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.data.bench_preprocess", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/mian-preprocess-bench"))
    p.add_argument("--reviews", type=int, default=1_689_188)
    p.add_argument("--users", type=int, default=192_403)
    p.add_argument("--items", type=int, default=63_001)
    p.add_argument("--categories", type=int, default=801)
    p.add_argument("--meta-lines", type=int, default=500_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", nargs=2, type=Path, metavar=("RAW", "CACHE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    raw = args.workdir / "raw"
    params = {k: getattr(args, k) for k in ("reviews", "users", "items", "categories", "meta_lines", "seed")}
    marker = raw / "params.json"
    if not marker.exists() or json.loads(marker.read_text()) != params:
        print(f"generating raw files in {raw} ...", flush=True)
        t = time.perf_counter()
        generate(raw, args.reviews, args.users, args.items, args.categories, args.meta_lines, args.seed)
        marker.write_text(json.dumps(params))
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    sizes = {f.name: f.stat().st_size for f in sorted(raw.glob("*.gz"))}
    cache = args.workdir / f"cache-{os.getpid()}"
    cmd = [sys.executable, "-m", "benchmark.data.bench_preprocess", "--child", str(raw), str(cache)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        print(proc.stdout, proc.stderr, sep="\n")
        return proc.returncode
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    cache_bytes = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    shutil.rmtree(cache, ignore_errors=True)
    result = {
        "process_wall_s": round(wall, 1), **measured,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1min_after": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "raw_gz_bytes": sizes, "cache_entry_bytes": cache_bytes,
    }
    (args.workdir / "result.json").write_text(json.dumps(result, indent=1))
    print(proc.stderr[-3000:])
    print(json.dumps(result, indent=1))
    print(f"preprocessing: {measured['build_s']} s to build ({wall:.1f} s for the whole process), peak RSS of the "
          f"build {measured['build_peak_rss_mib']} MiB (targets: <= 60 s, < 4096 MiB)")
    return 0


def child(raw: Path, cache: Path) -> None:
    """The measured process: build electronics from `raw` into an empty `cache`, then validate it."""
    import logging

    from omegaconf import OmegaConf

    from benchmark import PROJECT_ROOT
    from benchmark.data import amazon

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "dataset" / "electronics.yaml")
    cfg.raw_dir = str(raw)
    started = time.perf_counter()
    dataset = amazon.load(cfg, cache)
    build_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    build_rss, build_cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    dataset.validate()  # reads every array through the memory map: its pages count as resident (file-backed)
    out = {"build_s": round(build_s, 1), "build_cpu_s": round(build_cpu, 1),
           "build_peak_rss_mib": round(build_rss / 1024),
           "validate_s": round(time.perf_counter() - started - build_s, 1),
           "peak_rss_with_validate_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           **{k: dataset.stats[k] for k in ("users", "items", "categories", "reviews", "samples", "train_samples",
                                            "valid_samples", "test_samples", "mean_hist_len")}}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
