"""Behaviour of the native MIAN: shapes, masks, attention weights, ablations, encoders."""
from __future__ import annotations

import pytest
import torch
from conftest import make_batch

from benchmark.data.schema import Schema
from models.mian import MIAN, FieldAttention, GlobalInteraction, MIANConfig, TransformerBlock

ABLATIONS = {
    "full": {},
    "no_iuim": {"iuim": False},
    "no_icim": {"icim": False},
    "no_ibim": {"ibim": False},
    "no_gim": {"gim": False},
    "no_iuim_icim": {"iuim": False, "icim": False},
}


def build(schema: Schema, **options: object) -> MIAN:
    torch.manual_seed(0)
    return MIAN(schema, MIANConfig(embedding_dim=8, **options)).eval()  # type: ignore[arg-type]


def test_output_and_attention_shapes(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]) -> None:
    model = build(tiny_schema)
    out = model.explain(tiny_batch)
    b, t = tiny_batch["label"].shape[0], tiny_schema.max_len
    assert out["logits"].shape == (b,)
    assert model(tiny_batch).shape == (b,)
    assert out["ibim"].shape == (b, t)
    assert out["iuim"].shape == (b, len(tiny_schema.user_fields))
    assert out["icim"].shape == (b, len(tiny_schema.context_fields))
    assert out["gim"].shape == (b, 7)
    assert model.gim_names == ["e_i", "e_c", "e_b", "e_u", "R_ibim", "R_iuim", "R_icim"]


@pytest.mark.parametrize("combine", ["concat", "project"])
def test_attention_weights_sum_to_one(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor], combine: str) -> None:
    out = build(tiny_schema, gim_combine=combine).explain(tiny_batch)
    for name in ("iuim", "icim", "gim"):
        torch.testing.assert_close(out[name].sum(-1), torch.ones(len(tiny_batch["label"])))
        assert (out[name] >= 0).all()
    ibim_sums = out["ibim"].sum(-1)
    has_history = tiny_batch["hist_len"] > 0
    torch.testing.assert_close(ibim_sums[has_history], torch.ones(int(has_history.sum())))
    # an empty history has no behaviour to attend to: all weights are zero, R_ibim = 0
    assert (out["ibim"][~has_history] == 0).all()
    # padded positions get no weight
    pad = torch.arange(tiny_schema.max_len)[None, :] >= tiny_batch["hist_len"][:, None]
    assert (out["ibim"][pad] == 0).all()


@pytest.mark.parametrize("encoder", ["pre_ln", "post_ln", "none"])
def test_padded_positions_and_values_never_change_the_output(
    tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor], encoder: str
) -> None:
    model = build(tiny_schema, encoder=encoder)
    reference = model(tiny_batch)
    noisy = dict(tiny_batch)
    pad = (torch.arange(tiny_schema.max_len)[None, :] >= tiny_batch["hist_len"][:, None])[..., None]
    garbage = torch.randint(1, 6, tiny_batch["hist"].shape)  # valid ids in every item vocabulary
    noisy["hist"] = torch.where(pad, garbage, tiny_batch["hist"])
    noisy["neg_hist"] = torch.randint(1, 6, tiny_batch["neg_hist"].shape)  # MIAN does not read negatives
    torch.testing.assert_close(model(noisy), reference)


def test_valid_history_positions_do_change_the_output(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]) -> None:
    """The counterpart of the padding test, so that test cannot pass by ignoring the history altogether."""
    model = build(tiny_schema)
    changed = dict(tiny_batch)
    changed["hist"] = tiny_batch["hist"].clone()
    changed["hist"][2, 0, 0] = (tiny_batch["hist"][2, 0, 0] % 29) + 1
    assert not torch.allclose(model(changed)[2], model(tiny_batch)[2])


@pytest.mark.parametrize("encoder", ["pre_ln", "post_ln", "none"])
def test_all_empty_history_gives_finite_outputs_and_gradients(tiny_schema: Schema, encoder: str) -> None:
    batch = make_batch(tiny_schema)
    batch["hist_len"].zero_()
    batch["hist"].zero_()
    model = build(tiny_schema, encoder=encoder).train()
    logits = model(batch)
    assert torch.isfinite(logits).all()
    torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["label"]).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def _calls(model: MIAN, batch: dict[str, torch.Tensor]) -> dict[type, int]:
    counts: dict[type, int] = {FieldAttention: 0, GlobalInteraction: 0, TransformerBlock: 0}
    hooks = [m.register_forward_hook(lambda mod, *_: counts.__setitem__(type(mod), counts[type(mod)] + 1))
             for m in model.modules() if type(m) in counts]
    model(batch)
    for h in hooks:
        h.remove()
    return counts


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_each_ablation_removes_its_module(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor], ablation: str) -> None:
    switches = ABLATIONS[ablation]
    model = build(tiny_schema, **switches)
    names = {name for name, _ in model.named_parameters()}
    assert any(n.startswith("iuim.") for n in names) == switches.get("iuim", True)
    assert any(n.startswith("icim.") for n in names) == switches.get("icim", True)
    assert any(n.startswith(("encoder.", "ibim_score.", "positions")) for n in names) == switches.get("ibim", True)
    assert any(n.startswith("gim.") for n in names) == switches.get("gim", True)
    for module, rep in (("ibim", "R_ibim"), ("iuim", "R_iuim"), ("icim", "R_icim")):
        assert (rep in model.gim_names) == switches.get(module, True)
    calls = _calls(model, tiny_batch)
    assert calls[FieldAttention] == int(switches.get("iuim", True)) + int(switches.get("icim", True))
    assert calls[TransformerBlock] == int(switches.get("ibim", True))
    assert calls[GlobalInteraction] == int(switches.get("gim", True))
    out = model.explain(tiny_batch)
    assert ("gim" in out) == switches.get("gim", True)
    assert torch.isfinite(out["logits"]).all()


def test_without_ibim_the_order_of_behaviours_no_longer_matters(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]) -> None:
    """Without IBIM the history only enters as a masked mean, so reordering it cannot change the output;
    with IBIM (Transformer + positions + attention) it does."""
    row = 2  # full-length history
    shuffled = dict(tiny_batch)
    shuffled["hist"] = tiny_batch["hist"].clone()
    shuffled["hist"][row] = tiny_batch["hist"][row].flip(0)
    ablated = build(tiny_schema, ibim=False)
    torch.testing.assert_close(ablated(shuffled), ablated(tiny_batch))
    full = build(tiny_schema)
    assert not torch.allclose(full(shuffled)[row], full(tiny_batch)[row])


def test_without_iuim_and_icim_user_and_context_enter_only_through_their_embeddings(
    tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]
) -> None:
    """With IUIM/ICIM removed and GIM replaced by concatenation, zeroing the user/context embedding tables
    must make those inputs irrelevant: no other path reads them."""
    model = build(tiny_schema, iuim=False, icim=False, gim=False)
    with torch.no_grad():
        for table in [*model.user_embeddings, *model.context_embeddings]:
            table.weight.zero_()
    other = dict(tiny_batch)
    other["user"] = torch.ones_like(tiny_batch["user"])
    other["context"] = torch.ones_like(tiny_batch["context"])
    torch.testing.assert_close(model(other), model(tiny_batch))


def test_encoders_differ_only_where_they_should(tiny_schema: Schema, tiny_batch: dict[str, torch.Tensor]) -> None:
    pre, post, none = (build(tiny_schema, encoder=e) for e in ("pre_ln", "post_ln", "none"))
    assert isinstance(pre.encoder, TransformerBlock) and pre.encoder.pre_ln
    assert isinstance(post.encoder, TransformerBlock) and not post.encoder.pre_ln
    assert none.encoder is None and none.positions is None
    post.load_state_dict(pre.state_dict())  # same parameters, different wiring
    assert not torch.allclose(pre(tiny_batch), post(tiny_batch))
    assert set(dict(none.named_parameters())) < set(dict(pre.named_parameters()))


def test_initialisation_is_truncated_normal_with_zero_padding_rows(tiny_schema: Schema) -> None:
    model = build(tiny_schema)
    for table in model.item_embeddings:
        assert (table.weight[0] == 0).all()
        assert table.weight[1:].abs().max() <= 0.04 + 1e-6
    assert model.mlp[0].weight.abs().max() <= 0.04 + 1e-6
    assert (model.mlp[0].bias == 0).all()


def test_heads_must_divide_the_behaviour_width(tiny_schema: Schema) -> None:
    with pytest.raises(ValueError, match="num_heads=5"):
        MIAN(tiny_schema, MIANConfig(embedding_dim=8, num_heads=5))
