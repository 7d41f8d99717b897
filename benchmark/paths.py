"""Where the suite reads its package data and writes its state.

Read-only data (Hydra's configs, the paper's CSVs) comes from the source checkout when run from one, else from
the installed package (`benchmark/conf`, `benchmark/paper_results`). State (the MLflow store, checkpoints,
dataset raw and cache folders, Hydra's outputs, results/) goes under `state_root()`: `$MIAN_BENCH_HOME` when set,
else the checkout in a source checkout (as before packaging), else the current directory. Nothing is ever
written inside an installed package. The `paths` config group (conf/paths/default.yaml) spells the state
folders out from the resolvers registered here: `${mian_bench_root:}` and `${mian_bench_hydra:NAME}` (Hydra's
outputs/ and multirun/: relative to the current directory as Hydra always had them, under $MIAN_BENCH_HOME when
set).

The default of every state path is spelled out once, here: the functions below (used by code that runs without a
composed config: the CLIs, the data tools, a job whose config has no `paths`) and conf/paths/default.yaml, which
names the same folders under `paths.root` (tests/test_run.py checks that the two agree).
"""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT = PACKAGE_DIR.parent
# A source checkout has conf/ and pyproject.toml beside the package; an installed wheel has neither.
SOURCE_CHECKOUT = (_CHECKOUT / "conf" / "config.yaml").is_file() and (_CHECKOUT / "pyproject.toml").is_file()
PROJECT_ROOT = _CHECKOUT  # the checkout (installed: site-packages, never written to)
CONFIG_DIR = _CHECKOUT / "conf" if SOURCE_CHECKOUT else PACKAGE_DIR / "conf"
PAPER_DIR = PACKAGE_DIR / "paper_results"
HOME_ENV = "MIAN_BENCH_HOME"


def state_root() -> Path:
    """The folder state goes under: $MIAN_BENCH_HOME, else the checkout (source) or the current directory."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(os.path.expanduser(home)).resolve()
    return PROJECT_ROOT if SOURCE_CHECKOUT else Path.cwd()


def default_db() -> Path:
    """The SQLite MLflow store used when nothing names one (`paths.tracking_db`)."""
    return state_root() / "mlflow.db"


def default_checkpoint_dir() -> Path:
    """Where jobs keep their checkpoints when `trainer.checkpoint_dir` is unset (`paths.checkpoint_dir`)."""
    return state_root() / "checkpoints"


def default_raw_root() -> Path:
    """The folder holding each dataset's raw files, `<raw root>/<name>` (`paths.raw_dir`)."""
    return state_root() / "datasets" / "raw"


def default_cache_dir() -> Path:
    """The dataset cache (`paths.cache_dir`)."""
    return state_root() / "datasets" / "cache"


def default_optuna_db() -> Path:
    """The Optuna study storage used when `tune.storage` is unset."""
    return state_root() / "optuna.db"


def results_dir() -> Path:
    """Where the report and the benchmarks write their results."""
    return state_root() / "results"


def hydra_dir(name: str) -> str:
    """Hydra's `name` folder (outputs, multirun): `name` itself (the current directory's), or under $MIAN_BENCH_HOME."""
    home = os.environ.get(HOME_ENV)
    return str(Path(os.path.expanduser(home)).resolve() / name) if home else name


if not OmegaConf.has_resolver("mian_bench_root"):
    OmegaConf.register_new_resolver("mian_bench_root", lambda: str(state_root()))
if not OmegaConf.has_resolver("mian_bench_hydra"):
    OmegaConf.register_new_resolver("mian_bench_hydra", hydra_dir)
