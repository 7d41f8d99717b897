"""A run's identity (benchmark/tracking/record.py): written as tags, read back, old runs included; the protocol tag
derived from the composed config alone."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict

from benchmark import PROJECT_ROOT
from benchmark.report.runs import config_fingerprint
from benchmark.run import protocol_of
from benchmark.tracking import flatten
from benchmark.tracking.record import EXPERIMENT_TAG, MIAN_TAGS, READINGS, TAG_FALLBACKS, RunRecord

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


# ------------------------------------------------------------------------------------------ the run record
def logged_params(cfg) -> dict[str, str]:
    """The params a job's run logs (benchmark/tracking/artifacts.py log_config): the resolved config, flat."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("paths", None)
    return {key: str(value) for key, value in flatten(container).items()}


# A config of every experiment kind (conf/experiment/; a sweep's jobs take their values from its grid).
KINDS = {
    "adhoc": [],
    "table2": ["experiment=table2", "model=din", "seed=3"],
    "table3": ["experiment=table3", "ablation=no_gim", "seed=1"],
    "table4": ["experiment=table4", "model.encoder=none"],
    "efficiency": ["experiment=efficiency", "model=dien"],
    "readings": ["experiment=readings", "model.ibim_score=bahdanau", "model.encoder=none"],
    "sensitivity": ["experiment=sensitivity", "model=deepfm", "protocol=shared_light"],
    "sensitivity-library": ["experiment=sensitivity", "model=din", "protocol=library", "trainer.l2=1e-4"],
    "effects": ["experiment=effects", "mechanism=sequence_max", "arm=mian_din", "dataset.seed=2"],
    "effects-knockout": ["experiment=effects", "mechanism=user_bilinear", "arm=deepfm", "dataset.knockout=true"],
    "effects-synthetic": ["experiment=effects", "dataset=synthetic", "effects=user", "model=din"],
    "table2-calibrated": ["experiment=table2", "dataset=calibrated", "model=lr", "dataset.seed=1"],
    "tune": ["experiment=tune", "model=mian", "model.readout=product"],
}


def test_the_kinds_cover_every_experiment_config() -> None:
    assert {kind.split("-")[0] for kind in KINDS} - {"adhoc"} == {p.stem for p in (CONF / "experiment").glob("*.yaml")}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tags_round_trip_through_the_record(compose_cfg, kind: str) -> None:
    cfg = compose_cfg(*KINDS[kind])
    record = RunRecord.from_config(cfg)
    assert RunRecord.from_tags(record.tags(), logged_params(cfg)) == record
    # as the report reads a run: every tag and param a string, '' where the run has none
    assert RunRecord.from_tags({**dict.fromkeys(MIAN_TAGS, ""), **record.tags()},
                               {"trainer.l2": "", **logged_params(cfg)}) == record
    assert record.experiment == (kind.split("-")[0] if kind != "adhoc" else "adhoc")


def test_the_tags_are_those_a_run_carried_before_the_record(compose_cfg) -> None:
    mian = RunRecord.from_config(compose_cfg("experiment=readings", "model.ibim_score=din", "seed=2"))
    assert mian.tags() == {
        "experiment_name": "readings", "model": "mian", "dataset": "synthetic", "variant": "full", "seed": "2",
        "protocol": "shared", "encoder": "pre_ln", "ibim_score": "din", "field_score": "additive",
        "e_b_pool": "mean", "positional": "learned", "readout": "concat"}
    assert mian.reading == "ibim_score=din"
    din = RunRecord.from_config(compose_cfg("model=din", "protocol=shared_decoupled", "ablation=full"))
    assert din.tags() == {"experiment_name": "adhoc", "model": "din", "dataset": "synthetic", "variant": "default",
                          "seed": "0", "protocol": "shared weight_decay=decoupled"}
    assert (din.encoder, din.reading, din.effect, din.knockout, din.data_seed) == ("", "", "", None, None)


def test_the_data_fields_of_the_effects_runs(compose_cfg) -> None:
    calibrated = RunRecord.from_config(compose_cfg(*KINDS["effects-knockout"]))
    assert (calibrated.effect, calibrated.knockout, calibrated.data_seed) == ("user_bilinear", True, 0)
    synthetic = RunRecord.from_config(compose_cfg(*KINDS["effects-synthetic"]))
    assert (synthetic.effect, synthetic.knockout, synthetic.data_seed) == ("user", None, None)
    # the calibrated data outside experiment=effects: no effect column, still its data seed
    other = RunRecord.from_config(compose_cfg(*KINDS["table2-calibrated"]))
    assert (other.effect, other.knockout, other.data_seed) == ("", False, 1)


def test_an_old_runs_missing_tags_read_as_the_documented_fallbacks() -> None:
    # a MIAN run from before the protocol, encoder and reading tags, with its L2 logged as a param
    old = RunRecord.from_tags({"model": "mian", "dataset": "movielens", "variant": "full", "seed": "4"},
                              {"experiment_name": "table2", "trainer.l2": "1e-05"})
    assert old == RunRecord(experiment="table2", dataset="movielens", model="mian", variant="full", seed=4,
                            protocol="shared l2=1e-05", encoder="", **READINGS)
    assert old.reading == ""
    assert RunRecord.from_tags({"model": "mian"}, {"trainer.l2": "0.001"}).protocol == "shared"
    # nothing at all: no params (the shared protocol), no experiment (ad hoc), no seed
    bare = RunRecord.from_tags({})
    assert (bare.experiment, bare.protocol, bare.seed, bare.model, bare.variant) == ("adhoc", "shared", None, "", "")
    assert TAG_FALLBACKS == {"model": "", "dataset": "", "variant": "", "encoder": ""}
    # a sweep's job tagged its experiment; the param, when logged, is what counts
    assert RunRecord.from_tags({EXPERIMENT_TAG: "table3"}, {"experiment_name": "None"}).experiment == "table3"
    assert RunRecord.from_tags({EXPERIMENT_TAG: "x"}, {"experiment_name": "table4"}).experiment == "table4"
    # a baseline's run: MIAN's reading tags do not apply, whatever they hold
    din = RunRecord.from_tags({"model": "din", "ibim_score": "din", "protocol": "library"})
    assert (din.ibim_score, din.reading, din.protocol) == ("", "", "library")


def test_the_readings_are_fields_of_the_record_and_options_of_mian() -> None:
    from benchmark.config.schema import MIAN

    names = {f.name for f in dataclasses.fields(RunRecord)}
    assert set(MIAN_TAGS) <= names and set(MIAN_TAGS) <= {f.name for f in dataclasses.fields(MIAN)}
    assert {f.name: f.default for f in dataclasses.fields(MIAN) if f.name in READINGS} == READINGS


def test_the_report_reads_each_runs_identity_through_the_record() -> None:
    """job_records on a store's frame (strings, '' where a run has no such tag or param): an old MIAN run, a new
    one with a reading, a calibrated effects run; the columns keep their names."""
    from benchmark.report.runs import job_records

    rows = [
        {"run_id": "old", "params.experiment_name": "table2", "tags.model": "mian", "tags.dataset": "movielens",
         "tags.seed": "1", "params.trainer.l2": "1e-05"},
        {"run_id": "new", "params.experiment_name": "readings", "tags.model": "mian", "tags.dataset": "synthetic",
         "tags.seed": "2", "tags.variant": "full", "tags.encoder": "none", "tags.ibim_score": "din",
         "tags.protocol": "shared weight_decay=decoupled"},
        {"run_id": "effects", "params.experiment_name": "effects", "tags.model": "din", "tags.dataset": "calibrated",
         "tags.seed": "0", "tags.variant": "default", "tags.protocol": "shared", "params.dataset.loader": "calibrated",
         "params.dataset.effect": "sequence", "params.dataset.form": "max", "params.dataset.seed": "2",
         "params.dataset.knockout": "True"},
    ]
    runs = pd.DataFrame(rows).fillna("")
    records, older = job_records(runs)
    got = records.set_index("run_id")[["table", "model", "variant", "encoder", "seed", "reading", "protocol",
                                        "effect", "knockout", "data_seed"]]
    assert got.loc["old"].tolist() == ["table2", "mian", "", "", 1, "", "shared l2=1e-05", "", "", ""]
    assert got.loc["new"].tolist() == ["readings", "mian", "full", "none", 2, "ibim_score=din",
                                       "shared weight_decay=decoupled", "", "", ""]
    assert got.loc["effects"].tolist() == ["effects", "din", "default", "", 0, "", "shared", "sequence_max", "true",
                                           "2"]
    assert older.empty


def test_a_jobs_run_carries_its_records_tags(compose_cfg, tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from benchmark.run import run_job
    from conftest import TINY_SYNTHETIC

    cfg = compose_cfg(*TINY_SYNTHETIC, "model=mian", "model.readout=product", "trainer.max_epochs=1", "seed=1",
                      "experiment=table4", f"tracking.uri={tracking_uri}", "tracking.experiment=record")
    run_job(cfg)
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("record").experiment_id])
    record = RunRecord.from_config(cfg)
    assert {key: run.data.tags.get(key) for key in record.tags()} == record.tags()
    assert RunRecord.from_tags(run.data.tags, run.data.params) == record
    assert record.reading == "readout=product" and run.info.run_name == "mian-synthetic-full-product-seed1"
    assert run.data.tags["step_mode"] == "eager"  # a CPU run's step is always eager


# ------------------------------------------------------------------------------------------ step_mode
@pytest.mark.parametrize(("capture_fails", "expected"), [(True, "eager"), (False, "cuda_graph")])
def test_step_mode_is_what_the_step_ran_as_after_the_capture(compose_cfg, tracking_uri: str, monkeypatch,
                                                              capture_fails: bool, expected: str) -> None:
    """A trainer that plans a CUDA graph (as on CUDA) and captures it in its first epoch, where the capture may
    fail and fall back to eager (Trainer._capture): the run's tag is the mode after that, not the plan."""
    from mlflow.tracking import MlflowClient

    import benchmark.run
    from benchmark.trainer import Trainer
    from conftest import TINY_SYNTHETIC

    class PlansAGraph(Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.step_mode = "cuda_graph"

        def train_epoch(self, epoch: int, progress: bool) -> float:
            if capture_fails and self.step_mode == "cuda_graph":  # as _capture does when the capture fails
                self.step_mode, self.graph_reason = "eager", "capture failed: stub"
            return super().train_epoch(epoch, progress)

    monkeypatch.setattr(benchmark.run, "Trainer", PlansAGraph)
    benchmark.run.run_job(compose_cfg(*TINY_SYNTHETIC, "model=lr", "trainer.max_epochs=1",
                                      f"tracking.uri={tracking_uri}", "tracking.experiment=step-mode"))
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("step-mode").experiment_id])
    assert run.data.tags["step_mode"] == expected
