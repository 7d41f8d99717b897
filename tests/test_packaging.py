"""The wheel end to end: built from the source tree, installed into a fresh virtual environment without it, and
run from an empty directory. State (tracking store, checkpoints, dataset cache, Hydra outputs, results) lands in
the current directory or $MIAN_BENCH_HOME; the installed package gains no files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from benchmark import PROJECT_ROOT
from conftest import TINY_SYNTHETIC

# What the wheel is built from: a copy, so that setuptools' build/ folder neither lands in nor comes from the checkout.
SOURCES = ("pyproject.toml", "README.md", "benchmark", "models", "conf")


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_wheel_runs_a_job_and_the_report_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, source / name)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, source)
    (wheel,) = wheels.glob("mian_benchmark-*.whl")

    # A fresh venv that sees this one's third-party packages (a plain path in a .pth: the editable install's own
    # .pth files there are not processed, so the checkout stays invisible) and holds the wheel itself.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    deps = sysconfig.get_paths()["purelib"]
    assert not Path(deps).resolve().is_relative_to(PROJECT_ROOT.resolve())
    (site / "_mian_bench_deps.pth").write_text(deps + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "MIAN_BENCH_HOME", "BENCHMARK_GIT_COMMIT")}
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "work"
    work.mkdir()
    where = _run(python, "-c", "import benchmark; print(benchmark.__file__, benchmark.SOURCE_CHECKOUT)", cwd=work, env=env)
    assert where.stdout.split() == [str(site / "benchmark" / "__init__.py"), "False"]
    before = _files(site)

    # One epoch of one Table 2 job, from an empty directory: everything it writes lands there.
    _run(venv / "bin" / "mian-bench", "experiment=table2", "hydra.mode=RUN", "model=lr", "seed=0",
         *TINY_SYNTHETIC, "trainer.max_epochs=1", cwd=work, env=env)
    assert (work / "mlflow.db").is_file() and (work / "mlartifacts").is_dir()
    assert (work / "checkpoints").is_dir()  # the job's folder is removed once it finished; synthetic data is never cached
    assert any((work / "outputs").iterdir())

    # The report, with its defaults: the store in the current directory, results/ beside it.
    report = _run(venv / "bin" / "mian-bench-report", cwd=work, env=env)
    assert (work / "results" / "table2.md").is_file(), report.stdout
    # $MIAN_BENCH_HOME moves the state root, whatever the current directory.
    home = tmp_path / "home"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(venv / "bin" / "mian-bench-report", "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
         cwd=elsewhere, env={**env, "MIAN_BENCH_HOME": str(home)})
    assert (home / "results" / "table2.md").is_file()
    assert not any(elsewhere.iterdir())

    assert _files(site) == before, "the installed package gained files"
