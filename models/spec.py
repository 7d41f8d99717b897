"""What the registry (models/registry.py) holds for each model, and the contract every built model keeps.

Torch-free at import (the tensor types are annotations only), like the rest of the registry: the config schema
and the report read the registry without loading torch."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

    from models.options import Model

Family = Literal["native", "deepctr", "control"]
# (the model's options, its DeepCTR-Torch feature columns, the item field names) -> (positional args, keyword args)
# beyond those every baseline gets (init_std, seed, device, task, the DNN's sizes; models/deepctr_adapter.py)
Arguments = Callable[[dict[str, Any], list, list[str]], tuple[tuple, dict[str, Any]]]


def _no_negatives(options: dict[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class Library:
    """How a DeepCTR-Torch baseline is built: the library's class and the arguments its options give."""

    cls: str                          # a class of deepctr_torch.models, e.g. "DIN"
    arguments: Arguments
    neg_hist: Callable[[dict[str, Any]], bool] = _no_negatives  # does it read the sampled negative behaviours?


@dataclass(frozen=True)
class ModelSpec:
    """One model, found by its name (the `model=<name>` option)."""

    name: str
    label: str                        # how tables name it
    options: type[Model]              # its config dataclass: the schema of conf/model/<name>.yaml
    family: Family                    # native (models/), deepctr (DeepCTR-Torch), control (calibrated benchmark)
    build: str                        # "module:function", called (model_cfg, ablation_cfg, schema, seed, device)
    sequential: bool = False          # attends over the behaviour sequence (the paper's C6 compares these)
    paper: bool = True                # a model of the paper's Table 2 (its claims are about these)
    library: Library | None = None    # deepctr family only


@runtime_checkable
class CTRModel(Protocol):
    """The contract every built model keeps; the shared trainer relies on nothing else.

    Required: `inputs`, the batch keys it reads (benchmark/data/schema.py BATCH_KEYS; only these are moved to the
    device), and `forward(batch) -> logits [B]`.
    Optional hooks, read where present: `extra_loss()` (a loss term of the last training forward, e.g. DIEN's
    auxiliary loss; none: nothing added), `graph_capturable` and `graph_unsafe_reason` (whether its training step may
    be captured as one CUDA graph; absent: it may), `explain(batch)` (attention weights, benchmark/diagnostics.py).
    Which parameters are exempt from the L2 penalty is one rule for every model, the trainer's (the embedding
    tables: benchmark/trainer.py `embedding_ids`), so that one protocol regularises every model alike."""

    inputs: tuple[str, ...]

    def forward(self, batch: dict[str, Tensor]) -> Tensor: ...
