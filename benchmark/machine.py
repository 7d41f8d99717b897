"""Facts about the code and the machine a result comes from, computed here only.

Every run records them (benchmark/run.py, sweep.py and tune.py as MLflow tags; the efficiency benchmarks in
their result files): the git commit, the versions of the packages that decide the numbers, the Python and torch
versions, the CPU model and the device. Their spelling is part of the committed results: a change here changes
what new runs record.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from typing import TYPE_CHECKING

from benchmark.paths import PROJECT_ROOT, SOURCE_CHECKOUT

if TYPE_CHECKING:
    import torch

# ------------------------------------------------------------------------------------------------------- code
COMMIT_ENV = "BENCHMARK_GIT_COMMIT"


def git_commit() -> str:
    """git's HEAD (with "-dirty" when tracked files differ), or $BENCHMARK_GIT_COMMIT when set: a machine that
    received the working tree without its matching .git (a copy made for a GPU machine) must be told the commit."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    if not SOURCE_CHECKOUT:  # an installed package: git would answer for whatever repository holds the venv
        return "unknown"
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def short_commit() -> str:
    """The abbreviated HEAD of the repository holding the current directory (a preprocessing benchmark's
    record), "unknown" outside one."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --------------------------------------------------------------------------------------------------- packages
PACKAGES = ("torch", "deepctr-torch", "mlflow", "hydra-core", "numpy", "pandas")


def package_version(name: str) -> str | None:
    """The installed version of the distribution `name`, None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> str:
    """'torch==2.13.0 deepctr-torch==0.3.0 ...' for the packages that decide the numbers."""
    parts = []
    for name in PACKAGES:
        for distribution in (name, f"{name}-skinny"):  # mlflow-skinny: the logging client without the UI server
            version = package_version(distribution)
            if version is not None:
                parts.append(f"{distribution}=={version}")
                break
        else:
            parts.append(f"{name}==absent")
    return " ".join(parts)


def python_version() -> str:
    return sys.version.split()[0]


def torch_version() -> str:
    import torch

    return torch.__version__


# ---------------------------------------------------------------------------------------------------- machine
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def host_summary() -> str:
    """'<CPU model>, <n> CPUs, <memory> GiB': the machine of a preprocessing benchmark."""
    return f"{cpu_model()}, {os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"


def device_name(device: torch.device) -> str:
    """A run's `device` tag: the GPU's name, or the CPU as `platform` names it with torch's thread count."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def machine_slug(device: torch.device | None = None) -> str:
    """The device (None: the CPU) as a file name: a benchmark's results are kept per machine."""
    import torch

    if device is not None and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu {cpu_model()} {torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def machine_facts(device: torch.device) -> dict[str, str]:
    """The machine and software of a training-speed measurement (benchmark/bench.py), as its report lists them."""
    import torch

    info = {"cpu": f"{cpu_model()} ({os.cpu_count()} logical cores, torch uses {torch.get_num_threads()} threads)"}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"
    info.update({
        "torch": torch.__version__ + (f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""),
        "deepctr_torch": package_version("deepctr-torch") or "not installed", "python": python_version(),
        "platform": platform.platform(), "git_commit": git_commit(),
    })
    return info
