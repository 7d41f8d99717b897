"""A run's identity: the protocol tag derived from the composed config alone."""
from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from benchmark import PROJECT_ROOT
from benchmark.report.runs import config_fingerprint
from benchmark.run import protocol_of

CONF = PROJECT_ROOT / "conf"

# Every option of conf/protocol/ and its runs' `protocol` tag, as the committed stores carry it.
PROTOCOL_TAGS = {
    "shared": "shared", "shared_kernels": "shared l2_scope=kernels", "shared_decoupled": "shared weight_decay=decoupled",
    "shared_light": "shared l2=1e-05", "shared_long": "shared max_epochs=30 patience=3", "library": "library",
    "tuned": "tuned",
}


def test_every_protocol_option_has_its_tag_here() -> None:
    assert sorted(PROTOCOL_TAGS) == sorted(p.stem for p in (CONF / "protocol").glob("*.yaml"))


@pytest.mark.parametrize("model", ["din", "mian"])
@pytest.mark.parametrize("protocol", sorted(PROTOCOL_TAGS))
def test_the_protocol_tag_of_each_protocol_option(compose_cfg, protocol: str, model: str) -> None:
    assert protocol_of(compose_cfg(f"protocol={protocol}", f"model={model}")) == PROTOCOL_TAGS[protocol]


def test_the_protocol_node_holds_the_protocols_own_values_for_the_model(compose_cfg) -> None:
    """protocol=library gives DIN the library's L2 in `trainer` and, as its own, in `protocol.trainer`; a value set
    on the command line changes `trainer` only, so the tag names it."""
    cfg = compose_cfg("protocol=library", "model=din", "trainer.l2_embedding=1e-5")
    assert (cfg.protocol.trainer.l2, cfg.protocol.trainer.l2_embedding) == (0.0, 1e-6)
    assert cfg.protocol.model.init_std == 1e-4 and cfg.trainer.l2_embedding == 1e-5
    assert protocol_of(cfg) == "library l2_embedding=1e-05"
    shared = compose_cfg("model=din")
    assert shared.protocol.model is None and shared.protocol.trainer == OmegaConf.structured(shared.trainer)


def test_the_protocol_tag_is_read_from_the_config_not_the_files(compose_cfg) -> None:
    cfg = compose_cfg("protocol=library", "model=din")
    with open_dict(cfg):
        cfg.protocol.trainer.l2_embedding = 1e-5  # as if the library's own value were 1e-5
    assert protocol_of(cfg) == "library l2_embedding=1e-06"
    with open_dict(cfg):
        del cfg["protocol"]
    with pytest.raises(ValueError, match="no `protocol` node"):
        protocol_of(cfg)


def test_under_tuned_the_applied_knobs_are_the_protocols_own(compose_cfg) -> None:
    cfg = compose_cfg("protocol=tuned", "model=din", "trainer.l2=1e-5", "trainer.patience=4")
    with open_dict(cfg):
        cfg.tune.applied = {"trial": 3, "best_val_auc": 0.7, "params": {"trainer": {"l2": 1e-5}}}
    assert protocol_of(cfg) == "tuned patience=4"


def test_the_protocol_node_is_left_out_of_the_config_fingerprint() -> None:
    row = pd.Series({"params.trainer.l2": "0.001", "params.model.dropout": "0.2"})
    with_node = pd.concat([row, pd.Series({"params.protocol.trainer.l2": "0.001", "params.protocol.model": "None"})])
    assert config_fingerprint(with_node) == config_fingerprint(row) != ""

