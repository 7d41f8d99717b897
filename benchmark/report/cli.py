"""`python -m benchmark.report`: regenerate results/ (Tables 2-4, efficiency, Figures 5-6) from MLflow alone.

    python -m benchmark.report [--tracking-uri URI] [--out results] [--table3-baseline dien]
    python -m benchmark.report --stores results/runs --table3-baseline xdeepfm   # the committed tables
    python -m benchmark.report --from-export results/export      # the same files, from the committed export

It reads the FINISHED runs of the experiment configs (param `experiment_name`: table2, table3, table4,
efficiency, ...), writes one Markdown and one CSV file per table (mean +- std over seeds with a 95% bootstrap
interval of the mean and the run count per cell, the paper's number beside ours, the best per column marked,
Welch's t-tests with Holm's correction over each table's family, the seeds needed to detect the paper's gaps),
significance.csv, the PNG figures under figures/, and the export of the runs it read (export/: runs.csv,
history.csv, gim_weights.csv) from which `--from-export` rebuilds identical tables. Every file names its data,

TABLES lists every table in the order they are built; each is declared once, in its own module (table2.py ...).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from benchmark.paths import results_dir
from benchmark.report import effects, efficiency, readings, table2, table3, table4, tuning, verdict
from benchmark.report.names import MODELS
from benchmark.report.provenance import provenance
from benchmark.report.runs import (
    PAPER_DIR, RunData, job_records, left_out_message, merge, read_export, read_paper, read_sources, runs_left_out,
    write_atomic, write_export,
)
from benchmark.report.significance import significance_csv, tests_frame
from benchmark.report.spec import Context, TableSpec, table_csv, table_markdown
from benchmark.report.text import csv_text

TABLES: tuple[TableSpec, ...] = (tuning.TABLE, table2.TABLE, table3.TABLE, table4.TABLE, efficiency.TABLE,
                                 effects.TABLE, readings.TABLE, verdict.TABLE)


def build_report(data: RunData, out: Path, paper_dir: Path, baseline: str, report_command: str) -> list[Path]:
    """Write every results file from `data`: each table of TABLES, then significance.csv (the tests of all of
    them); returns the paths written."""
    paper, paper_eff = read_paper(paper_dir)
    records, older = job_records(data.runs)
    ctx = Context(data, records, older, paper, paper_eff, baseline)
    written: list[Path] = []

    def write(name: str, content: str | bytes) -> None:
        path = out / name
        write_atomic(path, content)
        written.append(path)

    tests: list[dict[str, Any]] = []
    for spec in TABLES:
        built = spec.build(ctx, spec)
        if built is None:
            continue
        prov = provenance(built.used, data.runs, data.source, report_command,
                          int((older["table"] == spec.name).sum()) if spec.count_older else 0)
        write(f"{spec.name}.md", table_markdown(spec, built, prov))
        write(f"{spec.name}.csv", table_csv(built, prov))
        for name, frame in built.files.items():
            write(f"{name}.csv", csv_text(frame, prov.csv_comment()))
        if spec.figures is not None:
            written += spec.figures(ctx, prov, out)
        tests += built.tests

    prov = provenance(records, data.runs, data.source, report_command, len(older))
    write("significance.csv", significance_csv(tests_frame(tests), prov))
    return written


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmark.report", description=__doc__.split("\n")[0])
    parser.add_argument("--tracking-uri", action="append", metavar="URI",
                        help="MLflow store to read (default: $MLFLOW_TRACKING_URI, else sqlite:///<state root>/mlflow.db);"
                        " give it more than once to read several stores as one")
    parser.add_argument("--stores", type=Path, metavar="DIR",
                        help="read the stores archived under DIR (each folder's runs.tar.gz; the ones DIR/stores.txt "
                        "lists when it exists), e.g. results/runs for the committed tables; with --tracking-uri too")
    parser.add_argument("--from-export", type=Path, metavar="DIR",
                        help="read the runs from an export folder (runs.csv, history.csv, gim_weights.csv) instead")
    parser.add_argument("--out", type=Path, default=results_dir(),
                        help="output folder (default results/ under the state root: the checkout, $MIAN_BENCH_HOME or .)")
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
