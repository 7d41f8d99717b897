"""Did the model learn? Per-epoch diagnostics on a fixed probe batch, for every model.

A benchmark cell whose model never left the base rate says nothing about the model's idea, only about the
protocol. So every run records, per epoch (MLflow metrics with `step=epoch`, prefix `diag_`):
- `diag_train_loss_ratio`: the epoch's mean training loss over the base-rate entropy of the training labels
  (the loss of a constant prediction at the positive rate); 1.0 means nothing was learned;
- `diag_mlp_alive_units`: the share of the prediction MLP's ReLU units that are positive on at least one probe
  example (a dead unit is zero on every row and gets no gradient), and `diag_mlp_active_share`, the share of
  positive ReLU outputs over all units and probe rows;
- MIAN only: `diag_ibim_entropy` (the IBIM weights' entropy over log(history length): 1.0 is uniform),
  `diag_ibim_max_weight` (the largest weight, mean over rows with at least two behaviours), `diag_gim_spread`
  (the GIM weights' max - min per row, mean), and `diag_ln_gain_<layer>` (the RMS of each LayerNorm's gain,
  1.0 at initialisation: L2 inside Adam pulls it towards zero).
A run whose final training loss is within NOT_LEARNED_TOLERANCE of the base-rate entropy is tagged
`learned=false`, and the report marks the cells such runs enter.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NOT_LEARNED_TOLERANCE = 0.005  # final train loss >= (1 - 0.5%) of the base-rate entropy: not learned
PROBE_ROWS = 1024


def binary_entropy(p: float) -> float:
    """-p log p - (1 - p) log(1 - p): the mean BCE of predicting the rate p for every row (0 at p = 0 or 1)."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def base_rate_entropy(labels: Tensor) -> float:
    """The loss of a constant prediction at the labels' positive rate."""
    return binary_entropy(float(labels.float().mean()))


def learned(final_train_loss: float, base_entropy: float) -> bool:
    """False when the training loss ended within NOT_LEARNED_TOLERANCE of the base-rate entropy."""
    return final_train_loss < (1.0 - NOT_LEARNED_TOLERANCE) * base_entropy


def prediction_mlp(model: nn.Module) -> nn.Module | None:
    """The MLP that makes the prediction: MIAN's `mlp`, a DeepCTR-Torch model's `dnn` (None for LR)."""
    mlp = getattr(model, "mlp", None)
    if mlp is None:
        mlp = getattr(getattr(model, "net", model), "dnn", None)
    return mlp if isinstance(mlp, nn.Module) else None


def probe_index(n: int, seed: int, device: torch.device) -> Tensor:
    """A fixed random set of PROBE_ROWS training rows (all of them when fewer), the same every epoch."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[: min(PROBE_ROWS, n)].sort().values.to(device)


@torch.no_grad()
def diagnose(model: nn.Module, probe: dict[str, Tensor]) -> dict[str, float]:
    """The `diag_*` metrics (module docstring) of `model` on the probe batch, in eval mode; leaves the model's
    training mode as it was."""
    was_training = model.training
    model.eval()
    outputs: list[Tensor] = []
    mlp = prediction_mlp(model)
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().flatten(0, -2)))
             for m in (mlp.modules() if mlp is not None else []) if isinstance(m, nn.ReLU)]
    try:
        explain = getattr(model, "explain", None)
        out = explain(probe) if explain is not None else {"logits": model(probe)}
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    metrics: dict[str, float] = {}
    if outputs:
        positive = torch.cat([o > 0 for o in outputs], dim=-1)  # [rows, units of every ReLU layer]
        metrics["diag_mlp_alive_units"] = float(positive.any(0).float().mean())
        metrics["diag_mlp_active_share"] = float(positive.float().mean())
    if "ibim" in out:
        weights, lengths = out["ibim"].float(), probe["hist_len"]
        rows = lengths >= 2
        if bool(rows.any()):
            w = weights[rows]
            entropy = -(w * torch.log(w.clamp_min(1e-12))).sum(-1) / torch.log(lengths[rows].float())
            metrics["diag_ibim_entropy"] = float(entropy.mean())
            metrics["diag_ibim_max_weight"] = float(w.max(-1).values.mean())
    if "gim" in out:
        gim = out["gim"].float()
        metrics["diag_gim_spread"] = float((gim.max(-1).values - gim.min(-1).values).mean())
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and module.weight is not None:
            metrics[f"diag_ln_gain_{name.replace('.', '_')}"] = float(module.weight.float().pow(2).mean().sqrt())
    return metrics
