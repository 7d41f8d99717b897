"""Native PyTorch MIAN (Zhang et al., WSDM 2021), Section 3.2.

Layout of one forward pass, with d = embedding_dim and Di = d * (number of item fields):
    e_i [B, Di]  candidate item;  e_b [B, T, Di] behaviours;  e_u [B, J, d] user;  e_c [B, K, d] context
    IBIM: Transformer block (pre_ln | post_ln | none) over e_b -> h [B, T, Di];
          V_t = [e_i ; h_t], masked attention pooling -> R_ibim [B, 2 Di]
    IUIM: V_j = [e_i ; e_u^j], per-field scores -> R_iuim [B, Di + d]
    ICIM: V_k = [e_i ; e_c^k], per-field scores -> R_icim [B, Di + d]
    GIM:  r = [e_i, e_c, e_b (masked mean), e_u, R_ibim, R_iuim, R_icim], one softmax weight per r_l
    MLP:  ReLU layers (32, 8) + dropout, then one logit.

Choices the paper leaves open (DESIGN.md) and how they are made here:
- Attention scores tanh(V W + b) share W across time steps in IBIM; IUIM/ICIM have one W_j per field (Eq. 10).
- A fully masked softmax (empty history) gives all-zero weights, so R_ibim = 0 and no NaN appears.
- Padded positions are zeroed before the encoder and masked as keys, so padded ids never reach the output.
- GIM `combine="concat"` (default) scales each r_l by its weight and concatenates (Eq. 15 cannot sum vectors
  of different widths literally); `combine="project"` first projects every r_l to `gim_dim` and sums.
- Ablation `gim=False` feeds the plain concatenation of r to the MLP.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from benchmark.data.schema import Schema

ENCODERS = ("pre_ln", "post_ln", "none")
GIM_COMBINES = ("concat", "project")
POSITIONALS = ("learned", "none")


@dataclass(frozen=True)
class MIANConfig:
    embedding_dim: int = 16
    encoder: str = "pre_ln"
    num_heads: int = 8
    ffn_dim: int = 64
    positional: str = "learned"
    gim_combine: str = "concat"
    gim_dim: int = 32
    mlp_dims: tuple[int, ...] = (32, 8)
    dropout: float = 0.2
    init_std: float = 0.02
    # Ablation switches (Table 3): a disabled module is not built at all.
    ibim: bool = True
    iuim: bool = True
    icim: bool = True
    gim: bool = True


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim restricted to `mask`; an all-masked row gives all zeros (not NaN).

    Scores here come from tanh, so they lie in [-1, 1] and exp() cannot overflow.
    """
    weights = torch.exp(scores) * mask
    return weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)


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
    """IUIM / ICIM: V_j = [e_i ; e^j], score_j = tanh(V_j . W_j + b_j) with one W_j per field, softmax over j."""

    def __init__(self, num_fields: int, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_fields, width))
        self.bias = nn.Parameter(torch.zeros(num_fields))

    def forward(self, e_item: Tensor, e_fields: Tensor) -> tuple[Tensor, Tensor]:
        v = torch.cat([e_item[:, None, :].expand(-1, e_fields.shape[1], -1), e_fields], dim=-1)  # [B, J, Di+d]
        alpha = torch.softmax(torch.tanh((v * self.weight).sum(-1) + self.bias), dim=-1)  # [B, J]
        return (alpha[..., None] * v).sum(1), alpha


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

    def __init__(self, schema: Schema, config: MIANConfig) -> None:
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ValueError(f"model.encoder={config.encoder!r} is not one of {ENCODERS}")
        if config.gim_combine not in GIM_COMBINES:
            raise ValueError(f"model.gim_combine={config.gim_combine!r} is not one of {GIM_COMBINES}")
        if config.positional not in POSITIONALS:
            raise ValueError(f"model.positional={config.positional!r} is not one of {POSITIONALS}")
        if config.iuim and not schema.user_fields:
            raise ValueError("IUIM needs user fields, and this dataset has none: use ablation=no_iuim")
        if config.icim and not schema.context_fields:
            raise ValueError("ICIM needs context fields, and this dataset has none: use ablation=no_icim")
        self.config = config
        d = config.embedding_dim
        di = d * len(schema.item_fields)
        self.item_embeddings = nn.ModuleList(nn.Embedding(f.vocab_size, d, padding_idx=0) for f in schema.item_fields)
        self.user_embeddings = nn.ModuleList(nn.Embedding(f.vocab_size, d, padding_idx=0) for f in schema.user_fields)
        self.context_embeddings = nn.ModuleList(
            nn.Embedding(f.vocab_size, d, padding_idx=0) for f in schema.context_fields
        )

        self.encoder: TransformerBlock | None = None
        self.positions: nn.Parameter | None = None
        if config.ibim:
            if config.encoder != "none":
                self.encoder = TransformerBlock(di, config.num_heads, config.ffn_dim, config.dropout,
                                                pre_ln=config.encoder == "pre_ln")
                if config.positional == "learned":
                    self.positions = nn.Parameter(torch.empty(schema.max_len, di))
            self.ibim_score = nn.Linear(2 * di, 1)
        self.iuim = FieldAttention(len(schema.user_fields), di + d) if config.iuim else None
        self.icim = FieldAttention(len(schema.context_fields), di + d) if config.icim else None

        # GIM inputs in the paper's order (Eq. 14), without the ablated modules.
        names_widths = [("e_i", di), ("e_c", d * len(schema.context_fields)), ("e_b", di),
                        ("e_u", d * len(schema.user_fields))]
        if config.ibim:
            names_widths.append(("R_ibim", 2 * di))
        if config.iuim:
            names_widths.append(("R_iuim", di + d))
        if config.icim:
            names_widths.append(("R_icim", di + d))
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

    def explain(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits plus every attention weight: `gim` [B, L] (names in `gim_names`), `ibim` [B, T],
        `iuim` [B, J], `icim` [B, K] (the ones whose module exists)."""
        out: dict[str, Tensor] = {}
        e_i = self._embed_items(batch["item"])
        hist = batch["hist"]
        mask = torch.arange(hist.shape[1], device=hist.device)[None, :] < batch["hist_len"][:, None]  # [B, T]
        fmask = mask[..., None].to(e_i.dtype)
        e_b = self._embed_items(hist) * fmask  # padded positions are exactly zero
        e_b_pooled = e_b.sum(1) / fmask.sum(1).clamp_min(1.0)
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
                    h = h + self.positions[None, : h.shape[1]] * fmask
                # A query row with no valid key (empty history) may attend to the zeroed pads; those rows are
                # masked out of the pooling below, so whatever they hold never reaches the output.
                key_mask = mask.clone()
                key_mask[:, 0] = True
                h = self.encoder(h, key_mask) * fmask
            v = torch.cat([e_i[:, None, :].expand(-1, h.shape[1], -1), h], dim=-1)  # [B, T, 2 Di]
            alpha = masked_softmax(torch.tanh(self.ibim_score(v)).squeeze(-1), fmask.squeeze(-1))
            reps["R_ibim"] = (alpha[..., None] * v).sum(1)
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
