"""MIAN benchmark suite: one protocol, one trainer, MLflow tracking, Hydra sweeps.

Importing the package loads nothing but its paths: the config schema registers itself with Hydra when
benchmark.config (or benchmark.config.schema) is imported, which every entry point that composes a config does."""
from benchmark.paths import CONFIG_DIR, PACKAGE_DIR, PAPER_DIR, PROJECT_ROOT, SOURCE_CHECKOUT, state_root

__all__ = ["CONFIG_DIR", "PACKAGE_DIR", "PAPER_DIR", "PROJECT_ROOT", "SOURCE_CHECKOUT", "state_root"]
