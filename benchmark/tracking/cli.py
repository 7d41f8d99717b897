"""The command line: `python -m benchmark.tracking replay|reap` (benchmark/tracking/__main__.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from benchmark.tracking.ghosts import reap_ghosts
from benchmark.tracking.runlog import replay
from benchmark.tracking.store import resolve_tracking_uri

DESCRIPTION = "MLflow tracking: where the store is, one run per job, and what every run records."


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.tracking replay JOURNAL...` | `reap [--tracking-uri URI] [--experiment NAME ...]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmark.tracking", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    replay_cmd = commands.add_parser("replay", help="send the logging a job kept while the server was away")
    replay_cmd.add_argument("journals", nargs="+", type=Path, help="journal files (.jsonl) or folders of them")
    replay_cmd.add_argument("--tracking-uri", help="send to this store instead of the journal's")
    reap_cmd = commands.add_parser("reap", help="end RUNNING runs whose owner process is gone as KILLED")
    reap_cmd.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the project's mlflow.db")
    reap_cmd.add_argument("--experiment", action="append", help="experiment name (default: all); repeatable")
    args = parser.parse_args(argv)
    if args.command == "replay":
        files = [f for p in args.journals for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
        for path in files:
            try:
                count = replay(path, args.tracking_uri)
            except (OSError, ValueError, mlflow.exceptions.MlflowException) as error:
                print(f"error: {path}: {str(error)[:500]}", file=sys.stderr)
                return 2
            print(f"{path}: sent {count} logging call(s)")
        return 0
    uri = resolve_tracking_uri(args.tracking_uri)
    client = MlflowClient(uri)
    ids = None
    if args.experiment:
        found = [client.get_experiment_by_name(name) for name in args.experiment]
        ids = [e.experiment_id for e in found if e is not None]
    for run in reap_ghosts(uri, ids):
        print(f"run {run.info.run_id} ({run.info.run_name}) ended KILLED: {run.data.tags['owner.host']} pid "
              f"{run.data.tags['owner.pid']} is gone")
    return 0
