"""Where a results file's numbers come from: the data, machine, packages, git commits and exact commands of the
runs behind it, written at the top of its Markdown and as comment lines of its CSV."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import pandas as pd


@dataclass
class Provenance:
    """The provenance of one results file, each field one line of its header."""
    data: str
    machine: str
    packages: str
    commits: str
    commands: list[str]
    report: str

    def lines(self) -> list[tuple[str, str]]:
        return [("Data", self.data), ("Machine", self.machine), ("Packages", self.packages),
                ("Git commit", self.commits), ("Produced by", " ; ".join(self.commands) or "no runs"),
                ("Report", self.report)]

    def markdown(self) -> str:
        return "\n".join(f"- **{k}**: {v}" for k, v in self.lines()) + "\n"

    def csv_comment(self) -> str:
        return "".join(f"# {k}: {v}\n" for k, v in self.lines())

    def short(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.lines()]


def provenance(records: pd.DataFrame, runs: pd.DataFrame, source: str, report_command: str,
               older: int = 0) -> Provenance:
    """Where these records' numbers come from: data, machine, packages, commits and the exact commands (each
    sweep's command from its parent run, else each run's own)."""
    join = lambda values: " ; ".join(sorted(set(v for v in values if v))) or "–"  # noqa: E731
    parent_commands = runs.set_index("run_id")["tags.command"] if "tags.command" in runs.columns else pd.Series()
    commands = []
    for parent, command, row in zip(records["parent"], records["command"], records.itertuples()):
        text = parent_commands.get(parent, "") if parent else ""
        text = text or command or shlex.join(["python", "-m", "benchmark", f"experiment={row.table}",
                                              f"dataset={row.dataset}", f"model={row.model}", f"seed={int(row.seed)}"])
        if f"`{text}`" not in commands:
            commands.append(f"`{text}`")
    report = f"`{report_command}` from the {source} ({len(records)} runs"
    report += f"; {older} older runs of the same cell and seed left out)" if older else ")"
    return Provenance(join(records["data"]), join(records["machine"]), join(records["packages"]),
                      join(records["git_commit"]), commands, report)
