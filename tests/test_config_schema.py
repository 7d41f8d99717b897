"""The config schema (benchmark/config/schema.py) is the one source of every key, default and allowed value:
the YAML files start from it, Hydra checks its types while composing, and the models, datasets, report and
validation read its names and values rather than keeping their own."""
from __future__ import annotations

import dataclasses

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf

from benchmark import CONFIG_DIR, names
from benchmark.config import ConfigError, composition_error, group_config, validate_config, validate_dataset
from benchmark.config.schema import DATASET_SCHEMAS, MODEL_SCHEMAS, Ablation, Trainer, checked_fields
from benchmark.report import names as report_names
from models.deepctr_adapter import MODEL_OPTIONS
from models.mian import MIANConfig

SCHEMA_GROUPS = ("model", "dataset", "trainer", "paths", "ablation")


def options(group: str) -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")))


@pytest.mark.parametrize(("group", "listed"), [
    ("model", names.ALL_MODELS), ("ablation", names.ABLATIONS), ("dataset", names.DATASETS),
    ("protocol", names.PROTOCOLS), ("experiment", names.EXPERIMENTS), ("effects", names.EFFECTS),
    ("mechanism", names.MECHANISMS),
])
def test_name_lists_match_the_config_files(group: str, listed: tuple[str, ...]) -> None:
    assert options(group) == tuple(sorted(listed))


def test_the_report_and_the_models_read_the_same_name_lists() -> None:
    assert report_names.MODELS is names.MODELS and report_names.ENCODERS is names.ENCODERS
    assert set(report_names.ABLATIONS) <= set(names.ABLATIONS)
    assert set(MODEL_SCHEMAS) == set(names.ALL_MODELS) and set(DATASET_SCHEMAS) == set(names.LOADERS)


@pytest.mark.parametrize("group", SCHEMA_GROUPS)
def test_every_config_file_starts_from_its_schema(group: str) -> None:
    for option in options(group):
        raw = OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml")
        assert str(raw.defaults[0]).startswith(f"/schema/{group}"), f"conf/{group}/{option}.yaml"
        assert dataclasses.is_dataclass(OmegaConf.get_type(group_config(group, option)))


def test_every_schema_field_has_a_check() -> None:
    for schema in (*MODEL_SCHEMAS.values(), *DATASET_SCHEMAS.values(), Trainer, Ablation):
        checked = {key.split(".")[0] for key, _ in checked_fields(schema)}
        assert checked == {f.name for f in dataclasses.fields(schema)}, schema.__name__


def test_models_take_their_options_from_the_schema() -> None:
    mian = {f.name for f in dataclasses.fields(MODEL_SCHEMAS["mian"])} | {f.name for f in dataclasses.fields(Ablation)}
    assert {f.name for f in dataclasses.fields(MIANConfig)} == mian - {"name"}
    defaults = MIANConfig(embedding_dim=8)
    assert defaults.num_heads == 8 and defaults.mlp_dims == (32, 8) and defaults.ibim is True
    for name, keys in MODEL_OPTIONS.items():
        assert keys == {f.name for f in dataclasses.fields(MODEL_SCHEMAS[name])} - {"name"}


def test_hydra_refuses_a_value_of_the_wrong_type_while_composing(compose_cfg) -> None:
    with pytest.raises(HydraException, match="trainer.batch_size"):
        compose_cfg("trainer.batch_size=abc")
    with pytest.raises(HydraException, match="model.mlp_dims"):
        compose_cfg("model.mlp_dims=[1.5]")


def test_a_model_name_that_disagrees_with_the_chosen_model_is_refused(compose_cfg) -> None:
    with pytest.raises(ConfigError, match="pick a model with model=<name>"):
        validate_config(compose_cfg("model.name=din"))


def test_cross_key_checks_sit_beside_their_schema(compose_cfg) -> None:
    with pytest.raises(ConfigError, match="dataset.valid_fraction \\+ dataset.test_fraction"):
        validate_config(compose_cfg("dataset=movielens", "dataset.valid_fraction=0.4", "dataset.test_fraction=0.4"))
    with pytest.raises(ConfigError, match="every size but the last must be even"):
        validate_config(compose_cfg("model=xdeepfm", "model.cin_layer_size=[3,4]"))


def test_group_config_is_the_file_over_its_schema() -> None:
    books = group_config("dataset", "books")
    assert books.reviews_file == "reviews_Books_5.json.gz" and books.negatives == 1 and books.loader == "amazon"
    assert group_config("ablation", "no_ibim").ibim is False and group_config("ablation", "no_ibim").gim is True


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.lr=abc", "trainer.lr='abc' is invalid: must be a finite number > 0.0"),
    ("model.mlp_dims=[1.5]", "model.mlp_dims='[1.5]' is invalid: must be a list of at least 1 integer(s) >= 1"),
    ("dataset.num_users=null", "dataset.num_users='null' is invalid: must be an integer >= 1"),
])
def test_a_composition_error_reads_as_validate_configs_refusal(compose_cfg, override: str, message: str) -> None:
    """What a multirun job reports when Hydra refuses its value while composing (benchmark/sweep.py)."""
    with pytest.raises(HydraException) as error:
        compose_cfg(override)
    refusal = composition_error(error.value)
    assert refusal is not None and str(refusal) == message


def test_a_dataset_built_without_a_job_is_checked_by_the_same_schema() -> None:
    node = group_config("dataset", "movielens")
    node.valid_fraction, node.test_fraction = 0.5, 0.4
    with pytest.raises(ConfigError, match="dataset.valid_fraction \\+ dataset.test_fraction = 0.9"):
        validate_dataset(node)
    node = group_config("dataset", "synthetic")
    node.num_users = 0
    with pytest.raises(ConfigError, match="dataset.num_users=0 is invalid: must be an integer >= 1"):
        validate_dataset(node)
    validate_dataset(group_config("dataset", "books"))
