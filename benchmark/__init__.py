"""MIAN benchmark suite: one protocol, one trainer, MLflow tracking, Hydra sweeps."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
