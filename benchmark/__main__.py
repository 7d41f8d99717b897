"""`python -m benchmark [overrides]` (installed: `mian-bench`): one job, or a sweep with `-m`. See README.md."""
from __future__ import annotations

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmark import CONFIG_DIR
from benchmark.config import ConfigError
from benchmark.interrupt import Interrupted
from benchmark.run import USER_ERRORS, run_job
from benchmark.sweep import CONFIG_ERROR_ENV


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the test AUC (Hydra sweepers may optimise it). In a multirun, a failed job is reported and the
    sweep goes on; a single run exits with status 2 and the error message. An interrupt (SIGINT, SIGTERM) ends
    the job and the sweep with status 128 + the signal number."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        refusal = HydraConfig.get().job.env_set.get(CONFIG_ERROR_ENV)
        if refusal:  # this job of a sweep did not compose (benchmark/sweep.py: keep_invalid_jobs)
            raise ConfigError(refusal)
        return float(run_job(cfg)["test_auc"])
    except KeyboardInterrupt as error:  # SIGINT/SIGTERM: the run is KILLED, its checkpoint kept; a sweep stops
        if os.environ.get("BENCHMARK_DEBUG"):
            raise
        sys.exit(error.exit_code if isinstance(error, Interrupted) else 130)
    except USER_ERRORS as error:
        if os.environ.get("BENCHMARK_DEBUG"):
            raise
        if multirun:
            job = HydraConfig.get().job
            print(f"error in job {job.num} ({job.override_dirname or 'defaults'}): {error}", file=sys.stderr)
            return None
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
