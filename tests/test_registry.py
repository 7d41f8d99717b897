"""The model registry (models/registry.py): every model declared once, every list derived from it, unknown names
refused, every built model keeping the contract, and the README's three-file recipe for a new baseline."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmark.config as config
from benchmark import CONFIG_DIR, names
from benchmark.checks import number, option
from benchmark.config import ConfigError, validate_config
from benchmark.config.schema import MODEL_SCHEMAS, register_configs
from benchmark.data.schema import Field, Schema
from benchmark.report import names as report_names
from models import build_model, registry
from models.baselines import ADAPTER
from models.options import REGISTERED, DNNModel
from models.spec import CTRModel, Library, ModelSpec

SCHEMA = Schema(item_fields=(Field("item_id", 30), Field("cate_id", 5)), user_fields=(Field("gender", 3),),
                context_fields=(Field("hour", 25),), max_len=4)
CPU = torch.device("cpu")


def tiny_batch(batch: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hist_len = torch.tensor([0, 1, 4, 2, 3, 4][:batch])
    hist = torch.stack([torch.randint(1, 30, (batch, 4), generator=g), torch.randint(1, 5, (batch, 4), generator=g)], -1)
    hist = hist * (torch.arange(4)[None, :] < hist_len[:, None])[..., None]
    return {"item": torch.stack([torch.randint(1, 30, (batch,), generator=g), torch.randint(1, 5, (batch,), generator=g)], 1),
            "hist": hist, "neg_hist": hist.flip(1), "hist_len": hist_len,
            "user": torch.randint(1, 3, (batch, 1), generator=g), "context": torch.randint(1, 25, (batch, 1), generator=g)}


def model_node(name: str, **values: Any) -> Any:
    """conf/model/<name>.yaml's values as a job sees them (the root's embedding_dim resolved)."""
    node = OmegaConf.structured(MODEL_SCHEMAS[name](name=name))
    node.embedding_dim = 8
    for key, value in values.items():
        node[key] = value
    return node


# ------------------------------------------------------------------------------------------ one declaration
def test_every_list_of_models_derives_from_the_registry() -> None:
    assert names.ALL_MODELS == tuple(registry.REGISTRY) == tuple(MODEL_SCHEMAS) == tuple(REGISTERED)
    assert names.MODELS == ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm", "din", "dien", "mian")  # Table 2's order
    assert names.CONTROL_MODELS == ("fm", "max_sim", "product_attn", "tensor_fact")
    assert report_names.SEQUENTIAL == ("din", "dien")
    assert report_names.NON_SEQUENTIAL == ("lr", "wide_deep", "dcn", "deepfm", "xdeepfm")
    assert set(report_names.MODEL_LABELS) == set(names.MODELS)
    assert report_names.MODEL_LABELS["wide_deep"] == "Wide&Deep" and report_names.ARM_LABELS["max_sim"] == "max-similarity"


@pytest.mark.parametrize("name", tuple(registry.REGISTRY))
def test_every_model_has_its_config_files(name: str) -> None:
    """conf/model/<name>.yaml starts from the model's schema; a DeepCTR-Torch baseline also has its library
    settings (conf/protocol_model/library_<name>.yaml), without which protocol=library is refused."""
    model_yaml = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    assert f"/schema/model/{name}@_here_" in model_yaml.defaults
    library = CONFIG_DIR / "protocol_model" / f"library_{name}.yaml"
    assert library.is_file() == (registry.spec(name).family == "deepctr")


def test_an_unknown_name_is_an_error_never_a_fall_through() -> None:
    with pytest.raises(ValueError, match=r"model.name='dinn' is unknown: the registered models are lr, wide_deep"):
        registry.spec("dinn")
    with pytest.raises(ValueError, match="is unknown"):
        build_model(OmegaConf.create({"name": "dinn"}), None, SCHEMA, 0, CPU)
    from models.deepctr_adapter import build_deepctr_model

    with pytest.raises(ValueError, match="'mian' is not a DeepCTR-Torch baseline"):
        build_deepctr_model(model_node("mian"), SCHEMA, 0, CPU)


@pytest.mark.parametrize("name", tuple(registry.REGISTRY))
def test_every_built_model_keeps_the_contract(name: str) -> None:
    ablation = OmegaConf.structured(config.schema.Ablation()) if name == "mian" else None
    model = build_model(model_node(name), ablation, SCHEMA, 0, CPU)
    assert isinstance(model, CTRModel)
    model.eval()
    logits = model({key: tiny_batch()[key] for key in model.inputs})
    assert logits.shape == (6,) and torch.isfinite(logits).all()


def test_library_protocol_is_refused_for_a_baseline_without_its_settings(compose_cfg, monkeypatch, tmp_path) -> None:
    cfg = compose_cfg("protocol=library", "model=din")
    validate_config(cfg)
    monkeypatch.setattr(config, "CONF_DIR", tmp_path)  # a suite whose conf/ lacks library_din.yaml
    with pytest.raises(ConfigError, match=r"protocol=library has no settings for model=din: add conf/protocol_model/"
                                          r"library_din.yaml"):
        validate_config(cfg)
    validate_config(compose_cfg("protocol=library", "model=mian"))  # MIAN keeps the paper's settings: no file


# ------------------------------------------------------------------------------------------ README's recipe
@dataclass
class NFM(DNNModel):
    NAME: ClassVar[str] = "nfm"
    bi_dropout: float = option(0.0, number(0.0, 1.0, high_open=True))


def _nfm(o: dict[str, Any], columns: list, items: list[str]) -> tuple[tuple, dict[str, Any]]:
    return (columns, columns), {"l2_reg_linear": 0.0, "bi_dropout": float(o["bi_dropout"])}


NFM_SPEC = ModelSpec("nfm", "NFM", NFM, "deepctr", ADAPTER, paper=False, library=Library("NFM", _nfm))


@pytest.fixture
def nfm_suite(monkeypatch, tmp_path: Path) -> Path:
    """The suite with NFM added as README "Extending" says: its entry (here patched into the registry instead of
    written into models/baselines.py), conf/model/nfm.yaml and conf/protocol_model/library_nfm.yaml (in a copy of
    conf/)."""
    monkeypatch.setitem(registry.REGISTRY, "nfm", NFM_SPEC)
    monkeypatch.setitem(MODEL_SCHEMAS, "nfm", NFM)
    monkeypatch.setattr("models.options.REGISTERED", [*REGISTERED, "nfm"])
    register_configs()
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "model" / "nfm.yaml").write_text("defaults: [/schema/model/nfm@_here_, _self_]\n")
    (conf / "protocol_model" / "library_nfm.yaml").write_text(
        "# @package _global_\nmodel:\n  dnn_hidden_units: [128, 128]\n  dropout: 0.0\n  init_std: 1.0e-4\n"
        "trainer:\n  batch_size: 256\n  l2: 0.0\n  l2_embedding: 1.0e-5\n")
    monkeypatch.setattr(config, "CONF_DIR", conf)
    return conf


def test_a_new_baseline_takes_three_files(nfm_suite: Path) -> None:
    with initialize_config_dir(config_dir=str(nfm_suite), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=nfm", "model.bi_dropout=0.1"])
        library = compose(config_name="config", overrides=["model=nfm", "protocol=library"])
    validate_config(cfg)
    validate_config(library)
    assert library.model.dnn_hidden_units == [128, 128] and library.trainer.batch_size == 256
    model = build_model(cfg.model, cfg.ablation, SCHEMA, 0, CPU)
    assert isinstance(model, CTRModel) and type(model.net).__name__ == "_NFM"
    model.train()
    logits = model({key: tiny_batch()[key] for key in model.inputs})
    logits.sum().backward()
    assert logits.shape == (6,) and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match=r"model.bi_dropout=1.5 is invalid: must be a finite number in \[0.0, 1.0\)"):
        with initialize_config_dir(config_dir=str(nfm_suite), version_base="1.3"):
            validate_config(compose(config_name="config", overrides=["model=nfm", "model.bi_dropout=1.5"]))
