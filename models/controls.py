"""The controls of the calibrated effects benchmark (benchmark/data/calibrated.py): small models of the suite's own,
each logistic regression plus ONE mechanism, built to learn one form of planted effect. A mechanism cell of
results/effects.md is read only when its form's positive control captures most of the planted lift and the
negative controls (LR, the knock-out data) capture next to none of it (benchmark/report/effects/mechanisms.py: the gate).

Every control has the same first-order part, `FirstOrder`: a bias and one weight per id of every candidate, user
and context field, plus the mean over the history of one weight per behaviour id (what DeepCTR-Torch's LR sees).
On top of it, with e the fields' embeddings (the candidate's and the behaviours' fields concatenated, Di wide):
    fm            the pairs of an FM through the candidate, <e_candidate, e_f> for every other field f (the
                  history mean-pooled per item field): exact for the `share` and `bilinear` forms. Not every pair
                  of a full FM: with one embedding per field value shared by all its pairs, a full FM cannot set
                  age x item without setting age x occupation too: on the bilinear user effect (data seed 0,
                  training seed 0) a full FM captured 0.65 of the lift, this 0.89
    max_sim       w * max_t <e_candidate, e_h_t>: the `max` form
    product_attn  v . (e_candidate * sum_t alpha_t e_h_t), alpha = softmax_t <P e_candidate, e_h_t>: P = 0 (its
                  start) pools by the mean (`share`), a large P approaches the max; the `softmax` form's control
    tensor_fact   sum over pairs j < k of user fields, and of context fields, of sum_f <e_j * e_k, e_candidate_f>:
                  the `threeway` form (a third-order factorisation machine restricted to field x field x item)
Which item fields a mechanism reads (`id_embeddings`): all of them (max_sim, product_attn), or the attributes only,
every item field but the id (fm, tensor_fact). Through the item id, an FM's or a three-way product's pairs
memorise each item's ~60 training samples at tier S (training loss falling far below the oracle's while the
validation AUC stops rising at the third or fourth epoch: FM captured 0.52 of the bilinear user effect's lift,
tensor_fact 0.63 of the three-way one's); per category they learn it. The first-order part keeps every field.
Weights and embeddings start from a truncated normal of std `init_std` (0.02 as MIAN's; 0.1 for tensor_fact, whose
three-way product would otherwise start too flat to converge in the shared protocol's epochs: the schema says
why); the scalars that scale a mechanism (w, v) start at 1 so that the mechanism is on from the first step.
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from benchmark.data.schema import Field, Schema
from models.registry import names


def _tables(fields: tuple[Field, ...], dim: int) -> nn.ModuleList:
    return nn.ModuleList(nn.Embedding(f.vocab_size, dim, padding_idx=0) for f in fields)


def history_mask(batch: dict[str, Tensor]) -> Tensor:
    """[B, T] bool: the valid behaviours."""
    hist = batch["hist"]
    return torch.arange(hist.shape[1], device=hist.device)[None, :] < batch["hist_len"][:, None]


class FirstOrder(nn.Module):
    """LR over the shared batch: bias + a weight per candidate, user and context id + the history's mean weight."""

    def __init__(self, schema: Schema) -> None:
        super().__init__()
        self.item = _tables(schema.item_fields, 1)
        self.hist = _tables(schema.item_fields, 1)
        self.user = _tables(schema.user_fields, 1)
        self.context = _tables(schema.context_fields, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        out = self.bias.expand(batch["item"].shape[0])
        for key, tables in (("item", self.item), ("user", self.user), ("context", self.context)):
            for j, table in enumerate(tables):
                out = out + table(batch[key][:, j]).squeeze(-1)
        fmask = mask.to(out.dtype)
        count = fmask.sum(1).clamp_min(1.0)
        for f, table in enumerate(self.hist):
            out = out + (table(batch["hist"][..., f]).squeeze(-1) * fmask).sum(1) / count
        return out


class Control(nn.Module):
    """What every control shares: the first-order part and the embedding tables (candidate and behaviours share
    the item fields' tables, as in every model of the suite)."""

    inputs = ("item", "hist", "hist_len", "user", "context")  # the batch keys it reads (benchmark/batches.py)

    def __init__(self, schema: Schema, embedding_dim: int, init_std: float, id_embeddings: bool = True) -> None:
        super().__init__()
        self.init_std = init_std
        self.first_order = FirstOrder(schema)
        # the item fields the mechanism reads: all, or the attributes only (every field but the id, field 0)
        first = 0 if id_embeddings or len(schema.item_fields) == 1 else 1
        self.item_field_ids = tuple(range(first, len(schema.item_fields)))
        self.item_embeddings = _tables(schema.item_fields[first:], embedding_dim)
        self.user_embeddings = _tables(schema.user_fields, embedding_dim)
        self.context_embeddings = _tables(schema.context_fields, embedding_dim)

    def reset_parameters(self) -> None:
        """Truncated normal (std init_std, cut at 2 std) for weights and embeddings, padding rows zero, biases
        zero; `scale`-named parameters (a mechanism's w or v) at 1."""
        std = self.init_std
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.split(".")[-1].startswith("scale"):
                nn.init.ones_(p)
            elif name.split(".")[-1] != "query":
                nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)
        for m in self.modules():
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def embed_items(self, ids: Tensor) -> Tensor:
        """[..., Fi] ids -> [..., F, d], the F item fields the mechanism reads."""
        return torch.stack([table(ids[..., f]) for f, table in zip(self.item_field_ids, self.item_embeddings)],
                           dim=-2)

    @staticmethod
    def embed_fields(ids: Tensor, tables: nn.ModuleList) -> Tensor:
        """[B, J] ids -> [B, J, d]."""
        return torch.stack([table(ids[:, j]) for j, table in enumerate(tables)], dim=1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        mask = history_mask(batch)
        return self.first_order(batch, mask) + self.mechanism(batch, mask)

    def mechanism(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        raise NotImplementedError


class FM(Control):
    """The FM pairs through the candidate: <e_candidate, e_f> for every other field f (the history's mean per item
    field, the user fields, the context fields), e_candidate the sum of the candidate's item fields."""

    def __init__(self, schema: Schema, embedding_dim: int, init_std: float, id_embeddings: bool = True) -> None:
        super().__init__(schema, embedding_dim, init_std, id_embeddings)
        self.reset_parameters()

    def mechanism(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        fmask = mask.to(self.item_embeddings[0].weight.dtype)[..., None, None]
        pooled = (self.embed_items(batch["hist"]) * fmask).sum(1) / fmask.sum(1).clamp_min(1.0)  # [B, Fi, d]
        others = torch.cat([pooled, self.embed_fields(batch["user"], self.user_embeddings),
                            self.embed_fields(batch["context"], self.context_embeddings)], dim=1)  # [B, F, d]
        return (self.embed_items(batch["item"]).sum(1) * others.sum(1)).sum(-1)


class MaxSim(Control):
    """w * max_t <e_candidate, e_h_t> (0 for an empty history)."""

    def __init__(self, schema: Schema, embedding_dim: int, init_std: float, id_embeddings: bool = True) -> None:
        super().__init__(schema, embedding_dim, init_std, id_embeddings)
        self.scale = nn.Parameter(torch.ones(1))
        self.reset_parameters()

    def mechanism(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        e_c = self.embed_items(batch["item"]).flatten(-2)  # [B, Di]
        e_h = self.embed_items(batch["hist"]).flatten(-2)  # [B, T, Di]
        sims = torch.einsum("bd,btd->bt", e_c, e_h).masked_fill(~mask, float("-inf"))
        best = sims.amax(1)
        return self.scale * torch.where(mask.any(1), best, torch.zeros_like(best))


class ProductAttn(Control):
    """v . (e_candidate * sum_t alpha_t e_h_t), alpha_t = softmax_t <P e_candidate, e_h_t>; P starts at 0 (the
    mean), v at 1 (the inner product of the candidate and the pooled history)."""

    def __init__(self, schema: Schema, embedding_dim: int, init_std: float, id_embeddings: bool = True) -> None:
        super().__init__(schema, embedding_dim, init_std, id_embeddings)
        width = embedding_dim * len(self.item_field_ids)
        self.query = nn.Parameter(torch.zeros(width, width))
        self.scale = nn.Parameter(torch.ones(width))
        self.reset_parameters()

    def mechanism(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        e_c = self.embed_items(batch["item"]).flatten(-2)  # [B, Di]
        e_h = self.embed_items(batch["hist"]).flatten(-2)  # [B, T, Di]
        scores = torch.einsum("bd,de,bte->bt", e_c, self.query, e_h).masked_fill(~mask, float("-inf"))
        scores = scores - scores.detach().amax(1, keepdim=True).nan_to_num(neginf=0.0)
        weights = torch.exp(scores) * mask
        alpha = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)  # all zeros for an empty history
        pooled = (alpha[..., None] * e_h).sum(1)
        return (e_c * pooled) @ self.scale


class TensorFact(Control):
    """sum over pairs j < k of user fields, and of context fields, of sum_f <e_j * e_k, e_candidate_f>, f over the
    candidate's attribute fields (all item fields but the id, field 0; the id alone where there is no other)."""

    def __init__(self, schema: Schema, embedding_dim: int, init_std: float, id_embeddings: bool = True) -> None:
        super().__init__(schema, embedding_dim, init_std, id_embeddings)
        self.reset_parameters()

    @staticmethod
    def _pairs_product(e: Tensor) -> Tensor:
        """[B, J, d] -> [B, d]: sum_{j<k} e_j * e_k = ((sum e)^2 - sum e^2) / 2, element-wise."""
        return 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1))

    def mechanism(self, batch: dict[str, Tensor], mask: Tensor) -> Tensor:
        item = self.embed_items(batch["item"]).sum(1)  # [B, d]
        pairs = (self._pairs_product(self.embed_fields(batch["user"], self.user_embeddings))
                 + self._pairs_product(self.embed_fields(batch["context"], self.context_embeddings)))
        return (pairs * item).sum(-1)


CONTROLS: dict[str, type[Control]] = {"fm": FM, "max_sim": MaxSim, "product_attn": ProductAttn,
                                      "tensor_fact": TensorFact}
assert tuple(CONTROLS) == names("control"), "models/registry.py and CONTROLS list different controls"


def build_control(model_cfg: DictConfig, schema: Schema) -> Control:
    return CONTROLS[str(model_cfg.name)](schema, int(model_cfg.embedding_dim), float(model_cfg.init_std),
                                         bool(model_cfg.id_embeddings))


def build(model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int,
          device: torch.device) -> Control:
    """The registry's builder (models/registry.py); the seed is set by the caller."""
    return build_control(model_cfg, schema).to(device)
