"""The shared trainer: batching, regularisation, early stopping, determinism."""
from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.data import load_dataset
from benchmark.trainer import Trainer, dense_parameters, epoch_permutation
from conftest import TINY_SYNTHETIC
from models import build_model


def test_epoch_permutation_covers_every_example_with_static_batches() -> None:
    perm = epoch_permutation(10, 4, seed=3, epoch=1, device=torch.device("cpu"))
    assert len(perm) == 12  # 3 steps of 4: the last batch is filled from the start of the permutation
    assert set(perm.tolist()) == set(range(10))
    assert perm[10:].tolist() == perm[:2].tolist()
    assert torch.equal(perm, epoch_permutation(10, 4, seed=3, epoch=1, device=torch.device("cpu")))
    assert not torch.equal(perm, epoch_permutation(10, 4, seed=3, epoch=2, device=torch.device("cpu")))


def test_l2_applies_to_dense_parameters_only() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 1))
    params = dense_parameters(model)
    assert len(params) == 2 and all(p.dim() <= 2 and p.shape[0] == 1 for p in params)


def _fit(compose_cfg, *overrides: str):
    cfg = compose_cfg(*TINY_SYNTHETIC, *overrides)
    dataset = load_dataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, cfg.seed, torch.device("cpu"))
    epochs: list[int] = []
    result = Trainer(model, dataset, cfg.trainer, cfg.seed, torch.device("cpu")).fit(
        on_epoch_end=lambda e, rec: epochs.append(e))
    return result, epochs


def test_fit_is_deterministic_for_a_seed_and_reports_every_epoch(compose_cfg) -> None:
    first, epochs = _fit(compose_cfg, "trainer.max_epochs=2", "trainer.patience=5")
    second, _ = _fit(compose_cfg, "trainer.max_epochs=2", "trainer.patience=5")
    assert epochs == [1, 2]
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in second.history]
    assert first.test == second.test
    assert all(math.isfinite(v) for v in first.test.values())
    assert len(first.epoch_times) == 2 and all(t > 0 for t in first.epoch_times)


def test_early_stopping_restores_the_best_epoch(compose_cfg) -> None:
    result, epochs = _fit(compose_cfg, "trainer.max_epochs=6", "trainer.patience=1", "trainer.lr=0.05")
    best = max(range(len(result.history)), key=lambda i: result.history[i]["val_auc"]) + 1
    assert result.best_epoch == best
    assert result.best_val["auc"] == result.history[best - 1]["val_auc"]
    if len(epochs) < 6:  # stopped early: exactly `patience` epochs after the best one
        assert epochs[-1] == best + 1
