"""What a results table is: its declaration (TableSpec: results/<name>.md and <name>.csv), what it is built from
(Context: the runs of a report) and what its build returns (Built: its sections, each a Part; Tables 2-4's
sections hold Rows). Every table module declares one TableSpec; benchmark/report/cli.py lists them (TABLES)."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from benchmark.report.names import DATASET_ARGS, present_in_order
from benchmark.report.provenance import Provenance
from benchmark.report.runs import RunData
from benchmark.report.text import csv_text


def run_command(table: str, dataset: str, extra: list[str] | None = None) -> str:
    """The command that runs experiment `table` on `dataset` (shown where a section was not run here)."""
    return shlex.join(["python", "-m", "benchmark", f"experiment={table}", f"dataset={dataset}",
                       *DATASET_ARGS.get(dataset, []), *(extra or [])])


def data_text(runs: pd.DataFrame) -> str:
    """The data the runs trained on, in words."""
    return " ; ".join(sorted(set(runs["data"])))


def literal(records: pd.DataFrame, protocol: str = "shared") -> pd.DataFrame:
    """The runs of MIAN's literal reading (and every other model's) under `protocol`: Tables 2-4 as the paper
    specifies MIAN, one section per dataset and protocol; the other readings have tables of their own
    (readings.md, effects.md)."""
    return records[(records["reading"] == "") & (records["protocol"] == protocol)]


def protocols_of(records: pd.DataFrame) -> list[str]:
    """The protocols the records ran under, `shared` first (and `shared` alone when there are none)."""
    return present_in_order(list(records["protocol"]), ("shared",)) or ["shared"]


@dataclass
class Row:
    """One row of a Table 2-4 section: a model, ablation or encoder, its runs and the paper's numbers."""
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
    """One dataset and protocol of Table 2, 3 or 4: its rows, its tests (Welch, Holm over the table) and notes."""
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


@dataclass
class Part:
    """One section of a table: its rows and columns (`frame`, its lines of the CSV) and what its template needs
    beside them."""
    frame: pd.DataFrame | None
    dataset: str = ""
    data: str = ""  # the data its runs trained on, in words
    command: str = ""  # how to run it, shown when it was not run here
    section: Section | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    """A table built: its sections, the records behind it (its provenance), its family of tests (significance.csv,
    Holm-corrected together) and any further CSV files (name -> frame)."""
    parts: list[Part]
    used: pd.DataFrame
    tests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Context:
    """What every table is built from."""
    data: RunData
    records: pd.DataFrame  # one row per job run, the latest of each cell and seed (runs.job_records)
    older: pd.DataFrame  # the runs those replaced
    paper: pd.DataFrame
    paper_eff: pd.DataFrame
    baseline: str  # the model of Table 3's baseline row
    derived: dict[str, Any] = field(default_factory=dict)  # what several tables share, computed once (the verdict)

    def table(self, name: str, model: str | None = None) -> pd.DataFrame:
        """The records of experiment `name` (of one model when given)."""
        mine = self.records[self.records["table"] == name]
        return mine if model is None else mine[mine["model"] == model]


@dataclass(frozen=True)
class TableSpec:
    """One results table, results/<name>.md and <name>.csv. Adding a table: one module declaring it (the runs it
    reads, how its sections' rows and columns are built, its Markdown template, its figures), listed in TABLES
    (cli.py)."""
    name: str
    title: str
    reads: Callable[[Context], pd.DataFrame]  # the records it shows: which datasets and protocols get a section
    build: Callable[[Context, TableSpec], Built | None]  # None: nothing to show, no file
    template: Callable[[Part], str]  # the Markdown of one section
    head: Callable[[list[Part]], str] = lambda parts: ""  # Markdown above the provenance
    sections: Callable[[Context, str, str], Section] | None = None  # build_sections: a section's rows and tests
    command: Callable[[str], str] | None = None  # how to run it on a dataset (default: run_command(name, dataset))
    provenance_from_rows: bool = False  # its provenance names the runs in its rows, not all it reads
    count_older: bool = True  # its provenance counts the older runs of its cells left out
    figures: Callable[[Context, Provenance, Path], list[Path]] | None = None

    def command_for(self, dataset: str) -> str:
        return self.command(dataset) if self.command else run_command(self.name, dataset)


def table_markdown(spec: TableSpec, built: Built, prov: Provenance) -> str:
    """results/<name>.md: the title, the head, the provenance, then each section's template."""
    return (f"# {spec.title}\n\n{spec.head(built.parts)}{prov.markdown()}\n"
            + "\n".join(spec.template(part) for part in built.parts))


def table_csv(built: Built, prov: Provenance) -> str:
    """results/<name>.csv: the provenance as comment lines, then every section's frame."""
    return csv_text(pd.concat([p.frame for p in built.parts if p.frame is not None], ignore_index=True),
                    prov.csv_comment())
