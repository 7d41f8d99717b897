"""The options of MIAN, its ablations and the calibrated benchmark's controls: the config dataclass each of these
models is built from (as nanoGPT's GPTConfig beside GPT), and the bases every model's options start from. The
DeepCTR-Torch baselines' options sit beside their registry entries in models/baselines.py.

These classes are the Hydra schema of `model=<name>` (benchmark/config/schema.py stores them in the ConfigStore):
each field carries its type, its default and its check (`option(default, check)`, benchmark/checks.py), so a
default lives here and nowhere else. The module imports no torch, so that composing a config or reading the
report does not load it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, List

from omegaconf import II, MISSING

from benchmark.checks import ACTIVATION, ATTENTION_ACTIVATION, BOOL, choice, int_list, integer, late_choice, number, option

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


# The registered model names, filled in by models/registry.py once it is assembled from these classes (so the
# check of `model.name` lists every model without this module importing the registry).
REGISTERED: list[str] = []


@dataclass
class Ablation:
    """MIAN's ablations (paper Table 3): which interaction modules are built. Only valid with model=mian."""

    name: str = option("full", choice(*ABLATIONS))
    ibim: Any = option(True, BOOL)
    iuim: Any = option(True, BOOL)
    icim: Any = option(True, BOOL)
    gim: Any = option(True, BOOL)
    field_inputs: Any = option(True, BOOL)           # e_u and e_c enter GIM as inputs of their own


# ---------------------------------------------------------------------------------------------- bases
@dataclass
class Model:
    """What every model has (`name` is the model=<name> option; choices and library defaults: docs/baselines.md)."""

    NAME: ClassVar[str] = ""
    name: str = option(MISSING, late_choice(lambda: tuple(REGISTERED)))
    embedding_dim: int = option(II("embedding_dim"), integer(1))
    dropout: float = option(0.2, number(0.0, 1.0, high_open=True))
    init_std: float = option(0.02, number(0.0, low_open=True))   # DeepCTR-Torch's default is 1e-4


@dataclass
class DNNModel(Model):
    dnn_hidden_units: List[int] = option([32, 8], int_list(1))   # the paper's MLP for every model
    dnn_activation: str = option("relu", ACTIVATION)
    dnn_use_bn: Any = option(False, BOOL)


@dataclass
class AttentionModel(DNNModel):
    att_hidden_size: List[int] = option([64, 16], int_list(1))   # library default
    att_activation: str = option("relu", ATTENTION_ACTIVATION)
    att_weight_normalization: Any = option(True, BOOL)           # softmax over the behaviours


# ---------------------------------------------------------------------------------------------- MIAN, controls
@dataclass
class MIAN(Model):
    """Native MIAN (models/mian.py). Paper: 8 heads, MLP 32-8, dropout 0.2, truncated-normal init std 0.02."""

    NAME: ClassVar[str] = "mian"
    encoder: str = option("pre_ln", choice(*ENCODERS))  # pre_ln (MIAN) | post_ln (original Transformer) | none
    num_heads: int = option(8, integer(1))
    ffn_dim: int = option(64, integer(1))
    positional: str = option("learned", choice(*POSITIONALS))  # learned: from the oldest | learned_recent | none
    ibim_score: str = option("additive", choice(*SCORE_READINGS))  # Eq. 8's score; additive: the paper literally
    field_score: str = option("additive", choice(*FIELD_SCORE_READINGS, note=(
        " (per_position applies to IBIM only: model.ibim_score=per_position)")))  # Eq. 10/13's score
    score_dim: int = option(32, integer(1))             # hidden width of the bahdanau and din scores
    readout: str = option("concat", choice(*READOUTS))  # concat: R = [e_i ; pooled] (literal) | product: + e_i * pooled
    e_b_pool: str = option("mean", choice(*E_B_POOLS))  # e_b as GIM sees it: masked mean | sum (as DIN/DIEN)
    gim_combine: str = option("concat", choice(*GIM_COMBINES))  # concat: scale and concatenate | project and sum
    gim_dim: int = option(32, integer(1))               # only used by gim_combine=project
    mlp_dims: List[int] = option([32, 8], int_list(1))


@dataclass
class Control(Model):
    """A control of the calibrated effects benchmark (models/controls.py): LR plus one mechanism. Its weights
    start at `init_std`; `dropout` is accepted (every model has it) but unused."""

    dropout: float = option(0.0, number(0.0, 1.0, high_open=True))
    id_embeddings: Any = option(True, BOOL)  # the mechanism reads the item id too | only its attributes (category)


@dataclass
class FM(Control):
    """LR + the FM pairs through the candidate, <e_candidate, e_f> for every other field f (the history
    mean-pooled): `share`, `bilinear`."""

    NAME: ClassVar[str] = "fm"
    id_embeddings: Any = option(False, BOOL)  # id pairs memorise each item's samples at tier S (models/controls.py)


@dataclass
class MaxSim(Control):
    """LR + w * max_t <e_candidate, e_h_t>: the `max` sequence form."""

    NAME: ClassVar[str] = "max_sim"


@dataclass
class ProductAttn(Control):
    """LR + w . (e_candidate * sum_t softmax_t(<P e_candidate, e_h_t>) e_h_t): `softmax` (and `share`)."""

    NAME: ClassVar[str] = "product_attn"


@dataclass
class TensorFact(Control):
    """LR + sum over pairs of user (context) fields of <e_j * e_k, e_candidate>: the `threeway` form."""

    NAME: ClassVar[str] = "tensor_fact"
    id_embeddings: Any = option(False, BOOL)
    # a product of three embeddings moves with the square of their scale: from 0.02 it did not converge in the
    # shared protocol's 10 epochs (still rising at the last), from 0.1 it does
    init_std: float = option(0.1, number(0.0, low_open=True))


