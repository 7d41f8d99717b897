"""The training step: graphed and eager compute the same thing, no host synchronisation, graceful fallback.

The CUDA tests skip where there is no GPU (benchmark/gpu_check.sh runs them on one); the CPU tests check the
step logic every CUDA run relies on: the loss accumulator, the step count, L2 through weight_decay.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from benchmark.bench import EQUIVALENCE_RTOL, graph_equivalence, synthetic_rows, with_train_rows
from benchmark.data import load_dataset
from benchmark.trainer import Trainer, epoch_permutation
from conftest import TINY_SYNTHETIC
from models import build_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _trainer(compose_cfg, device: torch.device, *overrides: str, model: nn.Module | None = None) -> Trainer:
    cfg = compose_cfg(*TINY_SYNTHETIC, *overrides)
    dataset = load_dataset(cfg.dataset)
    torch.manual_seed(cfg.seed)
    if model is None:
        model = build_model(cfg.model, cfg.ablation, dataset.schema, cfg.seed, device)
    return Trainer(model.to(device), dataset, cfg.trainer, cfg.seed, device)


class _Logistic(nn.Module):
    """A minimal model over the shared batch: one embedding and one linear layer."""

    graph_capturable = True

    def __init__(self, sync: bool = False) -> None:
        super().__init__()
        self.sync = sync
        self.embedding = nn.Embedding(1000, 4)
        self.linear = nn.Linear(4, 1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        x = self.embedding(batch["item"][:, 0])
        if self.sync:
            x = x * float(x.sum().item() != 0)  # a host synchronisation: cannot be captured
        return self.linear(x).squeeze(-1)


# ---- CPU: the step logic ----------------------------------------------------------------------------------------
def test_epoch_loss_is_the_mean_of_the_step_losses_at_pre_step_weights(compose_cfg) -> None:
    device = torch.device("cpu")
    trainer = _trainer(compose_cfg, device, "model.dropout=0.0", "trainer.batch_size=32")
    twin = _trainer(compose_cfg, device, "model.dropout=0.0", "trainer.batch_size=32")
    perm = epoch_permutation(twin.n_train, twin.batch_size, twin.seed, 1, device)
    expected = []
    for index in perm.view(twin.steps_per_epoch, twin.batch_size):
        batch = twin.data["train"].batch(index)
        with torch.no_grad():
            expected.append(nn.functional.binary_cross_entropy_with_logits(twin.model(batch), batch["label"]).item())
        twin._step(index)
    loss = trainer.train_epoch(1, progress=False)
    assert trainer.steps_run == trainer.steps_per_epoch == len(expected) > 1
    assert math.isclose(loss, sum(expected) / len(expected), rel_tol=1e-5)
    trainer.train_epoch(2, progress=False)
    assert trainer.steps_run == 2 * trainer.steps_per_epoch


def test_l2_through_weight_decay_is_the_l2_loss_term(compose_cfg) -> None:
    """Adam's weight_decay = 2 * l2 on the dense parameters takes the same step as l2 * sum ||w||^2 in the loss."""
    device = torch.device("cpu")
    trainer = _trainer(compose_cfg, device, "model.dropout=0.0", "trainer.l2=0.05")
    reference = _trainer(compose_cfg, device, "model.dropout=0.0", "trainer.l2=0.05")
    optimizer = torch.optim.Adam(reference.model.parameters(), lr=float(reference.cfg.lr))
    index = torch.arange(trainer.batch_size) % trainer.n_train
    for _ in range(3):
        trainer._step(index)
        batch = reference.data["train"].batch(index)
        loss = nn.functional.binary_cross_entropy_with_logits(reference.model(batch), batch["label"])
        loss = loss + 0.05 * sum(p.pow(2).sum() for p in reference.dense_params)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for (name, p), q in zip(trainer.model.named_parameters(), reference.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_no_graph_on_a_cpu_and_the_reason_when_one_was_asked_for(compose_cfg, capsys) -> None:
    device = torch.device("cpu")
    auto = _trainer(compose_cfg, device)
    assert auto.step_mode == "eager" and auto.graph_reason == ""
    forced = _trainer(compose_cfg, device, "trainer.cuda_graph=true")
    assert forced.step_mode == "eager" and "needs CUDA" in forced.graph_reason
    assert "runs eager" in capsys.readouterr().err


# ---- CUDA: graphed == eager, no host sync, fallback ------------------------------------------------------------
@cuda
@pytest.mark.parametrize("model", ["mian", "din", "dien", "xdeepfm"])
def test_graphed_and_eager_steps_give_the_same_losses(model: str) -> None:
    device = torch.device("cuda")
    losses = graph_equivalence(model, synthetic_rows(128), device, batch_size=128)
    assert list(losses) == ["eager", "graph"], losses.keys()
    assert len(set(losses["eager"])) > 1  # the weights moved: the comparison covers the optimiser too
    torch.testing.assert_close(torch.tensor(losses["graph"]), torch.tensor(losses["eager"]), rtol=EQUIVALENCE_RTOL,
                               atol=1e-6)


@cuda
def test_graphed_fit_with_evaluation_between_epochs_matches_eager(compose_cfg) -> None:
    device = torch.device("cuda")
    results = {}
    for mode in ("false", "true"):
        trainer = _trainer(compose_cfg, device, "model.dropout=0.0", f"trainer.cuda_graph={mode}",
                           "trainer.max_epochs=3", "trainer.patience=3")
        assert trainer.step_mode == ("cuda_graph" if mode == "true" else "eager")
        results[mode] = trainer.fit()
    eager, graphed = results["false"], results["true"]
    for key in ("train_loss", "val_auc"):
        torch.testing.assert_close(torch.tensor([h[key] for h in graphed.history]),
                                   torch.tensor([h[key] for h in eager.history]), rtol=1e-3, atol=1e-5)


@cuda
def test_the_eager_step_and_the_replay_never_synchronise_with_the_host(compose_cfg) -> None:
    device = torch.device("cuda")
    for mode in ("false", "true"):
        trainer = _trainer(compose_cfg, device, f"trainer.cuda_graph={mode}")
        trainer.train_epoch(1, progress=False)  # warm-up (and capture)
        index = torch.arange(trainer.batch_size, device=device) % trainer.n_train
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            if trainer._graph is not None:
                trainer._static_index.copy_(index)
                trainer._graph.replay()
            else:
                trainer._step(index)
        finally:
            torch.cuda.set_sync_debug_mode(previous)
        torch.cuda.synchronize()


@cuda
def test_restoring_weights_keeps_the_graph_pointers(compose_cfg) -> None:
    trainer = _trainer(compose_cfg, torch.device("cuda"), "trainer.cuda_graph=true")
    trainer.train_epoch(1, progress=False)
    assert trainer._graph is not None
    pointers = [p.data_ptr() for p in trainer.model.parameters()]
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train_epoch(2, progress=False)
    trainer.model.load_state_dict(saved)
    assert [p.data_ptr() for p in trainer.model.parameters()] == pointers
    trainer.train_epoch(3, progress=False)  # replays on the restored weights


@cuda
@pytest.mark.parametrize("sync, capturable", [(True, True), (False, False)])
def test_an_uncapturable_model_falls_back_to_eager_with_a_reason(compose_cfg, capsys, sync: bool,
                                                                  capturable: bool) -> None:
    model = _Logistic(sync=sync)
    model.graph_capturable = capturable
    trainer = _trainer(compose_cfg, torch.device("cuda"), "trainer.cuda_graph=true", model=model)
    assert trainer.step_mode == "eager" and trainer.graph_reason
    assert "runs eager" in capsys.readouterr().err
    assert math.isfinite(trainer.train_epoch(1, progress=False))


class _FailsUnderCapture(_Logistic):
    """Passes the host-sync probe (run outside capture) but breaks the capture itself, as a model may that
    synchronises in a way the sync debug mode does not see."""

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        if torch.cuda.is_current_stream_capturing():
            torch.cuda.synchronize()  # illegal while capturing: the capture fails
        return nn.functional.dropout(super().forward(batch), 0.2, self.training)


@cuda
def test_a_failed_capture_falls_back_to_eager_and_random_ops_still_work(compose_cfg, capsys) -> None:
    trainer = _trainer(compose_cfg, torch.device("cuda"), "trainer.cuda_graph=true", model=_FailsUnderCapture())
    assert math.isfinite(trainer.train_epoch(1, progress=False))  # dropout draws from the generator
    assert trainer.step_mode == "eager" and "capture failed" in trainer.graph_reason
    assert "runs eager" in capsys.readouterr().err
    # The next job in the same process (a sweep worker) builds and trains a model that draws random numbers.
    again = _trainer(compose_cfg, torch.device("cuda"), "trainer.cuda_graph=true", "model=dien")
    assert math.isfinite(again.train_epoch(1, progress=False)) and again.step_mode == "cuda_graph"


@cuda
def test_cuda_graph_false_given_as_a_yaml_bool_turns_the_graph_off(compose_cfg) -> None:
    trainer = _trainer(compose_cfg, torch.device("cuda"), "trainer.cuda_graph=false")
    assert trainer.cfg.cuda_graph is False and trainer.step_mode == "eager"


@cuda
def test_bf16_autocast_graphed_step_trains(compose_cfg) -> None:
    trainer = _trainer(compose_cfg, torch.device("cuda"), "trainer.amp=bf16", "trainer.cuda_graph=true")
    assert trainer.step_mode == "cuda_graph"
    losses = [trainer.train_epoch(epoch, progress=False) for epoch in (1, 2)]
    assert all(math.isfinite(v) for v in losses)


@pytest.mark.slow
def test_compiled_training_forward_matches_eager(compose_cfg) -> None:
    """trainer.compile=true (graphed on CUDA): the same losses as the plain eager step. Slow: compilation."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = with_train_rows(synthetic_rows(64), 64)
    losses = graph_equivalence("mian", dataset, device, batch_size=64, steps=4, overrides=("trainer.compile=true",))
    torch.testing.assert_close(torch.tensor(list(losses.values())[1]), torch.tensor(losses["eager"]),
                               rtol=EQUIVALENCE_RTOL, atol=1e-6)
