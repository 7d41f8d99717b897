"""Every name list of the suite, defined once: the config schema validates against these, the models dispatch on
them and the report orders its tables by them. A test checks that the lists naming conf/ options (ablations,
protocols, experiments, ...) match the files there."""
from __future__ import annotations

# Models, in the tables' order (paper Table 2).
DEEPCTR_MODELS = ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm", "din", "dien")
NATIVE_MODELS = ("mian",)
MODELS = (*DEEPCTR_MODELS, *NATIVE_MODELS)
# The calibrated effects benchmark's controls (models/controls.py): small models of the suite's own, each built
# for one form of planted effect; not rows of the paper's tables.
CONTROL_MODELS = ("fm", "max_sim", "product_attn", "tensor_fact")
ALL_MODELS = (*MODELS, *CONTROL_MODELS)  # every model=<name> option (conf/model/)

# MIAN's readings of what the paper leaves open (models/mian.py, docs/mian.md).
ENCODERS = ("pre_ln", "post_ln", "none")
POSITIONALS = ("learned", "learned_recent", "none")
GIM_COMBINES = ("concat", "project")
E_B_POOLS = ("mean", "sum")
SCORE_READINGS = ("additive", "per_position", "bahdanau", "bilinear", "din")
FIELD_SCORE_READINGS = tuple(r for r in SCORE_READINGS if r != "per_position")  # per_position needs ordered keys
# What an interaction module hands on (Eq. 6/9/11/13): concat, the paper read literally, or concat plus the
# element-wise product of the candidate and what it attends to (docs/mian.md, "The readout").
READOUTS = ("concat", "product")

# MIAN's ablations (conf/ablation/), in the order of the paper's Table 3; the strict reading of w/o IUIM & ICIM
# last (it is not a row of the paper's table).
ABLATIONS = ("full", "no_iuim", "no_icim", "no_ibim", "no_gim", "no_iuim_icim", "no_iuim_icim_strict")
TABLE3_ABLATIONS = ABLATIONS[:-1]

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
