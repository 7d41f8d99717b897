"""The DeepCTR-Torch baselines, one entry each: its options (the config dataclass, the schema of
conf/model/<name>.yaml), the library class it is built from and the arguments its options give, whether it is
sequential, its label. models/deepctr_adapter.py builds any entry the same way (feature columns, seeding, the
library's traps); docs/baselines.md says why each choice departs from the library's defaults.

A new baseline is three files: its entry here, conf/model/<name>.yaml and conf/protocol_model/library_<name>.yaml
(README "Extending"; tests/test_registry.py follows that recipe). Every argument the entry does not set is the
library's default; the library's own L2 terms are set to 0 (the shared trainer regularises every model alike)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, List

from omegaconf import DictConfig

from benchmark.checks import ACTIVATION, ATTENTION_ACTIVATION, BOOL, ConfigError, choice, int_list, integer, number, option
from models.options import AttentionModel, DNNModel, Model
from models.spec import Library, ModelSpec

ADAPTER = "models.deepctr_adapter:build"


# ---------------------------------------------------------------------------------------------- options
@dataclass
class LR(Model):
    """DeepCTR-Torch WDL with no DNN (its linear part alone); its weights live in the linear part, whose init
    std stays the library's 1e-4, and `dropout` is accepted (every model has it) but unused."""

    NAME: ClassVar[str] = "lr"
    dropout: float = option(0.0, number(0.0, 1.0, high_open=True))


@dataclass
class WideDeep(DNNModel):
    """DeepCTR-Torch WDL; the wide part is linear over the raw fields (no cross-product transforms)."""

    NAME: ClassVar[str] = "wide_deep"


@dataclass
class DCN(DNNModel):
    NAME: ClassVar[str] = "dcn"
    cross_num: int = option(2, integer(1))             # library default
    cross_parameterization: str = option("vector", choice("vector", "matrix"))  # vector: DCN (v1); matrix: DCN-M
    use_linear: Any = option(False, BOOL)              # the DCN paper has no linear logit; the library adds one


@dataclass
class DeepFM(DNNModel):
    NAME: ClassVar[str] = "deepfm"


@dataclass
class XDeepFM(DNNModel):
    """The CIN is sized by fields, not by embedding tables (the library's count breaks with shared tables)."""

    NAME: ClassVar[str] = "xdeepfm"
    cin_layer_size: List[int] = option([256, 128], int_list(1))  # library default
    cin_split_half: Any = option(True, BOOL)                     # library default
    cin_activation: str = option("relu", ACTIVATION)  # the paper's identity (linear) stalls under the shared L2

    @staticmethod
    def check_across(node: DictConfig) -> None:
        if node.cin_split_half and any(size % 2 for size in node.cin_layer_size[:-1]):
            raise ConfigError(f"model.cin_layer_size={list(node.cin_layer_size)} is invalid: with "
                              "model.cin_split_half=true every size but the last must be even")


@dataclass
class DIN(AttentionModel):
    """DeepCTR-Torch DIN, attention over the behaviour sequence (all item fields)."""

    NAME: ClassVar[str] = "din"
    att_activation: str = option("Dice", ATTENTION_ACTIVATION)   # library default (DIN's data-adaptive activation)
    att_weight_normalization: Any = option(False, BOOL)          # library default, as the DIN paper (no softmax)


@dataclass
class DIEN(AttentionModel):
    """DeepCTR-Torch DIEN with AUGRU and the auxiliary loss on the data layer's negative behaviours (neg_hist)."""

    NAME: ClassVar[str] = "dien"
    gru_type: str = option("AUGRU", choice("GRU", "AIGRU", "AGRU", "AUGRU"))  # the DIEN paper's; library: GRU
    use_negsampling: Any = option(True, BOOL)          # auxiliary loss on negative behaviours, as in the paper
    alpha: float = option(1.0, number(0.0))            # auxiliary loss weight (the trainer adds alpha * aux loss)


# ---------------------------------------------------------------------------------------------- arguments
# Each: (options, feature columns, item field names) -> (positional args, keyword args) beyond the common ones.
def _lr(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, []), {"dnn_hidden_units": (), "l2_reg_linear": 0.0, "l2_reg_dnn": 0.0}


def _wide_deep(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, columns), {"dnn_use_bn": bool(o["dnn_use_bn"]), "l2_reg_linear": 0.0}


def _dcn(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    linear = columns if o["use_linear"] else []
    return (linear, columns), {"dnn_use_bn": bool(o["dnn_use_bn"]), "l2_reg_linear": 0.0, "l2_reg_cross": 0.0,
                               "cross_num": int(o["cross_num"]),
                               "cross_parameterization": str(o["cross_parameterization"])}


def _deepfm(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, columns), {"dnn_use_bn": bool(o["dnn_use_bn"]), "l2_reg_linear": 0.0, "use_fm": True}


def _xdeepfm(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, columns), {"dnn_use_bn": bool(o["dnn_use_bn"]), "l2_reg_linear": 0.0, "l2_reg_cin": 0.0,
                                "cin_layer_size": tuple(o["cin_layer_size"]),
                                "cin_split_half": bool(o["cin_split_half"]),
                                "cin_activation": str(o["cin_activation"])}


def _attention(o: dict[str, Any]) -> dict[str, Any]:
    return {"att_activation": str(o["att_activation"]), "att_weight_normalization": bool(o["att_weight_normalization"])}


def _din(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, items), {**_attention(o), "dnn_use_bn": bool(o["dnn_use_bn"]),
                              "att_hidden_size": tuple(o["att_hidden_size"])}


def _dien(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, items), {**_attention(o), "use_bn": bool(o["dnn_use_bn"]),
                              "att_hidden_units": tuple(o["att_hidden_size"]), "gru_type": str(o["gru_type"]),
                              "use_negsampling": bool(o["use_negsampling"]), "alpha": float(o["alpha"])}


def _dien_negatives(o: dict[str, Any]) -> bool:
    return bool(o["use_negsampling"])


# ---------------------------------------------------------------------------------------------- entries
# In the paper's Table 2 order, which the tables keep.
BASELINES: tuple[ModelSpec, ...] = (
    ModelSpec("lr", "LR", LR, "deepctr", ADAPTER, library=Library("WDL", _lr)),
    ModelSpec("wide_deep", "Wide&Deep", WideDeep, "deepctr", ADAPTER, library=Library("WDL", _wide_deep)),
    ModelSpec("dcn", "DCN", DCN, "deepctr", ADAPTER, library=Library("DCN", _dcn)),
    ModelSpec("deepfm", "DeepFM", DeepFM, "deepctr", ADAPTER, library=Library("DeepFM", _deepfm)),
    ModelSpec("xdeepfm", "xDeepFM", XDeepFM, "deepctr", ADAPTER, library=Library("xDeepFM", _xdeepfm)),
    ModelSpec("din", "DIN", DIN, "deepctr", ADAPTER, sequential=True, library=Library("DIN", _din)),
    ModelSpec("dien", "DIEN", DIEN, "deepctr", ADAPTER, sequential=True,
              library=Library("DIEN", _dien, neg_hist=_dien_negatives)),
)
