"""DeepCTR-Torch baselines (LR, Wide&Deep, DCN, DeepFM, xDeepFM, DIN, DIEN) driven by this project's trainer.

`build_deepctr_model` turns the shared `Schema` into DeepCTR-Torch feature columns, builds the library's model
on its final device with the run's seed, and wraps it so that it reads the shared batch dict and returns
logits. Every departure from the library's defaults is listed, with its reason, in docs/baselines.md.

Feature columns (d = embedding_dim, T = schema.max_len):
    <item field>            SparseFeat, embedding table named after the field
    hist_<item field>       VarLenSparseFeat(maxlen=T, combiner='mean', length_name='hist_len'), same table
    hist_len                the history length column (DeepCTR inserts it after the first history column)
    neg_hist_<item field>   DIEN with negative sampling only: VarLenSparseFeat over the same table
    user_<field>            SparseFeat
    context_<field>         SparseFeat
The non-sequential models see every column, the history mean-pooled; DIN and DIEN attend over it.

The library's traps, and what is done about each:
- It casts its input to float32, which holds every integer only below 2^24: a schema whose ids reach 2^24 is
  refused at build time (`check_float32_ids`).
- `BaseModel` calls `torch.manual_seed(1024)` unless given a seed: the run's seed is passed, and the whole
  build runs inside `torch.random.fork_rng`, so the initialisation depends on the seed alone and building a
  model leaves the global random state (dropout, data order) untouched.
- Device-dependent tensors are created at construction: every model is built directly on its final device.
- xDeepFM sizes its CIN by the number of embedding TABLES; with shared item/history tables that is fewer than
  the number of fields, and the forward pass breaks: the CIN is rebuilt with the number of fields.
- DIEN's forward drops empty histories with boolean indexing and packs sequences with lengths on the host
  (it crashes when a batch holds only empty histories, and it cannot be captured in a CUDA graph): `_DIEN`
  computes the same function with fixed shapes and masks (tests compare it with the library's `predict()`).
- Variable-length pooling builds a layer with a host tensor on every call: `_CapturableInputs` pools with
  the same arithmetic on the device.
- Importing it asks PyPI for a newer version in a background thread: `_skip_version_check` stubs that out.
- Two layers are recomputed more cheaply, with the same parameters and function (tests compare outputs,
  gradients and BatchNorm statistics with the library's in training mode): `_Dice` without transposes, and
  `_LocalActivationUnit` (DIN's and DIEN's attention MLP) with its first layer factored by weight blocks.
- `PredictionLayer` applies a sigmoid: it is replaced by `_LogitLayer`, which keeps its bias parameter.
- Regularisation: the library's own L2 terms are set to 0 and its list of regularised weights is emptied; the
  shared trainer applies trainer.l2 to every non-embedding parameter of every model. DIEN's auxiliary loss is
  returned by `extra_loss()` (alpha times the loss), never stored in the library's `aux_loss`.
"""
from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


def _skip_version_check() -> None:
    """deepctr_torch's __init__ starts a (non-daemon) thread that asks PyPI for a newer release, with no
    timeout, on every import: no network access per job, and no exit delayed on machines without one. Its
    `utils` module holds nothing but that check, so a stub stands in for it (DeepCTR-Torch issue #210)."""
    if "deepctr_torch" not in sys.modules and "deepctr_torch.utils" not in sys.modules:
        stub = types.ModuleType("deepctr_torch.utils")
        stub.check_version = lambda version: None  # type: ignore[attr-defined]
        sys.modules["deepctr_torch.utils"] = stub


_skip_version_check()

from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat  # noqa: E402
from deepctr_torch.layers import CIN, DNN, LocalActivationUnit  # noqa: E402
from deepctr_torch.layers.activation import Dice  # noqa: E402
from deepctr_torch.models import DIEN, xDeepFM  # noqa: E402
from deepctr_torch.models.basemodel import BaseModel, Linear  # noqa: E402
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

import deepctr_torch.models as library_models  # noqa: E402
from benchmark.data.schema import Field, Schema
from models.registry import REGISTRY, spec
from models.spec import Library

FLOAT32_EXACT_IDS = 2**24  # float32 represents every integer in [0, 2^24]; ids are refused from 2^24 on
HIST_LEN = "hist_len"


def option_names(name: str) -> set[str]:
    """The options of baseline `name`: the fields of its options class (its registry entry), but `name`."""
    return {f.name for f in dataclasses.fields(spec(name).options)} - {"name"}


# Each baseline's options (its registry entry, models/baselines.py).
MODEL_OPTIONS: dict[str, set[str]] = {name: option_names(name) for name, s in REGISTRY.items() if s.library is not None}


# ---- schema -> feature columns ------------------------------------------------------------------------------
def check_float32_ids(schema: Schema) -> None:
    """Refuse vocabularies whose ids reach 2^24: DeepCTR-Torch feeds ids through a float32 tensor, and from
    2^24 on float32 cannot tell neighbouring integers apart (ids would silently merge)."""
    groups = (("item", schema.item_fields), ("user", schema.user_fields), ("context", schema.context_fields))
    for group, fields in groups:
        for f in fields:
            if f.vocab_size - 1 >= FLOAT32_EXACT_IDS:
                raise ValueError(
                    f"{group} field {f.name!r} has vocab_size {f.vocab_size}: its ids reach {f.vocab_size - 1}, "
                    f"at or above 2^24 = {FLOAT32_EXACT_IDS}. DeepCTR-Torch casts ids to float32, which cannot "
                    "represent every integer from 2^24 on, so distinct ids would merge. Re-index this field to "
                    "fewer than 2^24 ids (e.g. drop rare values to the unknown id 0), or use a native model."
                )


@dataclass(frozen=True)
class FeatureLayout:
    """DeepCTR-Torch columns for one schema, and where each column's values sit in the batch dict."""

    item: list[SparseFeat]
    hist: list[VarLenSparseFeat]
    neg_hist: list[VarLenSparseFeat]
    user: list[SparseFeat]
    context: list[SparseFeat]
    sources: dict[str, tuple[str, int]]  # column name -> (batch key, field index within that key)

    @property
    def item_names(self) -> list[str]:
        return [c.name for c in self.item]

    def columns(self) -> list[SparseFeat | VarLenSparseFeat]:
        """Every column in model order: item, history (+ negatives), user, context."""
        return [*self.item, *self.hist, *self.neg_hist, *self.user, *self.context]


def feature_layout(schema: Schema, embedding_dim: int, neg_hist: bool = False) -> FeatureLayout:
    """Columns for `schema`; candidate, history and negative-history columns of a field share one table."""

    def sparse(name: str, f: Field, table: str) -> SparseFeat:
        return SparseFeat(name, vocabulary_size=f.vocab_size, embedding_dim=embedding_dim, embedding_name=table)

    def sequence(name: str, f: Field) -> VarLenSparseFeat:
        return VarLenSparseFeat(sparse(name, f, f.name), maxlen=schema.max_len, combiner="mean", length_name=HIST_LEN)

    sources: dict[str, tuple[str, int]] = {HIST_LEN: (HIST_LEN, 0)}
    item, hist, negs, user, context = [], [], [], [], []
    for i, f in enumerate(schema.item_fields):
        item.append(sparse(f.name, f, f.name))
        hist.append(sequence(f"hist_{f.name}", f))
        sources[f.name], sources[f"hist_{f.name}"] = ("item", i), ("hist", i)
        if neg_hist:
            negs.append(sequence(f"neg_hist_{f.name}", f))
            sources[f"neg_hist_{f.name}"] = ("neg_hist", i)
    for group, fields, out in (("user", schema.user_fields, user), ("context", schema.context_fields, context)):
        for j, f in enumerate(fields):
            out.append(sparse(f"{group}_{f.name}", f, f"{group}_{f.name}"))
            sources[f"{group}_{f.name}"] = (group, j)

    names = [HIST_LEN] + [c.name for c in [*item, *hist, *negs, *user, *context]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"schema field names give clashing DeepCTR-Torch column names {duplicates}: rename the fields")
    dotted = [n for n in names if "." in n]
    if dotted:
        raise ValueError(f"schema field names must not contain '.', which torch module names forbid: {dotted}")
    return FeatureLayout(item, hist, negs, user, context, sources)


def input_plan(feature_index: dict[str, tuple[int, int]], sources: dict[str, tuple[str, int]]) -> list[tuple[str, int]]:
    """(batch key, field index) for every column of the model's input, in the order of its feature_index."""
    plan, width = [], 0
    for name, (start, end) in feature_index.items():
        if name not in sources:
            raise ValueError(f"DeepCTR-Torch input column {name!r} has no source in the batch")
        if start != width:
            raise ValueError(f"DeepCTR-Torch input column {name!r} starts at {start}, expected {width}")
        plan.append(sources[name])
        width = end
    return plan


def batch_to_input(batch: dict[str, Tensor], plan: list[tuple[str, int]]) -> Tensor:
    """The shared batch dict -> DeepCTR-Torch's input matrix [B, width] (float32, as the library expects)."""
    parts = []
    for key, col in plan:
        values = batch[key]
        if values.dim() == 1:  # hist_len [B]
            parts.append(values[:, None])
        elif values.dim() == 2:  # item / user / context [B, F]
            parts.append(values[:, col : col + 1])
        else:  # hist / neg_hist [B, T, Fi]
            parts.append(values[:, :, col])
    return torch.cat(parts, dim=1).float()


# ---- capturable replacements for the library's host-side pieces -------------------------------------------
def pool_varlen(
    X: Tensor, embedding_dict: nn.ModuleDict, feature_index: dict[str, tuple[int, int]], columns: list[VarLenSparseFeat]
) -> list[Tensor]:
    """The result of deepctr_torch.inputs.get_varlen_pooling_list (each [B, 1, E]), computed on X's device
    (the library builds a SequencePoolingLayer, and copies host tensors to the device, on every call)."""
    pooled = []
    for feat in columns:
        start, end = feature_index[feat.name]
        emb = embedding_dict[feat.embedding_name](X[:, start:end].long())  # [B, T, E]
        if feat.length_name is None:
            mask = X[:, start:end].long() != 0
        else:
            lo, hi = feature_index[feat.length_name]
            mask = torch.arange(end - start, device=X.device)[None, :] < X[:, lo:hi].long()
        mask = mask.unsqueeze(-1).to(emb.dtype)  # [B, T, 1]
        if feat.combiner == "max":
            pooled.append(torch.max(emb - (1 - mask) * 1e9, dim=1, keepdim=True)[0])
            continue
        total = (emb * mask).sum(dim=1)
        if feat.combiner == "mean":
            total = total / (mask.sum(dim=1) + 1e-8)
        pooled.append(total.unsqueeze(1))
    return pooled


class _CapturableLinear(Linear):
    """The library's linear (wide) part, with the device-side pooling of `pool_varlen`."""

    def forward(self, X: Tensor, sparse_feat_refine_weight: Tensor | None = None) -> Tensor:
        embeddings = [
            self.embedding_dict[feat.embedding_name](X[:, self.feature_index[feat.name][0] : self.feature_index[feat.name][1]].long())
            for feat in self.sparse_feature_columns
        ]
        embeddings += pool_varlen(X, self.embedding_dict, self.feature_index, self.varlen_sparse_feature_columns)
        logit = X.new_zeros((X.shape[0], 1))
        if embeddings:
            cat = torch.cat(embeddings, dim=-1)
            if sparse_feat_refine_weight is not None:
                cat = cat * sparse_feat_refine_weight.unsqueeze(1)
            logit = logit + cat.sum(dim=-1)
        if self.dense_feature_columns:
            dense = [X[:, self.feature_index[f.name][0] : self.feature_index[f.name][1]] for f in self.dense_feature_columns]
            logit = logit + torch.cat(dense, dim=-1).matmul(self.weight)
        return logit


class _CapturableInputs:
    """Mixin for a DeepCTR-Torch BaseModel subclass: embedding lookups and pooling without host tensors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linear_model.__class__ = _CapturableLinear  # same state, capturable forward

    def input_from_feature_columns(
        self, X: Tensor, feature_columns: list, embedding_dict: nn.ModuleDict, support_dense: bool = True
    ) -> tuple[list[Tensor], list[Tensor]]:
        sparse = [c for c in feature_columns if isinstance(c, SparseFeat)]
        dense = [c for c in feature_columns if isinstance(c, DenseFeat)]
        varlen = [c for c in feature_columns if isinstance(c, VarLenSparseFeat)]
        if dense and not support_dense:
            raise ValueError("DenseFeat is not supported in dnn_feature_columns")
        index = self.feature_index
        embeddings = [embedding_dict[c.embedding_name](X[:, index[c.name][0] : index[c.name][1]].long()) for c in sparse]
        embeddings += pool_varlen(X, self.embedding_dict, index, varlen)
        dense_values = [X[:, index[c.name][0] : index[c.name][1]] for c in dense]
        return embeddings, dense_values


class _Dice(Dice):
    """The library's Dice, computed without its transposes: for [B, T, H] input the library normalises a
    transposed [B, H, T] view and runs its five element-wise ops on strided memory; batch-normalising the
    [B*T, H] rows gives the same per-channel statistics, and alpha*(1-p)*x + p*x = x*(alpha + (1-alpha)*p).
    Same parameters and buffers (bn, alpha), same function up to float rounding (tests/test_baselines.py);
    on a CPU the attention unit's two Dice layers are about a fifth of DIN's training step."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.dim:
            raise ValueError(f"Dice(dim={self.dim}) got a {x.dim()}-d input of shape {tuple(x.shape)}")
        width = x.shape[-1]
        p = torch.sigmoid(self.bn(x.reshape(-1, width))).view(x.shape)
        alpha = self.alpha.view(width)
        return x * (alpha + (1 - alpha) * p)


class _LocalActivationUnit(LocalActivationUnit):
    """The library's attention unit (DIN, DIEN) without materialising its [B, T, 4E] input. The first layer
    W [q ; k ; q-k ; q*k] + b is, by W's four column blocks, q (W_q + W_d) + k (W_k - W_d) + (q*k) W_p + b: the
    query's part is computed once per example instead of once per behaviour, and the concatenation (and the
    expanded query) disappears. The rest of the MLP runs as the library's DNN does. Same parameters, same
    function up to float rounding (tests/test_baselines.py)."""

    def forward(self, query: Tensor, user_behavior: Tensor) -> Tensor:
        dnn = self.dnn
        first = dnn.linears[0]
        w_q, w_k, w_d, w_p = first.weight.split(query.shape[-1], dim=1)
        fc = (F.linear(query, w_q + w_d, first.bias) + F.linear(user_behavior, w_k - w_d)
              + F.linear(query * user_behavior, w_p))  # [B, 1, H] broadcast over [B, T, H]
        for i in range(len(dnn.linears)):
            if i > 0:
                fc = dnn.linears[i](fc)
            if dnn.use_bn:
                fc = dnn.bn[i](fc)
            fc = dnn.dropout(dnn.activation_layers[i](fc))
        return self.dense(fc)  # [B, T, 1]


class _LogitLayer(nn.Module):
    """PredictionLayer without the sigmoid: adds the same bias parameter and returns logits."""

    def __init__(self, bias: nn.Parameter) -> None:
        super().__init__()
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias


def fix_xdeepfm_cin(net: xDeepFM, num_fields: int, layer_size: tuple[int, ...], activation: str, split_half: bool,
                    device: str) -> None:
    """Rebuild xDeepFM's CIN for `num_fields` fields: the library counts embedding tables instead, which is
    fewer than the fields when candidate and history share tables (its forward then fails)."""
    if net.use_cin:
        net.cin = CIN(num_fields, layer_size, activation, split_half, 0.0, device=device)


class _XDeepFM(_CapturableInputs, xDeepFM):
    def __init__(self, linear_feature_columns: list, dnn_feature_columns: list, **kwargs: Any) -> None:
        super().__init__(linear_feature_columns, dnn_feature_columns, **kwargs)
        fields = [c for c in dnn_feature_columns if isinstance(c, (SparseFeat, VarLenSparseFeat))]
        fix_xdeepfm_cin(self, len(fields), kwargs["cin_layer_size"], kwargs["cin_activation"],
                        kwargs["cin_split_half"], kwargs["device"])


class _DIEN(_CapturableInputs, DIEN):
    """DIEN with the library's modules and parameters and a fixed-shape forward pass: all rows stay in the
    batch (no boolean indexing, no packed sequences with host lengths), padding is masked instead, and an
    empty history gives a zero interest vector, as in the library. Graph-capturable; works on a batch of
    only empty histories. The auxiliary loss of the last training forward, times alpha, is `last_aux_loss`."""

    last_aux_loss: Tensor | None = None

    def forward(self, X: Tensor) -> Tensor:
        query, keys, neg_keys, keys_length = self._get_emb(X)  # [B, H], [B, T, H], [B, T, H] | None, [B]
        mask = torch.arange(keys.shape[1], device=X.device)[None, :] < keys_length[:, None]  # [B, T]
        # Interest extractor: a GRU is causal, so running it over the padded tail leaves the valid steps as the
        # library's packed run computes them; the padded steps are zeroed as pad_packed_sequence does.
        interests, _ = self.interest_extractor.gru(keys)
        interests = interests * mask.unsqueeze(-1).to(interests.dtype)
        self.last_aux_loss = None
        if self.use_negsampling and self.training:
            self.last_aux_loss = self.alpha * self._auxiliary_loss(interests, keys, neg_keys, keys_length)
        hist = self._evolve(query, interests, keys_length, mask)
        deep_input = torch.cat([hist, self._get_deep_input_emb(X)], dim=-1)
        dense = [X[:, self.feature_index[c.name][0] : self.feature_index[c.name][1]] for c in self.dense_feature_columns]
        if dense:
            deep_input = torch.cat([deep_input, torch.cat(dense, dim=-1)], dim=-1)
        return self.out(self.linear(self.dnn(deep_input)))

    def _auxiliary_loss(self, interests: Tensor, keys: Tensor, neg_keys: Tensor, keys_length: Tensor) -> Tensor:
        """DIEN's auxiliary loss: the state after behaviour t should score behaviour t+1 (clicked) above the
        sampled negative t+1. Mean BCE over the valid (state, next behaviour) pairs; 0 when there are none."""
        steps = keys.shape[1] - 1
        valid = torch.arange(steps, device=keys.device)[None, :] < (keys_length - 1)[:, None]  # [B, T-1]
        valid = valid.to(interests.dtype)
        states = interests[:, :-1]
        aux_net = self.interest_extractor.auxiliary_net
        click_p = aux_net(torch.cat([states, keys[:, 1:]], dim=-1)).squeeze(-1)
        noclick_p = aux_net(torch.cat([states, neg_keys[:, 1:]], dim=-1)).squeeze(-1)
        loss = F.binary_cross_entropy(click_p, torch.ones_like(click_p), reduction="none") + F.binary_cross_entropy(
            noclick_p, torch.zeros_like(noclick_p), reduction="none"
        )
        return (loss * valid).sum() / (2 * valid.sum()).clamp_min(1.0)

    def _evolve(self, query: Tensor, interests: Tensor, keys_length: Tensor, mask: Tensor) -> Tensor:
        """Interest evolving layer -> [B, H]: the library's InterestEvolving with masks instead of packing."""
        evolving = self.interest_evolution
        batch, steps, width = interests.shape
        has_history = (keys_length > 0).unsqueeze(-1).to(interests.dtype)
        query3, length2 = query.unsqueeze(1), keys_length.unsqueeze(1)
        if evolving.gru_type == "GRU":
            states, _ = evolving.interest_evolution(interests)
            out = evolving.attention(query3, states, length2).squeeze(1)
        elif evolving.gru_type == "AIGRU":
            scores = evolving.attention(query3, interests, length2)  # [B, 1, T]
            states, _ = evolving.interest_evolution(interests * scores.transpose(1, 2))
            last = (keys_length - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, width)
            out = states.gather(1, last).squeeze(1)
        else:  # AGRU, AUGRU: a zero attention score leaves the state unchanged, so padding never moves it
            scores = evolving.attention(query3, interests, length2).squeeze(1) * mask.to(interests.dtype)  # [B, T]
            cell = evolving.interest_evolution.rnn
            out = interests.new_zeros(batch, width)
            for t in range(steps):
                out = cell(interests[:, t], out, scores[:, t])
        return out * has_history


# The library classes whose capturable subclass is more than the inputs mixin; the others get one made on demand.
_CAPTURABLE: dict[type[BaseModel], type[BaseModel]] = {xDeepFM: _XDeepFM, DIEN: _DIEN}


# ---- the wrapper the trainer sees ---------------------------------------------------------------------------
class DeepCTRModel(nn.Module):
    """A DeepCTR-Torch model behind this project's contract: forward(batch) -> logits [B], extra_loss()."""

    graph_capturable = True
    graph_unsafe_reason = ""

    def __init__(self, name: str, net: BaseModel, plan: list[tuple[str, int]]) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self.plan = plan
        # the batch keys this model reads (benchmark/batches.py): neg_hist only for DIEN with negative sampling
        self.inputs = tuple(dict.fromkeys(key for key, _ in plan))

    def to_input(self, batch: dict[str, Tensor]) -> Tensor:
        return batch_to_input(batch, self.plan)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.net(self.to_input(batch)).squeeze(-1)

    def extra_loss(self) -> Tensor | None:
        """DIEN's auxiliary loss (times alpha) from the last training forward, handed over once: the model keeps
        no reference to it, since a kept loss keeps its autograd graph alive, and the gradient-accumulation nodes
        of that graph, tied to the stream they ran on, make the next CUDA-graph capture fail. None for the other
        models."""
        loss = getattr(self.net, "last_aux_loss", None)
        if loss is not None:
            self.net.last_aux_loss = None
        return loss


# ---- construction ---------------------------------------------------------------------------------------------
def model_options(model_cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """(name, options) from a model config, checking that exactly the model's options are present."""
    options: dict[str, Any] = OmegaConf.to_container(model_cfg, resolve=True)  # type: ignore[assignment]
    name = str(options.pop("name"))
    _library_of(name)
    expected = option_names(name)
    missing = sorted(expected - options.keys())
    unknown = sorted(options.keys() - expected)
    if missing or unknown:
        raise ValueError(
            f"model={name}: options missing {missing} / unknown {unknown}; expected exactly "
            f"{sorted(expected)} (its options class: models/baselines.py)"
        )
    return name, options


def _library_of(name: str) -> Library:
    library = spec(name).library
    if library is None:
        known = sorted(n for n, s in REGISTRY.items() if s.library is not None)
        raise ValueError(f"model.name={name!r} is not a DeepCTR-Torch baseline; known: {known}")
    return library


def capturable_class(library_cls: type[BaseModel]) -> type[BaseModel]:
    """The library class with this module's capturable inputs (and, for xDeepFM and DIEN, their fixes)."""
    if library_cls not in _CAPTURABLE:
        _CAPTURABLE[library_cls] = type(f"_{library_cls.__name__}", (_CapturableInputs, library_cls), {})
    return _CAPTURABLE[library_cls]


def _library_arguments(
    name: str, o: dict[str, Any], layout: FeatureLayout, seed: int, device: str
) -> tuple[type[BaseModel], type[BaseModel], tuple, dict[str, Any]]:
    """(library class, capturable subclass, positional args, keyword args) for one baseline: the common keyword
    arguments, then its registry entry's (models/baselines.py)."""
    library = _library_of(name)
    common: dict[str, Any] = {"init_std": float(o["init_std"]), "seed": seed, "device": device,
                              "l2_reg_embedding": 0.0, "task": "binary"}
    if "dnn_hidden_units" in o:
        common.update(dnn_hidden_units=tuple(o["dnn_hidden_units"]), dnn_dropout=float(o["dropout"]),
                      dnn_activation=str(o["dnn_activation"]), l2_reg_dnn=0.0)
    args, kwargs = library.arguments(o, layout.columns(), layout.item_names)
    library_cls = getattr(library_models, library.cls)
    return library_cls, capturable_class(library_cls), args, {**common, **kwargs}


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Initialise from `seed` alone, restoring the global random state afterwards."""
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _layout_for(name: str, options: dict[str, Any], schema: Schema) -> FeatureLayout:
    neg_hist = _library_of(name).neg_hist(options)
    return feature_layout(schema, int(options["embedding_dim"]), neg_hist=neg_hist)


def build_library_net(model_cfg: DictConfig, schema: Schema, device: torch.device | str = "cpu") -> BaseModel:
    """The same model as the library's own class, unchanged (sigmoid output, host-side pooling, packed DIEN),
    except xDeepFM's CIN fix without which it cannot run. Weights are whatever the library draws: load them
    from a built model to compare the two (tests/test_baselines.py)."""
    name, options = model_options(model_cfg)
    device = str(device)
    library_cls, _, args, kwargs = _library_arguments(name, options, _layout_for(name, options, schema), 0, device)
    with _seeded(0, torch.device(device)):
        net = library_cls(*args, **kwargs)
    if library_cls is xDeepFM:
        fields = [c for c in args[1] if isinstance(c, (SparseFeat, VarLenSparseFeat))]
        fix_xdeepfm_cin(net, len(fields), kwargs["cin_layer_size"], kwargs["cin_activation"],
                        kwargs["cin_split_half"], device)
    return net


def build_deepctr_model(model_cfg: DictConfig, schema: Schema, seed: int, device: torch.device) -> DeepCTRModel:
    """Build baseline `model_cfg.name` for `schema` on `device`, initialised from `seed` alone."""
    name, options = model_options(model_cfg)
    check_float32_ids(schema)
    device = torch.device(device)
    layout = _layout_for(name, options, schema)
    _, capturable_cls, args, kwargs = _library_arguments(name, options, layout, seed, str(device))
    with _seeded(seed, device):
        net = capturable_cls(*args, **kwargs)
        # Every MLP, attention MLPs included, starts from N(0, init_std): the library passes init_std to some
        # DNNs only (DIN's and the attention units' keep 1e-4).
        for module in net.modules():
            if isinstance(module, DNN):
                for linear in module.linears:
                    nn.init.normal_(linear.weight, mean=0.0, std=float(options["init_std"]))
    for module in net.modules():
        if type(module) is Dice:
            module.__class__ = _Dice  # same state, no transposes
        elif type(module) is LocalActivationUnit:
            module.__class__ = _LocalActivationUnit  # same state, no [B, T, 4E] input
    net.out = _LogitLayer(net.out.bias)
    net.regularization_weight = []  # the trainer's L2 is the only regularisation
    return DeepCTRModel(name, net, input_plan(net.feature_index, layout.sources)).to(device)


def build(model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int,
          device: torch.device) -> DeepCTRModel:
    """The registry's builder (models/registry.py) for every DeepCTR-Torch baseline."""
    return build_deepctr_model(model_cfg, schema, seed, device)
