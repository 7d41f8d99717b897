"""The report's vocabulary: models, ablations, encoders, datasets, metrics and their labels, in the tables' order."""
from __future__ import annotations

from benchmark.names import (  # noqa: F401 - the report reads them here
    CONTROL_MODELS, DATASETS, EFFECTS, ENCODERS, MECHANISMS, MODELS, TABLE3_ABLATIONS, TABLE_DATASETS,
)
from models import registry

MODEL_LABELS = {m: registry.spec(m).label for m in MODELS}
# The paper's baselines (C1's), and C6's two sides: the sequential ones (DIN, DIEN) and the others.
PAPER_BASELINES = registry.names("deepctr", paper=True)
SEQUENTIAL = registry.names("deepctr", paper=True, sequential=True)
NON_SEQUENTIAL = registry.names("deepctr", paper=True, sequential=False)
ABLATIONS = TABLE3_ABLATIONS
ABLATION_LABELS = {"full": "MIAN", "no_iuim": "w/o IUIM", "no_icim": "w/o ICIM", "no_ibim": "w/o IBIM",
                   "no_gim": "w/o GIM", "no_iuim_icim": "w/o IUIM & ICIM"}
ENCODER_LABELS = {"pre_ln": "Pre-LN Transformer (MIAN)", "post_ln": "Post-LN Transformer", "none": "no Transformer"}
PAPER_ENCODER = {"pre_ln": "pre_ln", "post_ln": "post_ln", "none": "no_transformer"}
DATASET_LABELS = {"synthetic": "Synthetic", "movielens": "MovieLens-1M", "movielens_seq": "MovieLens-1M next-item",
                  "electronics": "Amazon Electronics", "books": "Amazon Books",
                  "calibrated": "Calibrated synthetic (mechanisms)"}
# MovieLens-1M stands in for the paper's private commercial dataset (rich profile, short histories).
# Next-item MovieLens-1M stands in for the paper's Amazon data (same protocol, another catalogue): Electronics'
# numbers beside it.
PAPER_DATASET = {"movielens": "commercial", "movielens_seq": "electronics", "electronics": "electronics",
                 "books": "books"}
PAPER_DATASET_LABELS = {
    "commercial": "the paper's private Commercial dataset, for which MovieLens-1M stands in: compare orderings "
                  "and gaps, not levels",
    "electronics": "Amazon Electronics (same data and protocol)", "books": "Amazon Books (same data and protocol)",
    # keyed by our dataset where one paper dataset stands behind several of ours
    "movielens_seq": "the paper's Amazon Electronics, for which next-item MovieLens-1M stands in (same protocol, "
                     "another catalogue): compare orderings and gaps, not levels",
}
DATASET_ARGS = {"movielens": ["dataset.raw_dir=../shared/data/ml-1m-part"],
                "movielens_seq": ["dataset.raw_dir=../shared/data/ml-1m-part"]}
AMAZON = ("electronics", "books")
METRICS = (("test_auc", "AUC", "max"), ("test_logloss", "Logloss", "min"), ("test_gauc", "gAUC", "max"))
INTERACTIONS = ("R_ibim", "R_iuim", "R_icim")
# The ablation that removes the module meant to model each planted effect (MIAN Section 3.2).
EFFECT_MODULE = {"sequence": "no_ibim", "user": "no_iuim", "context": "no_icim"}
EFFECT_VARIANTS = ("full", "no_ibim", "no_iuim", "no_icim")
# The last epoch's learning diagnostics (benchmark/diagnostics.py) that the readings tables show.
DIAGNOSTICS = ("diag_train_loss_ratio", "diag_mlp_alive_units", "diag_ibim_entropy", "diag_ibim_max_weight",
               "diag_gim_spread")
# The arms of experiment=effects (conf/arm/) in the controls table's order, and what each is.
CONTROL_ARMS = ("din", "dien", "deepfm", "xdeepfm", "mian_additive", "mian_per_position", "mian_bahdanau",
                "mian_bilinear", "mian_din")
ARM_LABELS = {**{m: MODEL_LABELS[m] for m in MODELS}, **{m: registry.spec(m).label for m in CONTROL_MODELS},
              "mian_additive": "MIAN additive (literal)",
              "mian_per_position": "MIAN per_position", "mian_bahdanau": "MIAN bahdanau",
              "mian_bilinear": "MIAN bilinear", "mian_din": "MIAN din",
              # the calibrated benchmark's other arms (conf/arm/): the product readout, the ablations
              "mian_product": "MIAN product readout",
              "mian_no_ibim": "MIAN w/o IBIM", "mian_no_iuim": "MIAN w/o IUIM", "mian_no_icim": "MIAN w/o ICIM"}
# The positive controls the effects experiment runs for each planted effect (conf/experiment/effects.yaml).
EFFECT_CONTROLS = {"sequence": ("din", "dien", "deepfm"), "user": ("deepfm", "xdeepfm"),
                   "context": ("deepfm", "xdeepfm")}
LEARNED_MARGIN = 0.05  # a model learned a planted effect when its test AUC is within this of the oracle's


def ordered(found: list[str], canonical: tuple[str, ...]) -> list[str]:
    return list(canonical) + sorted(set(found) - set(canonical) - {""})


def present_in_order(found: list[str], canonical: tuple[str, ...]) -> list[str]:
    """The values that occur in `found`, in `ordered`'s order (the canonical ones absent from `found` left out)."""
    return [v for v in ordered(found, canonical) if v in set(found)]
