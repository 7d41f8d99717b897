"""Every name list of the suite in one place: the config schema validates against these, and the report orders
its tables by them. The models and MIAN's options are declared with the models (models/registry.py,
models/options.py) and named here too. A test checks that the lists naming conf/ options (ablations,
protocols, experiments, ...) match the files there."""
from __future__ import annotations

from models import registry
# MIAN's readings of what the paper leaves open and its ablations (conf/ablation/) are MIAN's own options.
from models.options import (  # noqa: F401 - named here with every other list
    ABLATIONS, E_B_POOLS, ENCODERS, FIELD_SCORE_READINGS, GIM_COMBINES, POSITIONALS, READOUTS, SCORE_READINGS,
    TABLE3_ABLATIONS,
)

# Models, in the tables' order (paper Table 2): the registry's (models/registry.py), where each is declared once.
DEEPCTR_MODELS = registry.names("deepctr")
NATIVE_MODELS = registry.names("native")
MODELS = (*DEEPCTR_MODELS, *NATIVE_MODELS)
# The calibrated effects benchmark's controls (models/controls.py): small models of the suite's own, each built
# for one form of planted effect; not rows of the paper's tables.
CONTROL_MODELS = registry.names("control")
ALL_MODELS = tuple(registry.REGISTRY)  # every model=<name> option (conf/model/)

# Datasets (conf/dataset/) and the loaders that build them (benchmark/data/<loader>.py).
# The paper's datasets and their stand-ins: every table of the report has a section for each, run or not (the
# Amazon ones say how to run them); the others (generated, your own) appear where they have runs.
TABLE_DATASETS = ("synthetic", "movielens", "movielens_seq", "electronics", "books")
DATASETS = (*TABLE_DATASETS, "calibrated", "custom", "taobao_ad", "din_samples")
LOADERS = ("synthetic", "movielens", "amazon", "movielens_seq", "calibrated", "custom")
EFFECTS = ("sequence", "user", "context")  # the synthetic data's planted effects (conf/effects/)
# The calibrated data's planted effect and its functional form (benchmark/data/calibrated.py); each pair is a
# conf/mechanism/<effect>_<form>.yaml, the cells of experiment=effects.
SEQUENCE_FORMS = ("share", "max", "softmax")
FIELD_FORMS = ("bilinear", "threeway")
MECHANISMS = (*(f"sequence_{f}" for f in SEQUENCE_FORMS),
              *(f"{effect}_{f}" for effect in ("user", "context") for f in FIELD_FORMS))

# Training protocols (conf/protocol/) and the trainer's regularisation choices.
# `tuned`: each model at the best configuration its own tuning study found (benchmark/tune.py).
PROTOCOLS = ("shared", "shared_kernels", "shared_decoupled", "shared_light", "shared_long", "library", "tuned")
L2_SCOPES = ("dense", "kernels")
WEIGHT_DECAYS = ("coupled", "decoupled")
AMP_MODES = ("none", "bf16")

# Experiments (conf/experiment/).
# `tune`: the trials of a tuning study (python -m benchmark.tune), never a plain job.
EXPERIMENTS = ("table2", "table3", "table4", "efficiency", "effects", "readings", "sensitivity", "tune")

# The tuning track's pruners on per-epoch validation AUC (benchmark/tune.py).
TUNE_PRUNERS = ("median", "hyperband", "none")
