"""A run's identity as one typed record, written as the tags of a job's run and read back from any run.

`RunRecord.from_config(cfg)` is what a composed job is; benchmark/run.py writes `record.tags()` when the job's run
starts. `RunRecord.from_tags(tags, params)` is what a logged run was, for every run in a store, the ones older
than a tag included: the fallbacks for a run that lacks a tag live here and nowhere else (TAG_FALLBACKS,
READINGS, `_protocol_fallback`). The report (benchmark/report/runs.py) reads a run's identity through it.

Identity is what tells a run apart in the tables: the experiment config, dataset, model, variant (MIAN's
ablation), MIAN's encoder and readings, the protocol, the planted effect or mechanism of the synthetic data, its
data seed and knock-out variant, and the training seed. The protocol tag is derived from the composed config
alone: the knobs where the job's `trainer` departs from the protocol's own values (`protocol.trainer`,
benchmark/config/schema.py ProtocolValues). The last three data fields are logged as params (the resolved
config), not tags; `from_tags` reads them from `params`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.names import EFFECTS
from benchmark.tracking.artifacts import flatten

EXPERIMENT_TAG = "experiment_name"
ADHOC = "adhoc"  # the experiment of a job that no experiment config (conf/experiment/) started

# The trainer knobs a run's `protocol` tag names, in this order, where the job's differ from the protocol's own.
PROTOCOL_KNOBS = ("l2", "l2_scope", "l2_embedding", "weight_decay", "max_epochs", "patience")

# MIAN's readings of what the paper leaves open (models/mian.py, docs/mian.md), in the order the report names them,
# each with the value a MIAN run that predates its tag had: the paper's literal reading.
READINGS = {"ibim_score": "additive", "field_score": "additive", "e_b_pool": "mean", "positional": "learned",
            "readout": "concat"}
# MIAN's options tagged on every MIAN run (the other models have none).
MIAN_TAGS = ("encoder", *READINGS)

# What a run without the tag reads as ('' and an absent tag alike). `seed` reads as None, `protocol` as
# `_protocol_fallback`, MIAN's readings as READINGS; the encoder of a MIAN run older than its tag is not known ('').
TAG_FALLBACKS = {"model": "", "dataset": "", "variant": "", "encoder": ""}


def experiment_of(cfg: DictConfig) -> str:
    """The experiment config that started the job (`experiment_name`), 'adhoc' for none."""
    return str(cfg.get(EXPERIMENT_TAG) or ADHOC)


def variant_of(cfg: DictConfig) -> str:
    """What distinguishes this configuration of the model in the tables: MIAN's ablation, else 'default'."""
    return str(cfg.ablation.name) if cfg.model.name == "mian" else "default"


def protocol_of(cfg: DictConfig) -> str:
    """The protocol's name and every knob set apart from it, e.g. 'shared' or 'shared l2=1e-05 l2_scope=kernels':
    the knobs where the job's `trainer` differs from `protocol.trainer`, the protocol's own values for this model
    (benchmark/config/schema.py ProtocolValues). Under `tuned`, the knobs its study applied are the protocol's own."""
    name = str(cfg.get("protocol_name", "shared"))
    own_trainer = OmegaConf.select(cfg, "protocol.trainer", default=None)
    if own_trainer is None:
        raise ValueError("the config has no `protocol` node (the protocol's own values): compose it from "
                         "conf/config.yaml")
    own = {key: own_trainer.get(key) for key in PROTOCOL_KNOBS}
    applied = OmegaConf.select(cfg, "tune.applied.params", default=None)
    if applied is not None:
        own.update({key: value for key, value in (applied.get("trainer") or {}).items() if key in own})
    changed = [f"{key}={cfg.trainer[key]:g}" if isinstance(cfg.trainer[key], float) else f"{key}={cfg.trainer[key]}"
               for key in PROTOCOL_KNOBS if key in cfg.trainer and cfg.trainer[key] != own.get(key)]
    return " ".join([name, *changed])


def _protocol_fallback(params: Mapping[str, str]) -> str:
    """A run older than the `protocol` tag ran the shared protocol, with its L2 as logged."""
    l2 = _number(params.get("trainer.l2"))
    return "shared" if l2 is None or l2 == 1e-3 else f"shared l2={l2:g}"


def _number(value: Any) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _integer(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _text(mapping: Mapping[str, str], key: str) -> str:
    """The value at `key` as a string, '' when absent (a report row holds '' for a missing tag or param)."""
    value = mapping.get(key)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class RunRecord:
    """One run's identity (the module docstring). Fields that do not apply are '' (None for the numbers)."""

    experiment: str            # the experiment config (conf/experiment/), 'adhoc' for none
    dataset: str
    model: str
    variant: str               # MIAN's ablation, else 'default'
    seed: int | None           # the training seed; None only for a run without the tag
    protocol: str              # e.g. 'shared', 'shared weight_decay=decoupled', 'library l2=0.0001', 'tuned'
    encoder: str = ""          # MIAN's behaviour encoder (Table 4)
    ibim_score: str = ""       # MIAN's readings (READINGS)
    field_score: str = ""
    e_b_pool: str = ""
    positional: str = ""
    readout: str = ""
    effect: str = ""           # experiment=effects: the planted effects ('user', 'sequence+context', 'none'), or the
    #                            calibrated data's mechanism ('sequence_max')
    knockout: bool | None = None  # calibrated data: its knock-out variant or not
    data_seed: int | None = None  # calibrated data: its data seed

    @property
    def reading(self) -> str:
        """MIAN's readings that are not the paper's literal one, e.g. 'ibim_score=din field_score=din' ('' for the
        literal reading and for every other model)."""
        if self.model != "mian":
            return ""
        return " ".join(f"{key}={getattr(self, key)}" for key, literal in READINGS.items()
                        if getattr(self, key) != literal)

    # ---- writing ------------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: DictConfig) -> RunRecord:
        """The identity of the job this composed (and validated) config runs."""
        model = str(cfg.model.name)
        mian = {key: str(cfg.model[key]) for key in MIAN_TAGS} if model == "mian" else {}
        experiment = experiment_of(cfg)
        # the data fields as the run's params will hold them (benchmark/tracking/artifacts.py log_config)
        dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
        assert isinstance(dataset, dict)
        params = {f"dataset.{key}": str(value) for key, value in flatten(dataset).items()}
        return cls(experiment=experiment, dataset=str(cfg.dataset.name), model=model, variant=variant_of(cfg),
                   seed=int(cfg.seed), protocol=protocol_of(cfg), **mian, **_data_fields(experiment, params))

    def tags(self) -> dict[str, str]:
        """The run's identity tags, as benchmark/run.py writes them when the job's run starts."""
        tags = {EXPERIMENT_TAG: self.experiment, "model": self.model, "dataset": self.dataset,
                "variant": self.variant, "seed": "" if self.seed is None else str(self.seed),
                "protocol": self.protocol}
        if self.model == "mian":
            tags.update({key: getattr(self, key) for key in MIAN_TAGS})
        return tags

    # ---- reading ------------------------------------------------------------------------------------------------
    @classmethod
    def from_tags(cls, tags: Mapping[str, str], params: Mapping[str, str] | None = None) -> RunRecord:
        """The identity of a logged run from its tags and params (keys without the `tags.`/`params.` prefix; ''
        reads as absent). A run older than a tag reads as the fallback of that tag (module docstring); the
        experiment is the `experiment_name` param, else the tag, else 'adhoc'."""
        params = params or {}
        text = {key: _text(tags, key) or fallback for key, fallback in TAG_FALLBACKS.items()}
        experiment = _text(params, EXPERIMENT_TAG)
        experiment = (experiment if experiment not in ("", "None") else _text(tags, EXPERIMENT_TAG)) or ADHOC
        mian = ({key: _text(tags, key) or literal for key, literal in READINGS.items()}
                if text["model"] == "mian" else {})
        return cls(experiment=experiment, dataset=text["dataset"], model=text["model"], variant=text["variant"],
                   seed=_integer(_text(tags, "seed")), protocol=_text(tags, "protocol") or _protocol_fallback(params),
                   encoder=text["encoder"], **mian, **_data_fields(experiment, params))


def _data_fields(experiment: str, params: Mapping[str, str]) -> dict[str, Any]:
    """effect, knockout and data_seed from a run's `dataset.*` params: the calibrated data's data seed and
    knock-out variant tell its cells apart; under experiment=effects, the planted effects (conf/effects/) or, on
    the calibrated data, the mechanism (conf/mechanism/)."""
    calibrated = _text(params, "dataset.loader") == "calibrated"
    if experiment != "effects":
        effect = ""
    elif calibrated:
        effect = f"{_text(params, 'dataset.effect')}_{_text(params, 'dataset.form')}"
    else:
        strengths = {name: _number(params.get(f"dataset.effects.{name}")) for name in EFFECTS}
        effect = "+".join(name for name, value in strengths.items() if value) or "none"
    knockout = {"true": True, "false": False}.get(_text(params, "dataset.knockout").lower()) if calibrated else None
    return {"effect": effect, "knockout": knockout,
            "data_seed": _integer(_text(params, "dataset.seed")) if calibrated else None}


__all__ = ["ADHOC", "EXPERIMENT_TAG", "MIAN_TAGS", "PROTOCOL_KNOBS", "READINGS", "RunRecord", "TAG_FALLBACKS",
           "experiment_of", "protocol_of", "variant_of"]
