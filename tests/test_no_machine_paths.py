"""No committed file under results/ or docs/ names a folder of the machine that built it: the checkout's parent
folder, the home folder or the temporary folders (a reader elsewhere cannot follow such a path)."""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from benchmark import PROJECT_ROOT

SCANNED = ("results", "docs")
BINARY_SUFFIXES = (".tar.gz", ".gz", ".db", ".png", ".jpg", ".pdf", ".whl")


def machine_folders() -> list[str]:
    """The folders of this machine that no committed file may name (never `/` itself)."""
    folders = {str(PROJECT_ROOT.parent), str(Path.home()), "/tmp", tempfile.gettempdir()}
    return sorted(f.rstrip("/") for f in folders if f.rstrip("/"))


def machine_paths(text: str, folders: list[str]) -> list[str]:
    """Every path in `text` at or under one of `folders` (`/work` matches `/work/x` and `sqlite:////work/x`, not
    `/workshop` nor `a/work/x`)."""
    found = []
    for folder in folders:
        pattern = re.compile(r"(?<![\w.-])" + re.escape(folder) + r"(?![\w.-])[^\s'\"`,;)\]]*")
        found += [m.group(0) for m in pattern.finditer(text)]
    return found


def committed_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=PROJECT_ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [PROJECT_ROOT / name for name in listed if name and not name.endswith(BINARY_SUFFIXES)]


def test_the_scanner_finds_this_machines_folders() -> None:
    folders = machine_folders()
    assert str(PROJECT_ROOT.parent) in folders and tempfile.gettempdir().rstrip("/") in folders
    parent = str(PROJECT_ROOT.parent)
    text = (f"tracking.uri=sqlite:///{parent}/cpu-runs/synthetic.db dataset.raw_dir={PROJECT_ROOT}/.mldata "
            f"--out {tempfile.gettempdir()}/bench and {Path.home()}/out")
    hits = machine_paths(text, folders)
    assert f"{parent}/cpu-runs/synthetic.db" in hits and f"{PROJECT_ROOT}/.mldata" in hits
    assert f"{tempfile.gettempdir()}/bench" in hits and f"{Path.home()}/out" in hits


def test_the_scanner_leaves_relative_paths_alone() -> None:
    text = ("tracking.uri=sqlite:///results/runs/cpu-2026-11-27/synthetic.db dataset.raw_dir=../shared/data "
            "figures/tmp/x /tmpfile /workshop `--out <out>`")
    assert machine_paths(text, ["/tmp", "/work"]) == []
    assert machine_paths("'sqlite\\:////work/gpu-runs/table2.db'", ["/work"]) == ["/work/gpu-runs/table2.db"]


def test_committed_results_and_docs_name_no_machine_path() -> None:
    files = committed_text_files()
    assert any(p.name == "table2.md" for p in files)  # the scan reaches the committed tables
    folders = machine_folders()
    offending = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the working tree
        data = path.read_bytes()
        if b"\0" in data:
            continue
        hits = machine_paths(data.decode("utf-8", errors="replace"), folders)
        if hits:
            offending.append(f"{path.relative_to(PROJECT_ROOT)}: {hits[0]} ({len(hits)} in all)")
    assert not offending, ("committed files name this machine's folders (write them relative to the checkout; "
                           "`python -m benchmark.stores FILE...` does it for sweep logs):\n" + "\n".join(offending))
