"""`python -m benchmark [overrides]`: one job, or a sweep with `-m`. See README.md for the knobs."""
from __future__ import annotations

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmark.run import USER_ERRORS, run_job


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the test AUC (Hydra sweepers may optimise it). In a multirun, a failed job is reported and the
    sweep goes on; a single run exits with status 2 and the error message."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return float(run_job(cfg)["test_auc"])
    except USER_ERRORS as error:
        if os.environ.get("BENCHMARK_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        if multirun:
            return None
        sys.exit(2)


if __name__ == "__main__":
    main()
