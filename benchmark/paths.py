"""Where the suite reads its package data and writes its state.

Read-only data (Hydra's configs, the paper's CSVs) comes from the source checkout when run from one, else from
the installed package (`benchmark/conf`, `benchmark/paper_results`). State (the MLflow store, checkpoints,
dataset raw and cache folders, Hydra's outputs, results/) goes under `state_root()`: `$MIAN_BENCH_HOME` when set,
else the checkout in a source checkout (as before packaging), else the current directory. Nothing is ever
written inside an installed package. The `paths` config group (conf/paths/default.yaml) spells the state
folders out from the resolvers registered here: `${mian_bench_root:}` and `${mian_bench_hydra:NAME}` (Hydra's
outputs/ and multirun/: relative to the current directory as Hydra always had them, under $MIAN_BENCH_HOME when
set).
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


def hydra_dir(name: str) -> str:
    """Hydra's `name` folder (outputs, multirun): `name` itself (the current directory's), or under $MIAN_BENCH_HOME."""
    home = os.environ.get(HOME_ENV)
    return str(Path(os.path.expanduser(home)).resolve() / name) if home else name


if not OmegaConf.has_resolver("mian_bench_root"):
    OmegaConf.register_new_resolver("mian_bench_root", lambda: str(state_root()))
if not OmegaConf.has_resolver("mian_bench_hydra"):
    OmegaConf.register_new_resolver("mian_bench_hydra", hydra_dir)
