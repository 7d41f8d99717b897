"""MIAN benchmark suite: one protocol, one trainer, MLflow tracking, Hydra sweeps."""
from benchmark.paths import CONFIG_DIR, PACKAGE_DIR, PAPER_DIR, PROJECT_ROOT, SOURCE_CHECKOUT, state_root
from benchmark.config.schema import register_configs

register_configs()  # conf/ starts from these schemas: any compose after `import benchmark` finds them

__all__ = ["CONFIG_DIR", "PACKAGE_DIR", "PAPER_DIR", "PROJECT_ROOT", "SOURCE_CHECKOUT", "state_root"]
