"""The calibrated benchmark's controls (models/controls.py): each computes the mechanism it is named for, reads only
valid behaviours, survives empty histories, and is built from its conf/model file like every model."""
from __future__ import annotations

import itertools

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.config import group_config
from benchmark.data.schema import Field, Schema
from benchmark.names import CONTROL_MODELS
from models import build_model
from models.controls import CONTROLS, history_mask

SCHEMA = Schema(item_fields=(Field("item_id", 30), Field("cate_id", 6)),
                user_fields=(Field("gender", 3), Field("age", 5), Field("occupation", 4)),
                context_fields=(Field("hour", 7), Field("weekday", 8)), max_len=5)


def batch(n: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = lambda fields, *shape: torch.stack([torch.randint(1, f.vocab_size, shape, generator=g)  # noqa: E731
                                              for f in fields], dim=-1)
    lengths = torch.randint(0, SCHEMA.max_len + 1, (n,), generator=g)
    lengths[0], lengths[1] = 0, SCHEMA.max_len
    hist = ids(SCHEMA.item_fields, n, SCHEMA.max_len)
    hist = hist * (torch.arange(SCHEMA.max_len)[None, :] < lengths[:, None])[..., None]
    return {"item": ids(SCHEMA.item_fields, n), "hist": hist, "hist_len": lengths,
            "user": ids(SCHEMA.user_fields, n), "context": ids(SCHEMA.context_fields, n)}


def build(name: str, std: float = 0.3, id_embeddings: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return CONTROLS[name](SCHEMA, 4, std, id_embeddings)


@pytest.mark.parametrize("name", CONTROL_MODELS)
def test_logits_are_finite_with_empty_histories_and_ignore_padding(name: str) -> None:
    model = build(name)
    b = batch()
    out = model(b)
    assert out.shape == (12,) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    padded = {**b, "hist": b["hist"].clone()}
    padded["hist"][~history_mask(b)] = 3  # ids written into the padded positions change nothing
    assert torch.allclose(model(padded), out)


@pytest.mark.parametrize("name", CONTROL_MODELS)
def test_built_from_its_config_file_like_every_model(name: str) -> None:
    cfg = OmegaConf.merge(group_config("model", name), {"embedding_dim": 4})
    model = build_model(cfg, None, SCHEMA, 0, torch.device("cpu"))
    assert type(model) is CONTROLS[name] and model.inputs == ("item", "hist", "hist_len", "user", "context")
    # fm and tensor_fact read the candidate's attributes only (models/controls.py says why)
    assert model.item_field_ids == ((1,) if name in ("fm", "tensor_fact") else (0, 1))


def _mechanism(model: torch.nn.Module, b: dict[str, torch.Tensor]) -> list[float]:
    with torch.no_grad():
        return (model(b) - model.first_order(b, history_mask(b))).tolist()


def test_max_sim_scores_the_most_similar_behaviour() -> None:
    model, b = build("max_sim"), batch()
    e = lambda ids: torch.cat([t(ids[..., f]) for f, t in enumerate(model.item_embeddings)], -1)  # noqa: E731
    for i in range(12):
        n = int(b["hist_len"][i])
        expected = (e(b["hist"][i, :n]) @ e(b["item"][i])).max() if n else torch.tensor(0.0)
        assert _mechanism(model, b)[i] == pytest.approx(float(expected.detach()), abs=1e-5)


def test_product_attn_starts_as_the_candidate_against_the_mean_of_the_history() -> None:
    model, b = build("product_attn"), batch()
    e = lambda ids: torch.cat([t(ids[..., f]) for f, t in enumerate(model.item_embeddings)], -1)  # noqa: E731
    for i in range(12):
        n = int(b["hist_len"][i])
        expected = (e(b["hist"][i, :n]).mean(0) @ e(b["item"][i])) if n else torch.tensor(0.0)
        assert _mechanism(model, b)[i] == pytest.approx(float(expected.detach()), abs=1e-5)


def test_fm_and_tensor_fact_sum_their_products_over_their_pairs() -> None:
    b = batch()
    fm, tf = build("fm", id_embeddings=False), build("tensor_fact")
    for i in range(12):
        n = max(int(b["hist_len"][i]), 1)
        item = [t(b["item"][i, f]) for f, t in zip(fm.item_field_ids, fm.item_embeddings)]
        pooled = [t(b["hist"][i, :n, f]).mean(0) if b["hist_len"][i] else torch.zeros(4)
                  for f, t in zip(fm.item_field_ids, fm.item_embeddings)]
        user = [t(b["user"][i, j]) for j, t in enumerate(fm.user_embeddings)]
        context = [t(b["context"][i, j]) for j, t in enumerate(fm.context_embeddings)]
        expected = sum(sum(item) @ other for other in pooled + user + context)
        assert _mechanism(fm, b)[i] == pytest.approx(float(expected.detach()), abs=1e-5)
        item = sum(t(b["item"][i, f]) for f, t in zip(tf.item_field_ids, tf.item_embeddings))
        groups = ([t(b["user"][i, j]) for j, t in enumerate(tf.user_embeddings)],
                  [t(b["context"][i, j]) for j, t in enumerate(tf.context_embeddings)])
        expected = sum((a * c * item).sum() for group in groups for a, c in itertools.combinations(group, 2))
        assert _mechanism(tf, b)[i] == pytest.approx(float(expected.detach()), abs=1e-5)
