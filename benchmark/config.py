"""Validation of the composed config, run before any data is loaded or model built.

Hydra already rejects unknown config groups, options and keys (the composed config is in struct mode); this
module checks the values against an explicit schema and names the key in its message:
- one rule per known key: the shared keys (`RULES`), the model's (`MODEL_RULES[model.name]`), the dataset
  loader's (`DATASET_RULES[dataset.loader]`) and the ablation's (`ABLATION_RULES`);
- a key without a rule (one added since) must keep the type of its default in `conf/<group>/<option>.yaml`;
- a few checks across keys (fractions that must sum below 1, a minimum below its maximum, ...).
Values that depend on the data (a batch larger than the training split, a head count that does not divide
the behaviour width) are checked where the data is known, with the same kind of message.
"""
from __future__ import annotations

import codecs
import functools
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from benchmark import CONFIG_DIR
from benchmark.trainer import L2_SCOPES, WEIGHT_DECAYS
from models import DEEPCTR_MODELS, NATIVE_MODELS
from models.mian import E_B_POOLS, ENCODERS, FIELD_SCORE_READINGS, GIM_COMBINES, POSITIONALS, SCORE_READINGS

CONF_DIR = CONFIG_DIR
Rule = tuple[Callable[[Any], bool], str]


class ConfigError(ValueError):
    """An invalid config value; the message names the key and what is allowed."""


# ---------------------------------------------------------------------------------------------- value rules
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int, high: int | None = None) -> Rule:
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    return (lambda v: _is_int(v) and v >= low and (high is None or v <= high)), f"must be an integer {span}"


def number(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if not _is_number(v):
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    span = f"{'>' if low_open else '>='} {low}" if high is None else \
        f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return ok, f"must be a finite number {span}"


ANY_NUMBER: Rule = (_is_number, "must be a finite number")
BOOL: Rule = (lambda v: isinstance(v, bool), "must be true or false")
TEXT: Rule = (lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty string")
OPTIONAL_TEXT: Rule = (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                       "must be null or a non-empty string")


def choice(*options: str, case_sensitive: bool = True) -> Rule:
    def ok(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        return v in options if case_sensitive else v.lower() in {o.lower() for o in options}

    return ok, f"must be one of {', '.join(options)}"


def int_list(min_len: int = 1) -> Rule:
    def ok(v: Any) -> bool:
        return isinstance(v, (list, tuple, ListConfig)) and len(v) >= min_len and all(
            _is_int(x) and x >= 1 for x in v)

    return ok, f"must be a list of at least {min_len} integer(s) >= 1"


def _encoding(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        codecs.lookup(v)
    except LookupError:
        return False
    return True


def _device(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None


def _tracking_uri(v: Any) -> bool:
    if v is None:
        return True
    if not isinstance(v, str) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", v) is None:
        return False
    return not v.startswith("sqlite:") or (v.startswith("sqlite:///") and len(v) > len("sqlite:///"))


def _resume(v: Any) -> bool:
    if isinstance(v, bool) or v in ("auto", "false", "true"):
        return True
    return isinstance(v, str) and v.strip() != "" and Path(v).expanduser().exists()


ON_OFF_AUTO: Rule = (lambda v: isinstance(v, bool) or v in ("auto", "true", "false"), "must be auto, true or false")
# DeepCTR-Torch's activation names; Dice works in the attention units only (its DNN fails on it with an assert)
ACTIVATION = choice("relu", "sigmoid", "linear", "prelu", case_sensitive=False)
ATTENTION_ACTIVATION = choice("relu", "sigmoid", "linear", "prelu", "Dice", case_sensitive=False)
FRACTION = number(0.0, 1.0)  # [0, 1]
OPEN_FRACTION = number(0.0, 1.0, low_open=True, high_open=True)  # (0, 1)

# ---------------------------------------------------------------------------------------------- the schema
RULES: dict[str, Rule] = {
    "seed": integer(0),
    "embedding_dim": integer(1),
    "experiment_name": OPTIONAL_TEXT,
    "protocol_name": TEXT,
    "tracking.uri": (_tracking_uri, "must be null or a URI such as sqlite:///<abs path>.db or http://host:port"),
    "tracking.experiment": TEXT,
    "tracking.parent_run_id": OPTIONAL_TEXT,
    "tracking.log_model": BOOL,
    "tracking.flush_timeout_s": number(0.0),
    "paths.root": TEXT,
    "paths.tracking_db": TEXT,
    "paths.checkpoint_dir": TEXT,
    "paths.raw_dir": TEXT,
    "paths.cache_dir": TEXT,
    "paths.outputs": TEXT,
    "paths.multirun": TEXT,
    "trainer.max_epochs": integer(1),
    "trainer.patience": integer(1),
    "trainer.batch_size": integer(1),
    "trainer.eval_batch_size": integer(1),
    "trainer.lr": number(0.0, low_open=True),
    "trainer.betas": ((lambda v: isinstance(v, (list, ListConfig)) and len(v) == 2
                       and all(_is_number(b) and 0 <= b < 1 for b in v)), "must be two numbers in [0, 1)"),
    "trainer.l2": number(0.0),
    "trainer.l2_scope": choice(*L2_SCOPES),
    "trainer.l2_embedding": number(0.0),
    "trainer.weight_decay": choice(*WEIGHT_DECAYS),
    "trainer.device": (_device, "must be auto, cpu, cuda or cuda:N"),
    "trainer.cuda_graph": ON_OFF_AUTO,
    "trainer.amp": choice("none", "bf16"),
    "trainer.progress": ON_OFF_AUTO,
    "trainer.resume": (_resume, "must be auto, false, or the path of an existing checkpoint (file or folder)"),
    "trainer.checkpoint_dir": OPTIONAL_TEXT,
}

_MODEL_COMMON: dict[str, Rule] = {
    "name": choice(*NATIVE_MODELS, *DEEPCTR_MODELS),
    "embedding_dim": integer(1),
    "dropout": number(0.0, 1.0, high_open=True),
    "init_std": number(0.0, low_open=True),
}
_DNN: dict[str, Rule] = {"dnn_hidden_units": int_list(1), "dnn_activation": ACTIVATION, "dnn_use_bn": BOOL}
_ATTENTION: dict[str, Rule] = {"att_hidden_size": int_list(1), "att_activation": ATTENTION_ACTIVATION,
                               "att_weight_normalization": BOOL}
MODEL_RULES: dict[str, dict[str, Rule]] = {
    "mian": {**_MODEL_COMMON, "encoder": choice(*ENCODERS), "num_heads": integer(1), "ffn_dim": integer(1),
             "positional": choice(*POSITIONALS), "gim_combine": choice(*GIM_COMBINES), "gim_dim": integer(1),
             "mlp_dims": int_list(1), "ibim_score": choice(*SCORE_READINGS), "score_dim": integer(1),
             "field_score": (choice(*FIELD_SCORE_READINGS)[0], f"must be one of {', '.join(FIELD_SCORE_READINGS)} "
                             "(per_position applies to IBIM only: model.ibim_score=per_position)"),
             "e_b_pool": choice(*E_B_POOLS)},
    "lr": dict(_MODEL_COMMON),
    "wide_deep": {**_MODEL_COMMON, **_DNN},
    "deepfm": {**_MODEL_COMMON, **_DNN},
    "dcn": {**_MODEL_COMMON, **_DNN, "cross_num": integer(1), "cross_parameterization": choice("vector", "matrix"),
            "use_linear": BOOL},
    "xdeepfm": {**_MODEL_COMMON, **_DNN, "cin_layer_size": int_list(1), "cin_split_half": BOOL,
                "cin_activation": ACTIVATION},
    "din": {**_MODEL_COMMON, **_DNN, **_ATTENTION},
    "dien": {**_MODEL_COMMON, **_DNN, **_ATTENTION, "gru_type": choice("GRU", "AIGRU", "AGRU", "AUGRU"),
             "use_negsampling": BOOL, "alpha": number(0.0)},
}

_DATASET_COMMON: dict[str, Rule] = {"name": TEXT, "loader": TEXT, "seed": integer(0), "max_len": integer(1)}
_RAW_FILES: dict[str, Rule] = {
    "raw_dir": OPTIONAL_TEXT, "download": BOOL, "on_bad_line": choice("skip", "error"),
    "max_bad_fraction": FRACTION,
}
DATASET_RULES: dict[str, dict[str, Rule]] = {
    "synthetic": {
        **_DATASET_COMMON, "num_users": integer(1), "num_items": integer(4), "num_categories": integer(4),
        "num_groups": integer(1), "min_samples_per_user": integer(3), "max_samples_per_user": integer(3),
        "inactive_fraction": FRACTION, "unrelated_fraction": FRACTION, "related_fraction": FRACTION,
        "stream_focus": FRACTION, "base_logit": ANY_NUMBER, "effects.sequence": ANY_NUMBER,
        "effects.user": ANY_NUMBER, "effects.context": ANY_NUMBER, "valid_fraction": OPEN_FRACTION,
        "test_fraction": OPEN_FRACTION,
    },
    "movielens": {
        **_DATASET_COMMON, **_RAW_FILES, "positive_threshold": integer(1, 5), "history": choice("positive", "all"),
        "valid_fraction": OPEN_FRACTION, "test_fraction": OPEN_FRACTION, "zip_prefix_len": integer(1),
        "encoding": (_encoding, "must be a known text encoding such as iso-8859-1 or utf-8"),
    },
    "amazon": {
        **_DATASET_COMMON, **_RAW_FILES, "reviews_file": TEXT, "meta_file": TEXT, "negatives": integer(0),
        "min_user_reviews": integer(2), "on_missing_meta": choice("unknown", "skip", "error"),
        "meta_encoding": (_encoding, "must be a known text encoding such as utf-8"),
    },
}
ABLATION_RULES: dict[str, Rule] = {"name": TEXT, "ibim": BOOL, "iuim": BOOL, "icim": BOOL, "gim": BOOL,
                                   "field_inputs": BOOL}


# ---------------------------------------------------------------------------------------------- checking
def _lookup(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            raise ConfigError(f"{key} is missing from the config")
        node = node[part]
    return node


def _check(cfg: DictConfig, key: str, rule: Rule) -> None:
    value = _lookup(cfg, key)
    ok, allowed = rule
    try:
        valid = bool(ok(value))
    except (TypeError, ValueError, AttributeError):
        valid = False
    if not valid:
        shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
        raise ConfigError(f"{key}={shown!r} is invalid: {allowed}")


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} for every leaf of a plain (unresolved) container; interpolations stay '${...}' strings."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def _same_type(value: Any, default: Any) -> bool:
    """Whether an override keeps the kind of its default (an int stays an int, a float any number, ...)."""
    if default is None or (isinstance(default, str) and "${" in default):
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, (list, ListConfig))
    return True


@functools.lru_cache(maxsize=64)
def _yaml_leaves(path: Path, mtime_ns: int) -> dict[str, Any]:
    return _leaves(OmegaConf.to_container(OmegaConf.load(path), resolve=False))


def _default_leaves(group: str, option: str) -> dict[str, Any]:
    """The leaves of conf/<group>/<option>.yaml ({} when there is no such file), read once per file version."""
    path = CONF_DIR / group / f"{option}.yaml"
    return _yaml_leaves(path, path.stat().st_mtime_ns) if path.is_file() else {}


def _check_against_defaults(cfg: DictConfig, group: str, option: str, covered: set[str]) -> None:
    """Keys of `group` that have no rule keep the type of their default in conf/<group>/<option>.yaml."""
    for key, default in _default_leaves(group, option).items():
        if key in covered or key == "defaults":
            continue
        full = f"{group}.{key}"
        value = _lookup(cfg, full)
        if not _same_type(value, default):
            raise ConfigError(f"{full}={value!r} is invalid: must be a {type(default).__name__} like its default "
                              f"{default!r} (conf/{group}/{option}.yaml)")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid value found."""
    try:  # an interpolation to a missing key or a bad resolver call fails here, not deep inside a loader
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        reason = (str(getattr(error, "msg", None) or error).splitlines() or ["?"])[0]
        raise ConfigError(f"{key} cannot be resolved: {reason}") from error
    for key, rule in RULES.items():
        if key == "experiment_name" and key not in cfg:
            continue
        _check(cfg, key, rule)
    _check(cfg, "model.name", _MODEL_COMMON["name"])
    model_rules = MODEL_RULES[str(cfg.model.name)]
    for key, rule in model_rules.items():
        _check(cfg, f"model.{key}", rule)
    _check(cfg, "dataset.loader", choice(*DATASET_RULES))
    dataset_rules = DATASET_RULES[str(cfg.dataset.loader)]
    for key, rule in dataset_rules.items():
        _check(cfg, f"dataset.{key}", rule)
    for key, rule in ABLATION_RULES.items():
        _check(cfg, f"ablation.{key}", rule)
    trainer_rules = {k.split(".", 1)[1] for k in RULES if k.startswith("trainer.")}
    _check_against_defaults(cfg, "model", str(cfg.model.name), set(model_rules))
    _check_against_defaults(cfg, "dataset", str(cfg.dataset.name), set(dataset_rules))
    _check_against_defaults(cfg, "trainer", "default", trainer_rules)
    # A key added with '+' that no model or trainer reads is a typo; MIAN's options would fail on it deep inside.
    # (Datasets may carry extra keys: their loaders read what they know, and cross-dataset sweeps need '++'.)
    _check_known_keys(cfg, "model", str(cfg.model.name), set(model_rules))
    _check_known_keys(cfg, "trainer", "default", trainer_rules)
    _check_known_keys(cfg, "ablation", str(cfg.ablation.name), set(ABLATION_RULES))
    _check_across_keys(cfg)


def _check_known_keys(cfg: DictConfig, group: str, option: str, covered: set[str]) -> None:
    known = set(covered) | {k.split(".")[0] for k in _default_leaves(group, option)}
    unknown = sorted(set(cfg[group].keys()) - known)
    if unknown:
        raise ConfigError(f"{group}.{unknown[0]} is not an option of {group}={option}; known: {', '.join(sorted(known))}")


def _check_across_keys(cfg: DictConfig) -> None:
    d = cfg.dataset
    if "valid_fraction" in d and "test_fraction" in d:
        limit = 0.7 if d.loader == "movielens" else 1.0
        if d.valid_fraction + d.test_fraction >= limit:
            raise ConfigError(f"dataset.valid_fraction + dataset.test_fraction = {d.valid_fraction + d.test_fraction}"
                              f" is invalid: must be below {limit}")
    if d.loader == "synthetic":
        if d.max_samples_per_user < d.min_samples_per_user:
            raise ConfigError(f"dataset.max_samples_per_user={d.max_samples_per_user} is invalid: must be >= "
                              f"dataset.min_samples_per_user={d.min_samples_per_user}")
        if d.num_items < d.num_categories:
            raise ConfigError(f"dataset.num_items={d.num_items} is invalid: must be >= "
                              f"dataset.num_categories={d.num_categories}")
        if d.unrelated_fraction + d.related_fraction > 1:
            raise ConfigError("dataset.unrelated_fraction + dataset.related_fraction is invalid: must be <= 1")
    if d.loader != "synthetic" and "effects" in d:
        raise ConfigError(f"dataset.effects (the effects= option) applies to dataset=synthetic only, not "
                          f"dataset={d.name}: drop the effects override")
    m = cfg.model
    if m.name == "xdeepfm" and m.cin_split_half and any(size % 2 for size in m.cin_layer_size[:-1]):
        raise ConfigError(f"model.cin_layer_size={list(m.cin_layer_size)} is invalid: with "
                          "model.cin_split_half=true every size but the last must be even")
    if m.name != "mian" and cfg.ablation.name != "full":
        raise ConfigError(
            f"ablation={cfg.ablation.name} applies to model=mian only, not model={m.name}: drop the ablation override"
        )
