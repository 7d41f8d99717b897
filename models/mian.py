"""Native PyTorch MIAN (Zhang et al., WSDM 2021), Section 3.2.

Layout of one forward pass, with d = embedding_dim and Di = d * (number of item fields):
    e_i [B, Di]  candidate item;  e_b [B, T, Di] behaviours;  e_u [B, J, d] user;  e_c [B, K, d] context
    IBIM: Transformer block (pre_ln | post_ln | none) over e_b -> h [B, T, Di];
          V_t = [e_i ; h_t], masked attention pooling -> R_ibim [B, 2 Di]
    IUIM: V_j = [e_i ; e_u^j], per-field scores -> R_iuim [B, Di + d]
    ICIM: V_k = [e_i ; e_c^k], per-field scores -> R_icim [B, Di + d]
    GIM:  r = [e_i, e_c, e_b (masked mean), e_u, R_ibim, R_iuim, R_icim], one softmax weight per r_l
    MLP:  ReLU layers (32, 8) + dropout, then one logit.

Choices the paper leaves open (docs/mian.md, "Open readings") and how they are made here:
- The attention score (Eq. 8 for IBIM, Eq. 10/13 for IUIM/ICIM) is one of SCORE_READINGS, chosen per module by
  `ibim_score` and `field_score` (`AttentionScore`). The default, `additive`, is the paper read literally:
  tanh(V W + b) with W shared across time steps in IBIM and one W_j per field in IUIM/ICIM. Under it the order of
  IBIM's weights does not depend on the candidate (it adds the same e_i term at every step); the other readings
  score the candidate against each behaviour.
- e_b, the behaviour sequence as GIM sees it, is pooled by `e_b_pool`: a masked mean (default) or the sum
  (as DIN/DIEN feed it, keeping the history length).
- Positions (`positional`): `learned` indexes them from the oldest behaviour, `learned_recent` from the newest
  (so the most recent behaviour always has the same position embedding), `none` adds none.
- A fully masked softmax (empty history) gives all-zero weights, so R_ibim = 0 and no NaN appears.
- Padded positions are zeroed before the encoder and masked as keys, so padded ids never reach the output.
- GIM `combine="concat"` (default) scales each r_l by its weight and concatenates (Eq. 15 cannot sum vectors
  of different widths literally); `combine="project"` first projects every r_l to `gim_dim` and sums.
- Ablation `gim=False` feeds the plain concatenation of r to the MLP.
- The readout (`readout`): what IBIM, IUIM and ICIM hand on. `concat` (default) is Eq. 6/9/11/13 read literally,
  R = sum_t alpha_t [e_i ; h_t] = [e_i ; pooled], so the candidate multiplies nothing before the MLP; `product`
  also hands on the element-wise product of the candidate and what it attends to: e_i * sum_t alpha_t h_t in
  IBIM, (P e_i) * sum_j alpha_j e^j in IUIM/ICIM with P a bias-free projection of e_i to the field width d.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from benchmark.data.schema import Schema
from models import options as model_options
# Readings of the attention score (docs/mian.md); `per_position` needs ordered keys, so IBIM only.
from models.options import (E_B_POOLS, ENCODERS, FIELD_SCORE_READINGS, GIM_COMBINES, POSITIONALS, READOUTS,
                            SCORE_READINGS)


def _config_fields() -> list[tuple[str, Any, Any]]:
    """MIANConfig's fields: the options of model=mian, then the ablation's switches (a disabled module is not
    built at all; `field_inputs=False`, ablation no_iuim_icim_strict, keeps e_u and e_c out of GIM), each with its
    schema's default. `embedding_dim` comes first and has none: it is the config's root value."""
    fields: list[tuple[str, Any, Any]] = [("embedding_dim", int, dataclasses.field())]
    for schema in (model_options.MIAN, model_options.Ablation):
        for f in dataclasses.fields(schema):
            if f.name in ("name", "embedding_dim"):
                continue
            default = f.default if f.default_factory is dataclasses.MISSING else tuple(f.default_factory())
            fields.append((f.name, f.type, dataclasses.field(default=default)))
    return fields


def _from_config(cls: type, model_cfg: DictConfig, ablation_cfg: DictConfig | None = None) -> Any:
    """The MIANConfig of a validated `model` (and `ablation`) config node."""
    options: dict[str, Any] = OmegaConf.to_container(model_cfg, resolve=True)  # type: ignore[assignment]
    options.pop("name")
    options["mlp_dims"] = tuple(options["mlp_dims"])
    if ablation_cfg is not None:
        options.update({f.name: bool(ablation_cfg[f.name]) for f in dataclasses.fields(model_options.Ablation)
                        if f.name != "name"})
    return cls(**options)


# What MIAN is built from. Its fields, defaults and allowed values are those of the schemas of model=mian and of
# the ablations (models/options.py: MIAN, Ablation), so they are defined once.
MIANConfig = dataclasses.make_dataclass("MIANConfig", _config_fields(), frozen=True,
                                        namespace={"from_config": classmethod(_from_config)})
MIANConfig.__module__ = __name__


def masked_softmax(scores: Tensor, mask: Tensor, bounded: bool = True) -> Tensor:
    """Softmax over the last dim restricted to `mask`; an all-masked row gives all zeros (not NaN).

    `bounded`: the scores come from tanh, so they lie in [-1, 1] and exp() cannot overflow; unbounded scores
    are shifted by their row maximum first.
    """
    if not bounded:
        scores = scores - scores.detach().amax(dim=-1, keepdim=True)
    weights = torch.exp(scores) * mask
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class AttentionScore(nn.Module):
    """The score of each key (a behaviour h_t, or a user/context field e^j) for the candidate e_i, before the
    softmax: [B, Dq] query, [B, N, Dk] keys -> [B, N]. One implementation for IBIM and IUIM/ICIM.

    Readings (docs/mian.md, "Open readings"), with V_n = [e_i ; k_n]:
    - additive:      tanh(V_n . w + b), one (w, b) shared by every key (`per_key=False`, IBIM) or one per key
                     (`per_key=True`, the W_j of IUIM/ICIM, Eq. 10). Candidate-blind ranking when shared.
    - per_position:  additive with one (w_t, b_t) per position t (Eq. 8's subscript t); IBIM only.
    - bahdanau:      v . tanh(W V_n + b), W a [score_dim, Dq + Dk] matrix (DIEN's public attention).
    - bilinear:      tanh(k_n M e_i + b) (IAN); M = I would score the inner product.
    - din:           an MLP (score_dim sigmoid units) over [q, k_n, q - k_n, q * k_n] (DIN's unit), q = e_i
                     projected to Dk when the widths differ (fields).
    `bounded` says whether the score lies in [-1, 1] (tanh), which `masked_softmax` uses.
    """

    def __init__(self, reading: str, query_dim: int, key_dim: int, num_keys: int, per_key: bool,
                 score_dim: int) -> None:
        super().__init__()
        self.reading = reading
        self.bounded = reading in ("additive", "per_position", "bilinear")
        if reading in ("additive", "per_position"):
            self.per_key = per_key or reading == "per_position"
            if self.per_key:
                self.weight = nn.Parameter(torch.empty(num_keys, query_dim + key_dim))
                self.bias = nn.Parameter(torch.zeros(num_keys))
            else:  # built as the nn.Linear it was before the readings, so the default model's seeded init is unchanged
                shared = nn.Linear(query_dim + key_dim, 1)
                self.weight, self.bias = shared.weight, shared.bias
        elif reading == "bahdanau":
            self.hidden = nn.Linear(query_dim + key_dim, score_dim)
            self.v = nn.Linear(score_dim, 1, bias=False)
        elif reading == "bilinear":
            self.bilinear = nn.Parameter(torch.empty(key_dim, query_dim))
            self.bias = nn.Parameter(torch.zeros(1))
        elif reading == "din":
            self.query_proj = nn.Linear(query_dim, key_dim, bias=False) if query_dim != key_dim else None
            self.mlp = nn.Sequential(nn.Linear(4 * key_dim, score_dim), nn.Sigmoid(), nn.Linear(score_dim, 1))
        else:
            raise ValueError(f"unknown score reading {reading!r}; known: {SCORE_READINGS}")

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        n = keys.shape[1]
        if self.reading == "bilinear":
            return torch.tanh(torch.einsum("bnk,kq,bq->bn", keys, self.bilinear, query) + self.bias)
        if self.reading == "din":
            q = (self.query_proj(query) if self.query_proj is not None else query)[:, None, :].expand(-1, n, -1)
            return self.mlp(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        v = torch.cat([query[:, None, :].expand(-1, n, -1), keys], dim=-1)  # V_n = [e_i ; k_n]
        if self.reading == "bahdanau":
            return self.v(torch.tanh(self.hidden(v))).squeeze(-1)
        if self.per_key:
            return torch.tanh((v * self.weight[:n]).sum(-1) + self.bias[:n])
        return torch.tanh(nn.functional.linear(v, self.weight, self.bias)).squeeze(-1)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with a key padding mask (PyTorch's fused scaled-dot-product kernel).

    Callers must leave at least one key unmasked per row (MIAN unmasks position 0 of an empty history),
    otherwise the softmax of that row is undefined. No dropout on the attention weights: on a CPU it costs
    more than the rest of the block, and the residual branches keep their dropout.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(
                f"model.num_heads={num_heads} must divide the behaviour width {dim} "
                "(embedding_dim x number of item fields)"
            )
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        b, t, dim = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.out(attended.transpose(1, 2).reshape(b, t, dim))


class TransformerBlock(nn.Module):
    """One Transformer block; `pre_ln` normalises before each sub-layer (MIAN), `post_ln` after (Vaswani).

    Pre-LN has no LayerNorm after the block: IBIM scores the residual stream itself (the paper's Eq. 3-5 show
    one LayerNorm, before the attention)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout: float, pre_ln: bool) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.attn = MultiHeadSelfAttention(dim, num_heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        if self.pre_ln:
            x = x + self.dropout(self.attn(self.norm1(x), key_mask))
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attn(x, key_mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class FieldAttention(nn.Module):
    """IUIM / ICIM: V_j = [e_i ; e^j], one score per field (`AttentionScore`; the paper's additive reading has one
    W_j per field, Eq. 10), softmax over the fields j, R = sum_j alpha_j V_j = [e_i ; sum_j alpha_j e^j].
    `product` readout: R also carries (P e_i) * sum_j alpha_j e^j, P projecting e_i to the field width."""

    def __init__(self, reading: str, num_fields: int, item_dim: int, field_dim: int, score_dim: int,
                 product: bool = False) -> None:
        super().__init__()
        self.score = AttentionScore(reading, item_dim, field_dim, num_fields, per_key=True, score_dim=score_dim)
        self.item_proj = nn.Linear(item_dim, field_dim, bias=False) if product else None
        self.out_dim = item_dim + field_dim * (2 if product else 1)

    def forward(self, e_item: Tensor, e_fields: Tensor) -> tuple[Tensor, Tensor]:
        v = torch.cat([e_item[:, None, :].expand(-1, e_fields.shape[1], -1), e_fields], dim=-1)  # [B, J, Di+d]
        alpha = torch.softmax(self.score(e_item, e_fields), dim=-1)  # [B, J]
        r = (alpha[..., None] * v).sum(1)  # [e_i ; sum_j alpha_j e^j], as the weights sum to one
        if self.item_proj is None:
            return r, alpha
        attended = r[:, e_item.shape[1]:]
        return torch.cat([r, self.item_proj(e_item) * attended], dim=-1), alpha


class GlobalInteraction(nn.Module):
    """GIM (Eq. 14-15): one scalar weight per representation r_l from softmax_l tanh(r_l W_l + b_l)."""

    def __init__(self, widths: list[int], combine: str, gim_dim: int) -> None:
        super().__init__()
        self.combine = combine
        if combine == "project":
            self.projections = nn.ModuleList(nn.Linear(w, gim_dim) for w in widths)
            score_widths = [gim_dim] * len(widths)
            self.out_dim = gim_dim
        else:
            self.projections = None
            score_widths = widths
            self.out_dim = sum(widths)
        self.scores = nn.ModuleList(nn.Linear(w, 1) for w in score_widths)

    def forward(self, reps: list[Tensor]) -> tuple[Tensor, Tensor]:
        if self.projections is not None:
            reps = [proj(r) for proj, r in zip(self.projections, reps)]
        scores = torch.cat([torch.tanh(score(r)) for score, r in zip(self.scores, reps)], dim=-1)  # [B, L]
        alpha = torch.softmax(scores, dim=-1)
        if self.combine == "project":
            return (alpha[..., None] * torch.stack(reps, dim=1)).sum(1), alpha
        return torch.cat([alpha[:, l : l + 1] * r for l, r in enumerate(reps)], dim=-1), alpha


class MIAN(nn.Module):
    """MIAN over the shared batch dict; `forward` returns logits [B], `explain` also the attention weights."""

    inputs = ("item", "hist", "hist_len", "user", "context")  # the batch keys it reads (benchmark/batches.py)

    def __init__(self, schema: Schema, config: MIANConfig) -> None:
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ValueError(f"model.encoder={config.encoder!r} is not one of {ENCODERS}")
        if config.gim_combine not in GIM_COMBINES:
            raise ValueError(f"model.gim_combine={config.gim_combine!r} is not one of {GIM_COMBINES}")
        if config.positional not in POSITIONALS:
            raise ValueError(f"model.positional={config.positional!r} is not one of {POSITIONALS}")
        if config.ibim_score not in SCORE_READINGS:
            raise ValueError(f"model.ibim_score={config.ibim_score!r} is not one of {SCORE_READINGS}")
        if config.field_score not in FIELD_SCORE_READINGS:
            raise ValueError(f"model.field_score={config.field_score!r} is not one of {FIELD_SCORE_READINGS} "
                             "(per_position is for IBIM's ordered behaviours only: use model.ibim_score=per_position)")
        if config.readout not in READOUTS:
            raise ValueError(f"model.readout={config.readout!r} is not one of {READOUTS}")
        if config.e_b_pool not in E_B_POOLS:
            raise ValueError(f"model.e_b_pool={config.e_b_pool!r} is not one of {E_B_POOLS}")
        if config.iuim and not schema.user_fields:
            raise ValueError("IUIM needs user fields, and this dataset has none: use ablation=no_iuim")
        if config.icim and not schema.context_fields:
            raise ValueError("ICIM needs context fields, and this dataset has none: use ablation=no_icim")
        self.config = config
        d = config.embedding_dim
        di = d * len(schema.item_fields)
        # Under no_iuim_icim_strict nothing reads the user and context fields, so their tables are not built.
        user_fields = schema.user_fields if config.iuim or config.field_inputs else ()
        context_fields = schema.context_fields if config.icim or config.field_inputs else ()
        self.item_embeddings = nn.ModuleList(nn.Embedding(f.vocab_size, d, padding_idx=0) for f in schema.item_fields)
        self.user_embeddings = nn.ModuleList(nn.Embedding(f.vocab_size, d, padding_idx=0) for f in user_fields)
        self.context_embeddings = nn.ModuleList(nn.Embedding(f.vocab_size, d, padding_idx=0) for f in context_fields)

        self.encoder: TransformerBlock | None = None
        self.positions: nn.Parameter | None = None
        if config.ibim:
            if config.encoder != "none":
                self.encoder = TransformerBlock(di, config.num_heads, config.ffn_dim, config.dropout,
                                                pre_ln=config.encoder == "pre_ln")
                if config.positional != "none":
                    self.positions = nn.Parameter(torch.empty(schema.max_len, di))
            self.ibim_score = AttentionScore(config.ibim_score, di, di, schema.max_len, per_key=False,
                                             score_dim=config.score_dim)
        product = config.readout == "product"
        self.iuim = (FieldAttention(config.field_score, len(schema.user_fields), di, d, config.score_dim, product)
                     if config.iuim else None)
        self.icim = (FieldAttention(config.field_score, len(schema.context_fields), di, d, config.score_dim, product)
                     if config.icim else None)

        # GIM inputs in the paper's order (Eq. 14), without the ablated modules.
        field_width = d if config.field_inputs else 0
        names_widths = [("e_i", di), ("e_c", field_width * len(schema.context_fields)), ("e_b", di),
                        ("e_u", field_width * len(schema.user_fields))]
        if config.ibim:
            names_widths.append(("R_ibim", (3 if product else 2) * di))
        if self.iuim is not None:
            names_widths.append(("R_iuim", self.iuim.out_dim))
        if self.icim is not None:
            names_widths.append(("R_icim", self.icim.out_dim))
        names_widths = [(n, w) for n, w in names_widths if w > 0]
        self.gim_names: list[str] = [n for n, _ in names_widths]
        widths = [w for _, w in names_widths]
        if config.gim:
            self.gim: GlobalInteraction | None = GlobalInteraction(widths, config.gim_combine, config.gim_dim)
            mlp_in = self.gim.out_dim
        else:
            self.gim = None
            mlp_in = sum(widths)

        layers: list[nn.Module] = []
        for width in config.mlp_dims:
            layers += [nn.Linear(mlp_in, width), nn.ReLU(), nn.Dropout(config.dropout)]
            mlp_in = width
        layers.append(nn.Linear(mlp_in, 1))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal (std 0.02, cut at 2 std) for weights and embeddings, zero biases (paper 4.3)."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if "norm" in name:
                continue  # LayerNorm keeps gamma = 1, beta = 0
            if name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)
        for table in [*self.item_embeddings, *self.user_embeddings, *self.context_embeddings]:
            with torch.no_grad():
                table.weight[0].zero_()

    def _embed_items(self, ids: Tensor) -> Tensor:
        """[..., Fi] ids -> [..., Fi * d], the item fields' embeddings concatenated."""
        return torch.cat([table(ids[..., f]) for f, table in enumerate(self.item_embeddings)], dim=-1)

    @staticmethod
    def _embed_fields(ids: Tensor, tables: nn.ModuleList) -> Tensor:
        """[B, J] ids -> [B, J, d]."""
        return torch.stack([table(ids[:, j]) for j, table in enumerate(tables)], dim=1)

    def _position_embeddings(self, hist_len: Tensor, t: int) -> Tensor:
        """[T, Di] (`learned`: position t counted from the oldest behaviour) or [B, T, Di] (`learned_recent`:
        counted back from the newest, so the last behaviour is always position 0). Pads are masked by the caller."""
        assert self.positions is not None
        if self.config.positional == "learned":
            return self.positions[None, :t]
        back = (hist_len[:, None] - 1 - torch.arange(t, device=hist_len.device)[None, :]).clamp_min(0)  # [B, T]
        return self.positions[back]

    def explain(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits plus every attention weight: `gim` [B, L] (names in `gim_names`), `ibim` [B, T],
        `iuim` [B, J], `icim` [B, K] (the ones whose module exists)."""
        out: dict[str, Tensor] = {}
        e_i = self._embed_items(batch["item"])
        hist = batch["hist"]
        mask = torch.arange(hist.shape[1], device=hist.device)[None, :] < batch["hist_len"][:, None]  # [B, T]
        fmask = mask[..., None].to(e_i.dtype)
        e_b = self._embed_items(hist) * fmask  # padded positions are exactly zero
        e_b_pooled = e_b.sum(1)
        if self.config.e_b_pool == "mean":
            e_b_pooled = e_b_pooled / fmask.sum(1).clamp_min(1.0)
        reps: dict[str, Tensor] = {"e_i": e_i, "e_b": e_b_pooled}
        if self.user_embeddings:
            e_u = self._embed_fields(batch["user"], self.user_embeddings)
            reps["e_u"] = e_u.flatten(1)
        if self.context_embeddings:
            e_c = self._embed_fields(batch["context"], self.context_embeddings)
            reps["e_c"] = e_c.flatten(1)

        if self.config.ibim:
            h = e_b
            if self.encoder is not None:
                if self.positions is not None:
                    h = h + self._position_embeddings(batch["hist_len"], h.shape[1]) * fmask
                # A query row with no valid key (empty history) may attend to the zeroed pads; those rows are
                # masked out of the pooling below, so whatever they hold never reaches the output.
                key_mask = mask.clone()
                key_mask[:, 0] = True
                h = self.encoder(h, key_mask) * fmask
            v = torch.cat([e_i[:, None, :].expand(-1, h.shape[1], -1), h], dim=-1)  # [B, T, 2 Di]
            alpha = masked_softmax(self.ibim_score(e_i, h), fmask.squeeze(-1), bounded=self.ibim_score.bounded)
            r_ibim = (alpha[..., None] * v).sum(1)  # [e_i ; sum_t alpha_t h_t] (zeros for an empty history)
            if self.config.readout == "product":
                r_ibim = torch.cat([r_ibim, e_i * r_ibim[:, e_i.shape[1]:]], dim=-1)
            reps["R_ibim"] = r_ibim
            out["ibim"] = alpha
        if self.iuim is not None:
            reps["R_iuim"], out["iuim"] = self.iuim(e_i, e_u)
        if self.icim is not None:
            reps["R_icim"], out["icim"] = self.icim(e_i, e_c)

        ordered = [reps[name] for name in self.gim_names]
        if self.gim is not None:
            pooled, out["gim"] = self.gim(ordered)
        else:
            pooled = torch.cat(ordered, dim=-1)
        out["logits"] = self.mlp(pooled).squeeze(-1)
        return out

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.explain(batch)["logits"]


def build(model_cfg: DictConfig, ablation_cfg: DictConfig | None, schema: Schema, seed: int,
          device: torch.device) -> MIAN:
    """The registry's builder (models/registry.py); the seed is set by the caller."""
    return MIAN(schema, MIANConfig.from_config(model_cfg, ablation_cfg)).to(device)
