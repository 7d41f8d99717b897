"""Data command line.

    python -m benchmark.data download electronics|books|movielens [--raw-dir DIR]
    python -m benchmark.data stats NAME [--raw-dir DIR] [--cache-dir DIR] [key=value ...]

`download` fetches the original files (resuming partial downloads, checking sizes and known checksums);
`stats` builds the dataset (or reads it from the cache) with `conf/dataset/NAME.yaml` plus the given
overrides and prints its statistics beside the paper's.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from benchmark import CONFIG_DIR
from benchmark.config import group_config, validate_dataset
from benchmark.data import load_dataset
from benchmark.data.download import SOURCES, default_raw_dir, fetch, missing, missing_message
from benchmark.data.errors import DataError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch the original raw files")
    d.add_argument("name", choices=sorted(SOURCES))
    d.add_argument("--raw-dir", type=Path, default=None, help="default: datasets/raw/NAME")
    d.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the server")
    s = sub.add_parser("stats", help="build or load a dataset and print its statistics")
    s.add_argument("name", help="a config in conf/dataset/")
    s.add_argument("--raw-dir", default=None)
    s.add_argument("--cache-dir", type=Path, default=None, help="default: datasets/cache")
    s.add_argument("overrides", nargs="*", help="dataset config overrides, e.g. negatives=2")
    args, extra = parser.parse_known_args(argv)  # overrides may come after the options
    if extra and (args.command != "stats" or any("=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "download":
            raw_dir = args.raw_dir or default_raw_dir(args.name)
            try:
                paths = fetch(args.name, raw_dir, timeout=args.timeout)
            except DataError as exc:
                absent = missing(args.name, raw_dir) or [r.name for r in SOURCES[args.name].remote]
                raise DataError(missing_message(args.name, raw_dir, absent, str(exc))) from exc
            for path in paths:
                print(path)
            return 0
        conf = CONFIG_DIR / "dataset" / f"{args.name}.yaml"
        if not conf.exists():
            raise DataError(f"no dataset config {conf}")
        base = group_config("dataset", args.name)
        overrides = OmegaConf.from_dotlist(args.overrides + extra)
        unknown = sorted(set(overrides) - set(base))
        if unknown:  # a typo would otherwise be ignored silently
            raise DataError(f"unknown key(s) {', '.join(unknown)} for dataset {args.name}; "
                            f"conf/{conf.relative_to(CONFIG_DIR)} has: {', '.join(sorted(map(str, base)))}")
        cfg = OmegaConf.merge(base, overrides)
        if args.raw_dir is not None:
            cfg.raw_dir = args.raw_dir
        validate_dataset(cfg)
        dataset = load_dataset(cfg, args.cache_dir)
        print(json.dumps(dataset.stats, indent=1, sort_keys=True, default=str))
        return 0
    except (DataError, ValueError, OSError) as exc:  # bad values and unusable paths: a message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
