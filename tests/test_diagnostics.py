"""Did the model learn? The per-epoch diagnostics, the `learned` tag, and the regularisation knobs."""
from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY_SYNTHETIC
from mlflow.tracking import MlflowClient
from torch import nn

from benchmark.data import load_dataset
from benchmark.data.schema import Schema
from benchmark.diagnostics import base_rate_entropy, diagnose, learned, prediction_mlp
from benchmark.names import DEEPCTR_MODELS
from benchmark.run import protocol_of, run_job
from benchmark.trainer import Trainer, regularised_parameters
from models import build_model
from models.mian import MIAN, MIANConfig


def test_base_rate_entropy_is_the_loss_of_predicting_the_positive_rate() -> None:
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0])
    constant = nn.functional.binary_cross_entropy(torch.full((4,), 0.25), labels)
    assert base_rate_entropy(labels) == pytest.approx(float(constant))
    assert base_rate_entropy(torch.ones(3)) == 0.0


def test_a_loss_within_half_a_percent_of_the_base_rate_is_not_learned() -> None:
    assert not learned(0.693, 0.6931) and not learned(0.6931 * 0.996, 0.6931)
    assert learned(0.6931 * 0.99, 0.6931)
    assert not learned(math.nan, 0.6931)


def test_diagnose_reports_mian_attention_gim_layernorm_and_live_units(tiny_schema: Schema,
                                                                      tiny_batch: dict[str, torch.Tensor]) -> None:
    model = MIAN(tiny_schema, MIANConfig(embedding_dim=8)).train()
    metrics = diagnose(model, tiny_batch)
    assert model.training  # the mode is restored
    for key in ("diag_mlp_alive_units", "diag_mlp_active_share", "diag_ibim_entropy", "diag_ibim_max_weight",
                "diag_gim_spread", "diag_ln_gain_encoder_norm1", "diag_ln_gain_encoder_norm2"):
        assert key in metrics and math.isfinite(metrics[key])
    assert metrics["diag_ln_gain_encoder_norm1"] == pytest.approx(1.0)  # gamma = 1 at initialisation
    assert 0.0 < metrics["diag_ibim_entropy"] <= 1.0 + 1e-6
    lengths = tiny_batch["hist_len"][tiny_batch["hist_len"] >= 2].float()
    assert metrics["diag_ibim_max_weight"] >= float((1 / lengths).mean()) - 1e-6


def test_a_dead_prediction_mlp_is_seen(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]) -> None:
    model = MIAN(tiny_schema, MIANConfig(embedding_dim=8))  # MLP 32-8: 40 ReLU units
    assert diagnose(model, tiny_batch)["diag_mlp_alive_units"] > 0.5
    with torch.no_grad():
        model.mlp[0].bias[:16] = -100.0  # half of the first layer is off for every row
    assert diagnose(model, tiny_batch)["diag_mlp_alive_units"] <= (16 + 8) / 40
    with torch.no_grad():
        model.mlp[0].bias.fill_(-100.0)  # all of it: layer two sees zeros, and its biases are zero
    metrics = diagnose(model, tiny_batch)
    assert metrics["diag_mlp_alive_units"] == 0.0 and metrics["diag_mlp_active_share"] == 0.0


def test_the_prediction_mlp_of_baselines(compose_cfg) -> None:
    cfg = compose_cfg("model=deepfm", *TINY_SYNTHETIC)
    schema = load_dataset(cfg.dataset).schema
    deepfm = build_model(cfg.model, None, schema, 0, torch.device("cpu"))
    assert prediction_mlp(deepfm) is deepfm.net.dnn
    lr_cfg = compose_cfg("model=lr", *TINY_SYNTHETIC)
    assert prediction_mlp(build_model(lr_cfg.model, None, schema, 0, torch.device("cpu"))) is None


def test_a_job_logs_diagnostics_per_epoch_and_the_learned_tag(compose_cfg, tracking_uri: str) -> None:
    run_job(compose_cfg("model=din", *TINY_SYNTHETIC, f"tracking.uri={tracking_uri}"))
    client = MlflowClient(tracking_uri)
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    ratio = client.get_metric_history(run.info.run_id, "diag_train_loss_ratio")
    losses = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in ratio] == [1, 2] and len(client.get_metric_history(run.info.run_id,
                                                                               "diag_mlp_alive_units")) == 2
    base = run.data.metrics["train_base_entropy"]
    assert ratio[-1].value == pytest.approx(losses[-1].value / base)
    assert run.data.tags["learned"] == str(learned(losses[-1].value, base)).lower()
    assert run.data.tags["protocol"] == "shared max_epochs=2"


# ---------------------------------------------------------------------------------- the regularisation knobs
def test_kernels_scope_regularises_weight_matrices_only(tiny_schema: Schema) -> None:
    model = MIAN(tiny_schema, MIANConfig(embedding_dim=8))
    names = {id(p): n for n, p in model.named_parameters()}
    kernels = {names[id(p)] for p in regularised_parameters(model, "kernels")}
    dense = {names[id(p)] for p in regularised_parameters(model, "dense")}
    assert "encoder.attn.qkv.weight" in kernels and "mlp.0.weight" in kernels
    assert not any(n.endswith("bias") or "norm" in n or n == "positions" for n in kernels)
    assert {"positions", "encoder.norm1.weight", "mlp.0.bias"} <= dense and kernels < dense
    assert not any("embeddings" in n for n in dense)


@pytest.mark.parametrize(("form", "optimizer"), [("coupled", torch.optim.Adam), ("decoupled", torch.optim.AdamW)])
def test_weight_decay_form_picks_the_optimiser_and_its_coefficient(compose_cfg, form: str, optimizer: type) -> None:
    cfg = compose_cfg(*TINY_SYNTHETIC, f"trainer.weight_decay={form}", "trainer.l2=0.01")
    dataset = load_dataset(cfg.dataset)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, 0, torch.device("cpu"))
    trainer = Trainer(model, dataset, cfg.trainer, 0, torch.device("cpu"))
    assert type(trainer.optimizer) is optimizer
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.02, 0.0]


def test_decoupled_decay_shrinks_a_weight_without_data_gradient_by_lr_times_the_coefficient() -> None:
    """AdamW's decay is outside Adam's rescaling: lr * 2 * l2 per step; coupled L2 inside Adam moves the same
    weight by about lr per step, whatever l2 is (Adam normalises the gradient)."""
    for form, expected in (("decoupled", 1.0 - 1e-3 * 2e-3), ("coupled", 1.0 - 1e-3)):
        w = nn.Parameter(torch.ones(1))
        opt = (torch.optim.AdamW if form == "decoupled" else torch.optim.Adam)([w], lr=1e-3, weight_decay=2e-3)
        w.grad = torch.zeros(1)
        opt.step()
        assert float(w.detach()) == pytest.approx(expected, rel=1e-6)


def test_the_protocol_tag_names_each_knob_set_apart_from_the_protocol(compose_cfg) -> None:
    assert protocol_of(compose_cfg()) == "shared"
    cfg = compose_cfg("trainer.l2=1e-5", "trainer.l2_scope=kernels", "trainer.weight_decay=decoupled")
    assert protocol_of(cfg) == "shared l2=1e-05 l2_scope=kernels weight_decay=decoupled"


# ------------------------------------------------------------------------------------------ the library protocol
@pytest.mark.parametrize("name", DEEPCTR_MODELS)
def test_library_protocol_gives_each_baseline_the_librarys_settings(compose_cfg, name: str) -> None:
    from benchmark.config import validate_config

    cfg = compose_cfg("protocol=library", f"model={name}")
    validate_config(cfg)
    assert cfg.protocol_name == "library" and protocol_of(cfg) == "library"
    assert (cfg.model.dropout, cfg.model.init_std, cfg.trainer.batch_size, cfg.trainer.l2) == (0.0, 1e-4, 256, 0.0)
    assert cfg.trainer.l2_embedding == (1e-6 if name in ("din", "dien") else 1e-5)
    if name != "lr":
        assert len(cfg.model.dnn_hidden_units) == 2 and min(cfg.model.dnn_hidden_units) >= 128
    # a command-line value still wins over the protocol's, and the tag says so
    changed = compose_cfg("protocol=library", f"model={name}", "trainer.l2=1e-4")
    assert changed.trainer.l2 == 1e-4 and protocol_of(changed) == "library l2=0.0001"


def test_library_protocol_keeps_mian_at_the_papers_settings(compose_cfg) -> None:
    library, shared = compose_cfg("protocol=library"), compose_cfg()
    assert library.model == shared.model and library.trainer == shared.trainer
    assert protocol_of(library) == "library"


def test_embedding_l2_reaches_the_embedding_tables_only(compose_cfg) -> None:
    cfg = compose_cfg(*TINY_SYNTHETIC, "model=deepfm", "trainer.l2_embedding=1e-5", "trainer.l2=0")
    dataset = load_dataset(cfg.dataset)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, 0, torch.device("cpu"))
    trainer = Trainer(model, dataset, cfg.trainer, 0, torch.device("cpu"))
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decays = {id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert embeddings and all(decays[i] == 2e-5 for i in embeddings)
    assert all(d == 0.0 for i, d in decays.items() if i not in embeddings)
