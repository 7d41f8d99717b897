"""Validation of the composed config, run before any data is loaded or model built.

The schema (benchmark/config/schema.py) is the one place for every key's type, default and allowed values.
Hydra checks the types as it composes (each YAML file starts from its schema); `validate_config` then runs each
field's check and the checks across keys, and names the key, what is allowed and how to fix it. Values that
depend on the data (a batch larger than the training split, a head count that does not divide the behaviour
width) are checked where the data is known, with the same kind of message.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from benchmark import CONFIG_DIR
from models import registry
from benchmark.config.schema import (
    DATASET_SCHEMAS, MODEL_SCHEMAS, Ablation, ConfigError, Dataset, Model, Paths, Root, Trainer, checked_fields, refuse,
    register_configs,
)

CONF_DIR = CONFIG_DIR
__all__ = ["CONF_DIR", "ConfigError", "composition_error", "group_config", "group_schemas", "register_configs",
           "validate_config", "validate_dataset"]


def group_config(group: str, option: str) -> DictConfig:
    """conf/<group>/<option>.yaml over its schema, on its own: what a loader or a model reads, for tools and tests
    that build one dataset or model without composing a whole job (interpolations to the root, such as the
    models' ${embedding_dim}, are left unresolved)."""
    from hydra.core.config_store import ConfigStore

    raw = OmegaConf.load(CONF_DIR / group / f"{option}.yaml")
    layers = []
    for entry in raw.pop("defaults", []):
        if isinstance(entry, str) and entry.startswith("/schema/"):
            path = entry.removeprefix("/").removesuffix("@_here_")
            layers.append(ConfigStore.instance().load(f"{path}.yaml").node)
    return OmegaConf.merge(*layers, raw) if layers else raw


# The groups whose schema is the same whatever the option; a model's depends on model.name, a dataset's on its loader.
FIXED_GROUPS: tuple[tuple[str, type], ...] = (("trainer", Trainer), ("paths", Paths), ("ablation", Ablation))


def _check_selector(cfg: DictConfig, group: str) -> None:
    """The key that picks a model's or a dataset's schema (model.name, dataset.loader) names a known one."""
    key, base = ("name", Model) if group == "model" else ("loader", Dataset)
    value = cfg[group].get(key)
    check = dict(checked_fields(base))[key]
    if not check.passes(value):
        raise refuse(f"{group}.{key}", _shown(value), check.allowed)


def group_schemas(cfg: DictConfig) -> list[tuple[str, type]]:
    """(group, schema) of every group node of `cfg`, once model.name and dataset.loader are checked."""
    return [*FIXED_GROUPS, ("model", MODEL_SCHEMAS[str(cfg.model.name)]),
            ("dataset", DATASET_SCHEMAS[str(cfg.dataset.loader)])]


def _shown(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value


def validate_dataset(node: DictConfig) -> None:
    """The dataset part of validate_config, for tools that build a dataset without composing a job
    (`python -m benchmark.data stats`)."""
    wrapped = OmegaConf.create({"dataset": node})
    _check_selector(wrapped, "dataset")
    schema = DATASET_SCHEMAS[str(node.loader)]
    _check_fields(wrapped, "dataset", schema)
    schema.check_across(node)


def _check_fields(cfg: DictConfig, group: str, schema: type) -> None:
    node = cfg[group] if group else cfg
    prefix = f"{group}." if group else ""
    for key, check in checked_fields(schema):
        parent = key.rpartition(".")[0]
        if parent and OmegaConf.select(node, parent, default=None) is None:  # an optional node left out (effects)
            continue
        value = OmegaConf.select(node, key, default=dataclasses.MISSING)
        if value is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{key} is missing from the config")
        if not check.passes(value):
            raise refuse(f"{prefix}{key}", _shown(value), check.allowed)


def _check_known_keys(cfg: DictConfig, group: str, option: str, schema: type) -> None:
    known = {f.name for f in dataclasses.fields(schema)}
    unknown = sorted(set(cfg[group].keys()) - known)
    if unknown:
        raise ConfigError(f"{group}.{unknown[0]} is not an option of {group}={option}; known: {', '.join(sorted(known))}")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid value found."""
    try:  # an interpolation to a missing key or a bad resolver call fails here, not deep inside a loader
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "the config"
        reason = (str(getattr(error, "msg", None) or error).splitlines() or ["?"])[0]
        raise ConfigError(f"{key} cannot be resolved: {reason}") from error
    _check_fields(cfg, "", Root)
    for group in ("model", "dataset", "trainer", "paths", "ablation"):
        if not isinstance(cfg.get(group), DictConfig):
            raise ConfigError(f"{group}={_shown(cfg.get(group))!r} is invalid: must be one of the options of "
                              f"conf/{group}/, chosen with {group}=<option>")
    _check_selector(cfg, "model")
    _check_selector(cfg, "dataset")
    model = MODEL_SCHEMAS[str(cfg.model.name)]
    node_type = OmegaConf.get_type(cfg.model)
    if dataclasses.is_dataclass(node_type) and node_type is not model:
        raise ConfigError(f"model.name={cfg.model.name!r} is invalid: must be {getattr(node_type, 'NAME', '?')}, the "
                          f"model this config was composed for; pick a model with model=<name>, not model.name")
    for group, schema in group_schemas(cfg):
        _check_fields(cfg, group, schema)
    # A key added with '+' that no model, trainer or tracking reads is a typo (MIAN's options would fail on it
    # deep inside). Datasets may carry extra keys: their loaders read what they know, and cross-dataset sweeps
    # need '++'.
    _check_known_keys(cfg, "model", str(cfg.model.name), model)
    _check_known_keys(cfg, "trainer", "default", Trainer)
    _check_known_keys(cfg, "ablation", str(cfg.ablation.name), Ablation)
    _check_known_keys(cfg, "paths", "default", Paths)
    _check_across_keys(cfg)


def _check_across_keys(cfg: DictConfig) -> None:
    for group, schema in group_schemas(cfg):
        check_across = getattr(schema, "check_across", None)
        if check_across is not None:
            check_across(cfg[group])
    if cfg.model.name != "mian" and cfg.ablation.name != "full":
        raise ConfigError(
            f"ablation={cfg.ablation.name} applies to model=mian only, not model={cfg.model.name}: drop the ablation override"
        )
    _check_library_settings(cfg)


def _check_library_settings(cfg: DictConfig) -> None:
    """protocol=library trains each DeepCTR-Torch baseline at the library's own settings, which its file
    conf/protocol_model/library_<model>.yaml holds; Hydra's `optional` default would quietly train a baseline
    without one at the shared settings under the tag `library`."""
    name = str(cfg.model.name)
    if cfg.get("protocol_name") != "library" or registry.spec(name).family != "deepctr":
        return
    settings = CONF_DIR / "protocol_model" / f"library_{name}.yaml"
    if not settings.is_file():
        raise ConfigError(f"protocol=library has no settings for model={name}: add conf/protocol_model/"
                          f"library_{name}.yaml with DeepCTR-Torch's defaults for it (docs/baselines.md, \"The "
                          "library protocol\", lists the other baselines' values and their sources)")


def composition_error(error: BaseException) -> ConfigError | None:
    """The ConfigError that a failed composition (a value of the wrong type for its schema, refused by Hydra)
    amounts to, in validate_config's words, or None when the failure is of another kind."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    key = re.sub(r"\[\d+\]$", "", str(getattr(cause, "full_key", None) or ""))  # a list's element: the list
    if not key:
        return None
    value: Any = getattr(cause, "value", None)
    given = re.match(r"Error merging override \+*([^=\s]+)=(.*)", str(error))
    if given and given[1] == key:
        value = given[2]  # as typed on the command line (the whole list, not the refused element)
    group, _, rest = key.partition(".")
    candidates: list[tuple[str, type]] = [("", Root), *FIXED_GROUPS, *(("model", s) for s in MODEL_SCHEMAS.values()),
                                          *(("dataset", s) for s in DATASET_SCHEMAS.values())]
    for prefix, schema in candidates:
        local = key if not prefix else (rest if group == prefix else None)
        check = dict(checked_fields(schema)).get(local) if local else None
        if check is not None:
            return refuse(key, value, check.allowed)
    return ConfigError(f"{key} is invalid: {str(getattr(cause, 'msg', cause)).splitlines()[0]}")
