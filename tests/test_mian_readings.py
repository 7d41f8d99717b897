"""MIAN's open readings (docs/mian.md): the attention-score readings of Eq. 8/10, e_b pooling, positions from the
newest behaviour, and the strict w/o IUIM & ICIM ablation."""
from __future__ import annotations

import pytest
import torch
from conftest import make_batch

from benchmark.config import ConfigError, validate_config
from benchmark.data.schema import Field, Schema
from benchmark.names import READOUTS
from models.mian import FIELD_SCORE_READINGS, MIAN, SCORE_READINGS, AttentionScore, FieldAttention, MIANConfig

CANDIDATE_AWARE = ("bahdanau", "bilinear", "din")


def build(schema: Schema, **options: object) -> MIAN:
    torch.manual_seed(0)
    return MIAN(schema, MIANConfig(embedding_dim=8, **options)).eval()  # type: ignore[arg-type]


def readings(score: str) -> dict[str, str]:
    """The IBIM reading `score`, with the same reading for IUIM/ICIM where it applies to fields."""
    return {"ibim_score": score, "field_score": score if score in FIELD_SCORE_READINGS else "additive"}


# ---------------------------------------------------------------------------------------------- every reading
@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("score", SCORE_READINGS)
def test_every_reading_gives_weights_that_sum_to_one_over_valid_positions(
    tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor], score: str, readout: str
) -> None:
    out = build(tiny_schema, init_std=0.5, readout=readout, **readings(score)).explain(tiny_batch)
    has_history = tiny_batch["hist_len"] > 0
    torch.testing.assert_close(out["ibim"].sum(-1)[has_history], torch.ones(int(has_history.sum())))
    assert (out["ibim"][~has_history] == 0).all()
    pad = torch.arange(tiny_schema.max_len)[None, :] >= tiny_batch["hist_len"][:, None]
    assert (out["ibim"][pad] == 0).all() and (out["ibim"] >= 0).all()
    for name in ("iuim", "icim"):
        torch.testing.assert_close(out[name].sum(-1), torch.ones(len(tiny_batch["label"])))


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("score", SCORE_READINGS)
@pytest.mark.parametrize("encoder", ["pre_ln", "none"])
def test_every_reading_ignores_padded_positions_and_their_values(
    tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor], score: str, encoder: str, readout: str
) -> None:
    model = build(tiny_schema, init_std=0.5, encoder=encoder, readout=readout, **readings(score))
    noisy = dict(tiny_batch)
    pad = (torch.arange(tiny_schema.max_len)[None, :] >= tiny_batch["hist_len"][:, None])[..., None]
    noisy["hist"] = torch.where(pad, torch.randint(1, 6, tiny_batch["hist"].shape), tiny_batch["hist"])
    torch.testing.assert_close(model(noisy), model(tiny_batch))


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("score", SCORE_READINGS)
def test_every_reading_keeps_empty_histories_finite_with_gradients(tiny_schema: Schema, score: str,
                                                                   readout: str) -> None:
    batch = make_batch(tiny_schema)
    batch["hist_len"].zero_()
    batch["hist"].zero_()
    model = build(tiny_schema, readout=readout, **readings(score)).train()
    logits = model(batch)
    assert torch.isfinite(logits).all()
    torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["label"]).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------------------------------- the readout
def gim_inputs(model: MIAN, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The representations r_l that GIM receives, by name."""
    seen: dict[str, torch.Tensor] = {}
    assert model.gim is not None
    handle = model.gim.register_forward_pre_hook(lambda _, args: seen.update(zip(model.gim_names, args[0])))
    model(batch)
    handle.remove()
    return seen


def test_product_readout_hands_on_the_candidate_times_what_ibim_attends_to(
    tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]
) -> None:
    model = build(tiny_schema, init_std=0.5, readout="product")
    di = 8 * len(tiny_schema.item_fields)
    r = gim_inputs(model, tiny_batch)["R_ibim"]
    assert r.shape == (len(tiny_batch["label"]), 3 * di)
    e_i, attended, product = r[:, :di], r[:, di:2 * di], r[:, 2 * di:]
    torch.testing.assert_close(product, e_i * attended)
    empty = tiny_batch["hist_len"] == 0
    assert (r[empty] == 0).all() and (product[~empty] != 0).any()


def test_product_readout_of_a_field_module_is_the_projected_candidate_times_the_attended_field() -> None:
    torch.manual_seed(0)
    module = FieldAttention("additive", num_fields=3, item_dim=16, field_dim=8, score_dim=4, product=True)
    e_item, e_fields = torch.randn(5, 16), torch.randn(5, 3, 8)
    r, alpha = module(e_item, e_fields)
    attended = (alpha[..., None] * e_fields).sum(1)
    assert r.shape == (5, 16 + 2 * 8) and module.out_dim == 32
    torch.testing.assert_close(r[:, :16], e_item)
    torch.testing.assert_close(r[:, 16:24], attended)
    assert module.item_proj is not None
    torch.testing.assert_close(r[:, 24:], module.item_proj(e_item) * attended)


def test_concat_is_the_default_and_product_changes_the_output(tiny_schema: Schema,
                                                              tiny_batch: dict[str, torch.Tensor]) -> None:
    default, concat = build(tiny_schema, init_std=0.5), build(tiny_schema, init_std=0.5, readout="concat")
    product = build(tiny_schema, init_std=0.5, readout="product")
    torch.testing.assert_close(default(tiny_batch), concat(tiny_batch))
    assert not any("item_proj" in name for name, _ in default.named_parameters())
    assert not torch.allclose(product(tiny_batch), default(tiny_batch))
    widths = {n: r.shape[1] for n, r in gim_inputs(default, tiny_batch).items()}
    assert widths["R_ibim"] == 2 * 16 and widths["R_iuim"] == widths["R_icim"] == 16 + 8


def test_per_position_has_one_weight_and_bias_per_position(tiny_schema: Schema) -> None:
    model = build(tiny_schema, ibim_score="per_position")
    width = 2 * 8 * len(tiny_schema.item_fields)
    assert model.ibim_score.weight.shape == (tiny_schema.max_len, width)
    assert model.ibim_score.bias.shape == (tiny_schema.max_len,)
    assert build(tiny_schema).ibim_score.weight.shape == (1, width)  # the literal reading shares one W


# ------------------------------------------------------------------- what each reading can and cannot represent
def _one_history_many_candidates(schema: Schema, candidates: int = 12) -> dict[str, torch.Tensor]:
    """One full-length history repeated under `candidates` different candidate items."""
    batch = make_batch(schema, batch_size=candidates, seed=3)
    for key in ("hist", "user", "context"):
        batch[key] = batch[key][2:3].expand_as(batch[key]).clone()
    batch["hist_len"] = torch.full_like(batch["hist_len"], schema.max_len)
    batch["item"] = torch.stack([torch.arange(1, candidates + 1), torch.ones(candidates, dtype=torch.long)], dim=1)
    return batch


def test_additive_orders_the_behaviours_the_same_for_every_candidate(tiny_schema: Schema) -> None:
    """The literal reading adds the same candidate term at every position: tanh and exp are increasing, so the
    order of the IBIM weights is that of w_h . h_t whatever the candidate."""
    model = build(tiny_schema, init_std=0.1)  # small enough that tanh does not saturate into ties
    weights = model.explain(_one_history_many_candidates(tiny_schema))["ibim"]
    assert len(weights[0].unique()) == tiny_schema.max_len
    orders = weights.argsort(dim=-1)
    assert (orders == orders[0]).all()
    assert not torch.allclose(weights[0], weights[1])  # the candidate does change how flat they are


@pytest.mark.parametrize("score", CANDIDATE_AWARE)
def test_candidate_aware_readings_can_order_behaviours_differently_per_candidate(tiny_schema: Schema,
                                                                                   score: str) -> None:
    model = build(tiny_schema, init_std=0.5, **readings(score))  # large enough for the tanh/sigmoid non-linearity
    orders = model.explain(_one_history_many_candidates(tiny_schema))["ibim"].argsort(dim=-1)
    assert not (orders == orders[0]).all()


def _similarity_schema() -> Schema:
    return Schema(item_fields=(Field("item_id", 9),), user_fields=(Field("gender", 3),),
                  context_fields=(Field("hour", 4),), max_len=4)


def _similarity_scorer(score: str, dim: int) -> AttentionScore:
    """Parameters set by hand so that the score grows with the similarity of candidate and behaviour (what the
    paper's prose asks of IBIM); the literal additive reading has no such setting."""
    scorer = AttentionScore(score, dim, dim, num_keys=4, per_key=False, score_dim=4 * dim)
    eye = torch.eye(dim)
    with torch.no_grad():
        for p in scorer.parameters():
            p.zero_()
        if score == "bilinear":  # tanh(h . e_i): M = I
            scorer.bilinear.copy_(eye)
        elif score == "bahdanau":  # v . tanh(W [e; h] + c): sum_k tanh(c + u_k.(e - h)) + tanh(c - u_k.(e - h))
            rows = torch.cat([torch.cat([eye, -eye], 1), torch.cat([-eye, eye], 1)], 0)  # is largest at e = h
            scorer.hidden.weight[: 2 * dim].copy_(rows)
            scorer.hidden.bias[: 2 * dim].fill_(1.0)
            scorer.v.weight[0, : 2 * dim].fill_(1.0)
        else:  # din: one sigmoid unit over sum(q * k)
            scorer.mlp[0].weight[0, 3 * dim: 4 * dim].fill_(1.0)
            scorer.mlp[2].weight[0, 0] = 4.0
    return scorer


@pytest.mark.parametrize("score", CANDIDATE_AWARE)
def test_candidate_aware_readings_can_give_the_most_similar_behaviour_the_largest_weight(score: str) -> None:
    """Behaviours 1, 2, 3, 4 with orthogonal embeddings: candidate 2 gives position 1 the largest weight,
    candidate 3 position 2, so two candidates order the same behaviours differently."""
    schema = _similarity_schema()
    model = build(schema, encoder="none", **readings(score))
    model.ibim_score = _similarity_scorer(score, 8)
    with torch.no_grad():
        model.item_embeddings[0].weight.copy_(torch.cat([torch.zeros(1, 8), 1.5 * torch.eye(8)]))
    batch = {key: value[:2] for key, value in make_batch(schema).items()}
    batch["hist"] = torch.tensor([[[1], [2], [3], [4]]] * 2)
    batch["hist_len"] = torch.tensor([4, 4])
    batch["item"] = torch.tensor([[2], [3]])
    weights = model.explain(batch)["ibim"]
    assert weights.argmax(-1).tolist() == [1, 2]


# ------------------------------------------------------------------------------------ e_b, positions, ablation
def test_e_b_pool_sum_keeps_the_history_length_and_mean_does_not(tiny_schema: Schema,
                                                                 tiny_batch: dict[str, torch.Tensor]) -> None:
    """Without IBIM the history reaches GIM only as e_b: a history of one behaviour and one of the same behaviour
    twice are the same to the mean, not to the sum."""
    once, twice = dict(tiny_batch), dict(tiny_batch)
    once["hist"] = tiny_batch["hist"].clone()
    once["hist_len"] = torch.ones_like(tiny_batch["hist_len"])
    twice["hist"] = once["hist"].clone()
    twice["hist"][:, 1] = once["hist"][:, 0]
    twice["hist_len"] = torch.full_like(tiny_batch["hist_len"], 2)
    mean, total = (build(tiny_schema, ibim=False, e_b_pool=pool, init_std=0.5) for pool in ("mean", "sum"))
    torch.testing.assert_close(mean(once), mean(twice))
    assert not torch.allclose(total(once), total(twice))


def test_learned_recent_gives_the_newest_behaviour_position_zero(tiny_schema: Schema) -> None:
    model = build(tiny_schema, positional="learned_recent", init_std=0.5)
    lengths = torch.tensor([3, 1, 6])
    got = model._position_embeddings(lengths, tiny_schema.max_len)
    table = model.positions
    torch.testing.assert_close(got[0, :3], table[[2, 1, 0]])
    torch.testing.assert_close(got[1, 0], table[0])
    torch.testing.assert_close(got[2], table.flip(0))
    oldest_first = build(tiny_schema, init_std=0.5)._position_embeddings(lengths, tiny_schema.max_len)
    torch.testing.assert_close(oldest_first[0], table)


def test_learned_recent_lets_the_newest_behaviour_be_recognised_at_any_length(tiny_schema: Schema,
                                                                               tiny_batch: dict[str, torch.Tensor]
                                                                               ) -> None:
    """Changing the history length moves the newest behaviour to another `learned` position but keeps its
    `learned_recent` one: the two readings must differ on such a batch."""
    recent, oldest = (build(tiny_schema, positional=p, init_std=0.5) for p in ("learned_recent", "learned"))
    recent.load_state_dict(oldest.state_dict())
    assert not torch.allclose(recent(tiny_batch), oldest(tiny_batch))


def test_strict_ablation_gives_up_user_and_context_features_entirely(tiny_schema: Schema,
                                                                     tiny_batch: dict[str, torch.Tensor]) -> None:
    model = build(tiny_schema, iuim=False, icim=False, field_inputs=False, init_std=0.5)
    assert not model.user_embeddings and not model.context_embeddings
    assert model.gim_names == ["e_i", "e_b", "R_ibim"]
    other = dict(tiny_batch)
    other["user"] = torch.ones_like(tiny_batch["user"])
    other["context"] = torch.ones_like(tiny_batch["context"])
    torch.testing.assert_close(model(other), model(tiny_batch))
    loose = build(tiny_schema, iuim=False, icim=False, init_std=0.5)  # no_iuim_icim keeps e_u and e_c
    assert "e_u" in loose.gim_names and not torch.allclose(loose(other), loose(tiny_batch))


# ------------------------------------------------------------------------------------------- from the config
@pytest.mark.parametrize("score", SCORE_READINGS)
def test_each_reading_composes_from_the_command_line(compose_cfg, score: str) -> None:
    cfg = compose_cfg(f"model.ibim_score={score}", "model.e_b_pool=sum", "model.positional=learned_recent")
    validate_config(cfg)
    assert cfg.model.ibim_score == score


@pytest.mark.parametrize(("override", "message"), [
    ("model.field_score=per_position", "per_position applies to IBIM only"),
    ("model.ibim_score=dot", "model.ibim_score='dot' is invalid: must be one of additive, per_position"),
    ("model.e_b_pool=max", "model.e_b_pool='max' is invalid: must be one of mean, sum"),
    ("model.positional=sinusoid", "model.positional='sinusoid' is invalid"),
])
def test_a_reading_that_cannot_apply_is_refused_with_the_allowed_values(compose_cfg, override: str,
                                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_cfg(override))


def test_a_reading_on_a_baseline_is_refused(compose_cfg) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="ibim_score"):
        compose_cfg("model=din", "model.ibim_score=din")


def test_the_strict_ablation_composes_and_builds_without_field_tables(compose_cfg) -> None:
    from benchmark.data.synthetic import generate
    from models import build_model

    cfg = compose_cfg("ablation=no_iuim_icim_strict", "dataset.num_users=20")
    validate_config(cfg)
    model = build_model(cfg.model, cfg.ablation, generate(cfg.dataset).schema, 0, torch.device("cpu"))
    assert model.gim_names == ["e_i", "e_b", "R_ibim"]
