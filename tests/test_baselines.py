"""DeepCTR-Torch baselines behind the shared contract (models/deepctr_adapter.py, conf/model/<baseline>.yaml).

Unit checks on a tiny schema and random batches; the end-to-end runs are at the bottom.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from benchmark.config import group_config
from benchmark.data.schema import Field, Schema
from benchmark.names import DEEPCTR_MODELS
from models import build_model
from models.deepctr_adapter import build_deepctr_model, build_library_net, check_float32_ids

ROOT = Path(__file__).resolve().parents[1]
BASELINES = DEEPCTR_MODELS  # every DeepCTR-Torch baseline of the registry (models/baselines.py)
T = 5
SCHEMA = Schema(
    item_fields=(Field("item_id", 50), Field("cate_id", 7)),
    user_fields=(Field("gender", 3), Field("age", 6)),
    context_fields=(Field("hour", 25), Field("weekday", 8)),
    max_len=T,
)
CPU = torch.device("cpu")


def model_cfg(name: str, **overrides: object) -> DictConfig:
    """The committed config file, resolved against a root with embedding_dim, with `overrides` applied."""
    model = OmegaConf.to_container(group_config("model", name))  # a plain node: the adapter checks the keys itself
    root = OmegaConf.create({"embedding_dim": 8, "model": model})
    for key, value in overrides.items():
        root.model[key] = value
    return root.model


def make_batch(n: int = 16, seed: int = 0, schema: Schema = SCHEMA, empty: str = "some", device: str = "cpu") -> dict[str, Tensor]:
    """A random batch in the shared format: right-padded histories, some (or all, or no) histories empty."""
    g = torch.Generator().manual_seed(seed)

    def ids(fields: tuple[Field, ...], *shape: int) -> Tensor:
        return torch.stack([torch.randint(1, f.vocab_size, shape, generator=g) for f in fields], dim=-1)

    t = schema.max_len
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    if empty == "some":
        lengths[: n // 4] = 0
        lengths[n // 4] = 1
    elif empty == "all":
        lengths[:] = 0
    pad = (torch.arange(t)[None, :] < lengths[:, None])[..., None]
    batch = {
        "item": ids(schema.item_fields, n),
        "hist": ids(schema.item_fields, n, t) * pad,
        "neg_hist": ids(schema.item_fields, n, t) * pad,
        "hist_len": lengths,
        "user": ids(schema.user_fields, n),
        "context": ids(schema.context_fields, n),
        "label": torch.randint(0, 2, (n,), generator=g).float(),
        "user_id": torch.arange(n),
    }
    return {k: v.to(device) for k, v in batch.items()}


def library_inputs(batch: dict[str, Tensor], schema: Schema = SCHEMA) -> dict[str, np.ndarray]:
    """The same rows as DeepCTR-Torch's own `predict()` takes them: one array per column name, built by name
    (independently of the adapter's column order)."""
    x = {"hist_len": batch["hist_len"].numpy()}
    for i, f in enumerate(schema.item_fields):
        x[f.name] = batch["item"][:, i].numpy()
        x[f"hist_{f.name}"] = batch["hist"][:, :, i].numpy()
        x[f"neg_hist_{f.name}"] = batch["neg_hist"][:, :, i].numpy()
    for group in ("user", "context"):
        for j, f in enumerate(getattr(schema, f"{group}_fields")):
            x[f"{group}_{f.name}"] = batch[group][:, j].numpy()
    return x


def library_predict(model: torch.nn.Module, cfg: DictConfig, batch: dict[str, Tensor]) -> np.ndarray:
    """Load the model's weights into the library's own class and run the library's `predict()`."""
    reference = build_library_net(cfg, SCHEMA)
    reference.load_state_dict(model.net.state_dict())
    x = library_inputs(batch)
    return reference.predict({name: x[name] for name in reference.feature_index}, batch_size=1024)[:, 0]


def spread_weights(model: torch.nn.Module, std: float = 0.5) -> torch.nn.Module:
    """Redraw every parameter from N(0, std^2): at the small initial scale (init_std 0.02) some layers barely
    move the output, and a comparison with the library would miss a wrong one."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def total_loss(model: torch.nn.Module, batch: dict[str, Tensor]) -> Tensor:
    loss = F.binary_cross_entropy_with_logits(model(batch), batch["label"])
    extra = model.extra_loss()
    return loss if extra is None else loss + extra


# ---- per model: forward/backward, and the same predictions as the library's predict() ------------------
@pytest.mark.parametrize("name", BASELINES)
def test_forward_backward(name: str) -> None:
    model = build_model(model_cfg(name), None, SCHEMA, seed=0, device=CPU)
    model.train()
    batch = make_batch()
    logits = model(batch)
    assert logits.shape == (16,) and logits.dtype == torch.float32
    loss = total_loss(model, batch)
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", BASELINES)
def test_same_predictions_as_library_predict(name: str) -> None:
    cfg = model_cfg(name)
    model = spread_weights(build_deepctr_model(cfg, SCHEMA, seed=3, device=CPU)).eval()
    batch = make_batch(n=24, seed=1)
    with torch.no_grad():
        ours = torch.sigmoid(model(batch)).numpy()
    np.testing.assert_allclose(ours, library_predict(model, cfg, batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gru_type", ["GRU", "AIGRU", "AGRU"])
def test_dien_other_gru_types_match_library(gru_type: str) -> None:
    cfg = model_cfg("dien", gru_type=gru_type)
    model = spread_weights(build_deepctr_model(cfg, SCHEMA, seed=0, device=CPU)).eval()
    batch = make_batch(n=24, seed=2)
    with torch.no_grad():
        ours = torch.sigmoid(model(batch)).numpy()
    np.testing.assert_allclose(ours, library_predict(model, cfg, batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["deepfm", "din"])
def test_equivalence_check_notices_wrong_columns(name: str) -> None:
    """Negative control: the same weights on rows whose user fields are swapped give other predictions, so
    the predict() comparison above would catch an adapter that fed the wrong columns."""
    cfg = model_cfg(name)
    model = build_deepctr_model(cfg, SCHEMA, seed=0, device=CPU).eval()
    batch = make_batch(n=24, seed=1)
    swapped = dict(batch, user=batch["user"].roll(1, dims=0))
    with torch.no_grad():
        ours = torch.sigmoid(model(swapped)).numpy()
    assert np.abs(ours - library_predict(model, cfg, batch)).max() > 1e-6


# ---- the library's traps ----------------------------------------------------------------------------------
def test_ids_at_or_above_2_pow_24_are_refused() -> None:
    ok = Schema((Field("item_id", 2**24), Field("cate_id", 7)), SCHEMA.user_fields, SCHEMA.context_fields, T)
    check_float32_ids(ok)  # ids up to 2^24 - 1: exact in float32
    too_big = Schema(SCHEMA.item_fields, (Field("user_zip", 2**24 + 1),), SCHEMA.context_fields, T)
    with pytest.raises(ValueError, match=r"user field 'user_zip'.*2\^24.*float32"):
        build_deepctr_model(model_cfg("lr"), too_big, seed=0, device=CPU)


@pytest.mark.parametrize("name", ["wide_deep", "dien"])
def test_seed_controls_initialisation_and_leaves_global_rng_alone(name: str) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_deepctr_model(model_cfg(name), SCHEMA, seed=7, device=CPU).state_dict()
    assert torch.equal(torch.get_rng_state(), before), "building a model must not move the global RNG"
    b = build_deepctr_model(model_cfg(name), SCHEMA, seed=7, device=CPU).state_dict()
    c = build_deepctr_model(model_cfg(name), SCHEMA, seed=8, device=CPU).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_dcn_has_no_linear_logit_unless_asked() -> None:
    plain = build_deepctr_model(model_cfg("dcn"), SCHEMA, seed=0, device=CPU)
    assert len(list(plain.net.linear_model.parameters())) == 0
    with_linear = build_deepctr_model(model_cfg("dcn", use_linear=True), SCHEMA, seed=0, device=CPU)
    assert len(list(with_linear.net.linear_model.parameters())) > 0


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_xdeepfm_cin_counts_fields_with_shared_embeddings(activation: str) -> None:
    model = build_deepctr_model(model_cfg("xdeepfm", cin_activation=activation), SCHEMA, seed=0, device=CPU)
    fields = 2 * len(SCHEMA.item_fields) + len(SCHEMA.user_fields) + len(SCHEMA.context_fields)
    assert len(model.net.embedding_dict) < fields  # candidate and history share their tables
    assert model.net.cin.conv1ds[0].in_channels == fields * fields
    assert model(make_batch()).shape == (16,)


def test_shared_tables_between_candidate_history_and_negatives() -> None:
    model = build_deepctr_model(model_cfg("dien"), SCHEMA, seed=0, device=CPU)
    tables = set(model.net.embedding_dict.keys())
    assert tables == {"item_id", "cate_id", "user_gender", "user_age", "context_hour", "context_weekday"}
    names = set(model.net.feature_index)
    assert {"hist_item_id", "neg_hist_item_id", "hist_cate_id", "neg_hist_cate_id", "hist_len"} <= names


def test_dien_all_empty_histories() -> None:
    model = build_deepctr_model(model_cfg("dien"), SCHEMA, seed=0, device=CPU).train()
    batch = make_batch(empty="all")
    logits = model(batch)
    aux = model.extra_loss()
    assert aux is not None and float(aux.detach()) == 0.0
    loss = F.binary_cross_entropy_with_logits(logits, batch["label"]) + aux
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        other = dict(batch, hist=torch.randint(1, 7, batch["hist"].shape))  # padding content must not matter
        torch.testing.assert_close(model(batch), model(other))


def test_dien_auxiliary_loss_matches_library_and_scales_with_alpha() -> None:
    cfg = model_cfg("dien", dropout=0.0)
    model = build_deepctr_model(cfg, SCHEMA, seed=0, device=CPU).train()
    batch = make_batch(n=24, seed=4)
    model(batch)
    ours = model.extra_loss()
    assert ours is not None and ours.requires_grad
    # Handed over once: a loss kept on the model would keep its autograd graph alive into the next step.
    assert model.extra_loss() is None and model.net.last_aux_loss is None
    reference = build_library_net(cfg, SCHEMA)
    reference.load_state_dict(model.net.state_dict())
    reference.train()
    reference(model.to_input(batch))
    torch.testing.assert_close(ours.reshape(()), reference.aux_loss.reshape(()), rtol=1e-5, atol=1e-6)

    doubled = build_deepctr_model(model_cfg("dien", dropout=0.0, alpha=2.0), SCHEMA, seed=0, device=CPU).train()
    doubled(batch)
    torch.testing.assert_close(doubled.extra_loss(), 2 * ours)
    model.eval()
    model(batch)
    assert model.extra_loss() is None  # evaluation computes no auxiliary loss
    no_neg = build_deepctr_model(model_cfg("dien", use_negsampling=False), SCHEMA, seed=0, device=CPU).train()
    no_neg(batch)
    assert no_neg.extra_loss() is None
    assert "neg_hist_item_id" not in no_neg.net.feature_index


@pytest.mark.parametrize("name", ["din", "dien"])
def test_training_step_matches_library(name: str) -> None:
    """The adapter recomputes two library layers more cheaply (Dice without transposes, the attention unit's
    first layer factored by blocks): in training mode (batch statistics, gradients) the whole model must still
    give the library's outputs, parameter gradients and BatchNorm running statistics."""
    cfg = model_cfg(name, dropout=0.0)
    model = build_deepctr_model(cfg, SCHEMA, seed=2, device=CPU).train()
    spread_weights(model)
    replaced = {type(m).__name__ for m in model.modules()}
    assert "_LocalActivationUnit" in replaced and not {"Dice", "LocalActivationUnit"} & replaced
    reference = build_library_net(cfg, SCHEMA)
    reference.load_state_dict(model.net.state_dict())
    reference.train()
    batch = make_batch(n=24, seed=5)
    logits = model(batch)
    ours = F.binary_cross_entropy_with_logits(logits, batch["label"])
    extra = model.extra_loss()
    ours = ours if extra is None else ours + extra
    probs = reference(model.to_input(batch)).squeeze(-1)
    theirs = F.binary_cross_entropy(probs, batch["label"]) + reference.aux_loss
    torch.testing.assert_close(torch.sigmoid(logits), probs, rtol=1e-5, atol=1e-6)
    ours.backward()
    theirs.backward()
    grads = dict(reference.named_parameters())
    for pname, p in model.net.named_parameters():
        torch.testing.assert_close(p.grad, grads[pname].grad, rtol=1e-4, atol=1e-6, msg=f"{name}: gradient of {pname}")
    buffers = dict(reference.named_buffers())
    for bname, b in model.net.named_buffers():
        torch.testing.assert_close(b, buffers[bname], rtol=1e-5, atol=1e-6, msg=f"{name}: buffer {bname}")


@pytest.mark.parametrize("name", BASELINES)
def test_library_regularisation_is_off(name: str) -> None:
    """The trainer's L2 is the only regularisation; the library's would otherwise be silently ignored."""
    model = build_deepctr_model(model_cfg(name), SCHEMA, seed=0, device=CPU)
    model(make_batch())
    assert float(model.net.get_regularization_loss()) == 0.0
    assert float(model.net.aux_loss.sum()) == 0.0
    assert model.extra_loss() is None or name == "dien"


class HostTensorSpy(TorchDispatchMode):
    """Records every op that touches a CPU tensor while the model runs on another device."""

    def __init__(self) -> None:
        super().__init__()
        self.host_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, Tensor) and t.device.type == "cpu" for t in tree_leaves((args, kwargs, out))):
            self.host_ops.append(str(func))
        return out


@pytest.mark.parametrize("name", BASELINES)
def test_forward_and_backward_stay_on_device(name: str) -> None:
    """CUDA-graph safety checked without a GPU: on the meta device an op that reads values on the host
    (.item(), .cpu(), boolean indexing) raises, and any host tensor (e.g. a copy to the device) is recorded."""
    meta = torch.device("meta")
    model = build_deepctr_model(model_cfg(name), SCHEMA, seed=0, device=meta).train()
    assert model.graph_capturable
    batch = make_batch(device="meta")
    with HostTensorSpy() as spy:
        loss = total_loss(model, batch)
        loss.backward()
    assert spy.host_ops == []


def test_host_tensor_spy_catches_the_library_pooling() -> None:
    """Control for the check above: the library's own variable-length pooling copies a host tensor."""
    cfg = model_cfg("deepfm")
    net = build_library_net(cfg, SCHEMA, device="meta")
    x = build_deepctr_model(cfg, SCHEMA, seed=0, device=torch.device("meta")).to_input(make_batch(device="meta"))
    with HostTensorSpy() as spy:
        net(x)
    assert spy.host_ops


# ---- configs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASELINES)
def test_config_files(name: str) -> None:
    raw = group_config("model", name)
    assert raw.name == name
    assert OmegaConf.to_container(raw)["embedding_dim"] == "${embedding_dim}"
    assert name in DEEPCTR_MODELS


def test_config_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown \\['dropuot'\\]"):
        build_deepctr_model(model_cfg("deepfm", dropuot=0.1), SCHEMA, seed=0, device=CPU)
    cfg = model_cfg("din")
    del cfg["att_hidden_size"]
    with pytest.raises(ValueError, match="missing \\['att_hidden_size'\\]"):
        build_deepctr_model(cfg, SCHEMA, seed=0, device=CPU)


# ---- end to end: one short run per model through the shared runner --------------------------------------
RUN_METRICS = {"test_auc", "test_logloss", "test_gauc", "best_epoch", "epoch_time_s"}
RUN_TAGS = {"model", "dataset", "variant", "seed", "git_commit", "device"}


def _compose(*overrides: str) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _finished_run(uri: str, experiment: str, model: str) -> dict[str, object]:
    """The single run of `model` in `experiment`: its status, metric keys and tags."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.model = '{model}'")
    assert len(runs) == 1, f"{model}: expected one run, found {len(runs)}"
    run = runs[0]
    return {"status": run.info.status, "metrics": run.data.metrics, "tags": run.data.tags}


@pytest.fixture(scope="module")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, object]]:
    """A temporary MLflow store holding one short MIAN run, the reference for metric and tag names."""
    from benchmark.run import run_job
    from conftest import TINY_SYNTHETIC

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    run_job(_compose(*TINY_SYNTHETIC, "model=mian", "trainer.max_epochs=1", f"tracking.uri={uri}",
                     "tracking.experiment=baselines-test"))
    return uri, _finished_run(uri, "baselines-test", "mian")


@pytest.mark.parametrize("name", BASELINES)
def test_short_run_lands_a_finished_mlflow_run_like_mian(name: str, run_store: tuple[str, dict]) -> None:
    from benchmark.run import MIAN_READING_DEFAULTS, run_job
    from conftest import TINY_SYNTHETIC

    uri, mian = run_store
    final = run_job(_compose(*TINY_SYNTHETIC, f"model={name}", "trainer.max_epochs=1", f"tracking.uri={uri}",
                             "tracking.experiment=baselines-test"))
    assert 0.0 <= final["test_auc"] <= 1.0 and np.isfinite(final["test_logloss"])
    run = _finished_run(uri, "baselines-test", name)
    assert run["status"] == "FINISHED"
    assert RUN_METRICS <= set(run["metrics"])
    # the same metrics as MIAN's but MIAN's own diagnostics (and the MLP's, for LR, which has none)
    mian_only = {k for k in mian["metrics"] if k.startswith(("diag_ibim", "diag_gim", "diag_ln_gain"))}
    no_mlp = {"diag_mlp_alive_units", "diag_mlp_active_share"} if name == "lr" else set()
    assert set(run["metrics"]) == set(mian["metrics"]) - mian_only - no_mlp
    assert "diag_train_loss_ratio" in run["metrics"] and run["tags"]["learned"] in ("true", "false")
    assert RUN_TAGS <= set(run["tags"])
    readings = set(MIAN_READING_DEFAULTS)  # MIAN's own tags: encoder, the readings of Eq. 8, readout, ...
    assert {k for k in mian["tags"] if not k.startswith("mlflow.")} - readings <= set(run["tags"])
    assert run["tags"]["model"] == name


@pytest.mark.slow  # ~40 s on 2 shared cores (a fresh interpreter and MLflow store); the runs above cover run_job
def test_command_line_run(tmp_path: Path) -> None:
    """`python -m benchmark model=dien ...` exactly as a user types it."""
    import subprocess
    import sys

    from conftest import TINY_SYNTHETIC

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "benchmark", "model=dien", *TINY_SYNTHETIC, "trainer.max_epochs=1",
               f"tracking.uri={uri}", "tracking.experiment=cli", f"hydra.run.dir={tmp_path / 'out'}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dien on synthetic" in done.stdout
    assert _finished_run(uri, "cli", "dien")["status"] == "FINISHED"
