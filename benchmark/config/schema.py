"""The typed schema of every config group: one dataclass per option, each field with its type, its default and
its check (`option(default, check)`). They are registered in Hydra's ConfigStore under `schema/`
(`register_configs`), and each YAML file under conf/ names its schema first in its defaults list, so Hydra checks
the types as it composes and the YAML files hold only what differs from the schema. Keys typed `Any` keep a strict
check of their kind instead (benchmark/checks.py says why). Checks across keys sit beside their schema
(`check_across`); benchmark/config/__init__.py runs every check before any data is loaded. Models and datasets
read their options from the validated config: no default lives anywhere else.

`python -m benchmark --cfg job [overrides]` prints the composed config with every value."""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from benchmark.checks import (
    ANY_NUMBER, BETAS, BOOL, CHECK, DEVICE, ENCODING, FRACTION, ON_OFF_AUTO, OPEN_FRACTION, OPTIONAL_TEXT, RESUME,
    TEXT, TRACKING_URI, Check, ConfigError, choice, integer, number, option, optional, refuse,
)
from benchmark.checks import COUNT_MAP, NAME_MAP, OPTIONAL_NUMBER, name_list, name_subset
from benchmark.names import (
    AMP_MODES, FIELD_FORMS, L2_SCOPES, LOADERS, MODELS, SEQUENCE_FORMS, TUNE_PRUNERS, WEIGHT_DECAYS,
)
# The models' options live with the models (models/options.py, models/baselines.py); they are the schemas of
# model=<name> and ablation=<name>, and are named here too for the config layer and the tests.
from models.baselines import DCN, DIEN, DIN, LR, WideDeep, DeepFM, XDeepFM  # noqa: F401
from models.options import FM, MIAN, Ablation, Control, MaxSim, Model, ProductAttn, TensorFact  # noqa: F401
from models.registry import REGISTRY


# ---------------------------------------------------------------------------------------------- root
@dataclass
class Tracking:
    uri: Any = option(None, TRACKING_URI)           # null: $MLFLOW_TRACKING_URI, else sqlite:///<paths.tracking_db>
    experiment: Any = option("mian-benchmark", TEXT)
    parent_run_id: Any = option(None, OPTIONAL_TEXT)  # set by multirun sweeps: the job's run becomes a child of it
    log_model: Any = option(False, BOOL)            # true: the best weights are logged as an MLflow PyTorch model
    flush_timeout_s: float = option(60.0, number(0.0))  # at a job's end, how long to wait for a silent server


OPTIONAL_COUNT = Check(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                       "must be null or an integer >= 1")


@dataclass
class Tune:
    """The tuning track (benchmark/tune.py, README "Tuning"): where a study lives and its budget. `protocol=tuned`
    reads the best trial of the study named here (null: the one of this model and dataset)."""

    study: Any = option(None, OPTIONAL_TEXT)         # null: <dataset>-<model>-<variant>[-<reading>...]
    storage: Any = option(None, OPTIONAL_TEXT)       # Optuna RDB URL; null: sqlite:///<state root>/optuna.db
    trials: int = option(20, integer(0))             # the study's budget: trials per arm, the same for every arm
    max_epochs: int = option(10, integer(1))         # the budget: every trial's trainer.max_epochs
    startup_trials: Any = option(None, OPTIONAL_COUNT)  # TPE's random trials first; null: trials // 2, at most 10
    pruner: str = option("median", choice(*TUNE_PRUNERS))  # on per-epoch validation AUC
    sampler_seed: int = option(0, integer(0))        # TPE's seed (a parallel worker adds its index)
    n_jobs: int = option(1, integer(1))              # worker processes on this machine (joblib), one storage
    space: Any = option(None, OPTIONAL_TEXT)         # folder of the search spaces; null: conf/search
    applied: Any = None                              # set by protocol=tuned: the best trial's number, value, params


@dataclass
class Root:
    """The top of the config; the groups (model, dataset, ...) have schemas of their own, per option."""

    seed: int = option(0, integer(0))                # training seed: initialisation and data order
    embedding_dim: int = option(16, integer(1))      # the same for every model
    experiment_name: Any = option(None, OPTIONAL_TEXT)  # set by conf/experiment/*.yaml
    protocol_name: Any = option("shared", TEXT)      # set by conf/protocol/*.yaml
    tracking: Tracking = field(default_factory=Tracking)
    tune: Tune = field(default_factory=Tune)
    # the protocol's own values for this job's model: what a run's `protocol` tag compares the trainer with
    protocol: ProtocolValues = field(default_factory=lambda: ProtocolValues())
    model: Any = MISSING
    dataset: Any = MISSING
    trainer: Any = MISSING
    paths: Any = MISSING
    ablation: Any = MISSING


@dataclass
class Trainer:
    """The shared training protocol (paper Section 4.3 where it says; our choice where it does not)."""

    max_epochs: int = option(10, integer(1))
    patience: int = option(2, integer(1))            # early stopping on validation AUC; best weights restored
    batch_size: int = option(128, integer(1))
    eval_batch_size: int = option(8192, integer(1))  # 1024 is faster on a CPU (README)
    lr: float = option(1.0e-3, number(0.0, low_open=True))  # Adam
    betas: List[float] = option([0.9, 0.999], BETAS)
    l2: float = option(1.0e-3, number(0.0))          # L2 coefficient, for every model
    l2_scope: str = option("dense", choice(*L2_SCOPES))  # dense: every non-embedding parameter | kernels: weights only
    l2_embedding: float = option(0.0, number(0.0))   # L2 on the embedding tables (as DeepCTR's l2_reg_embedding)
    weight_decay: str = option("coupled", choice(*WEIGHT_DECAYS))  # coupled: inside Adam | decoupled: AdamW's
    device: str = option("auto", DEVICE)
    cuda_graph: Any = option("auto", ON_OFF_AUTO)    # capture the training step as one CUDA graph where safe
    amp: str = option("none", choice(*AMP_MODES))
    compile: Any = option(False, BOOL)               # torch.compile the training forward
    progress: Any = option("auto", ON_OFF_AUTO)      # progress bar per epoch: auto = only on a terminal
    resume: Any = option("auto", RESUME)             # auto: continue from this job's checkpoint if left | false | path
    checkpoint_dir: Any = option(None, OPTIONAL_TEXT)  # null: paths.checkpoint_dir


@dataclass
class ProtocolValues:
    """The `protocol` node: the values the protocol itself gives this job's model, kept beside the ones the job
    trains with for comparison only (nothing trains with them). They are the schemas' defaults under
    conf/protocol_model/<protocol>_<model>.yaml, which conf/config.yaml composes twice: once over the job's
    `trainer` and `model`, once under this node. A run's `protocol` tag (benchmark/tracking/record.py) is
    `protocol_name` and each knob where the job's `trainer` departs from `protocol.trainer`: a value set on the
    command line, or by a protocol option that is the named protocol with one knob changed (shared_decoupled).
    A protocol of its own that changes a trainer value in conf/protocol/<name>.yaml sets it here too
    (`protocol: {trainer: {max_epochs: 3}}`, and `trainer: {max_epochs: ${protocol.trainer.max_epochs}}`), or its
    runs' tags name that value as set apart."""

    trainer: Trainer = field(default_factory=Trainer)
    model: Any = None  # the model values the protocol sets (protocol=library: DeepCTR-Torch's); null: none


@dataclass
class Paths:
    """Where a job's state goes (benchmark/paths.py): conf/paths/default.yaml sets the folders."""

    root: Any = option(MISSING, TEXT)
    tracking_db: Any = option(MISSING, TEXT)
    checkpoint_dir: Any = option(MISSING, TEXT)
    raw_dir: Any = option(MISSING, TEXT)
    cache_dir: Any = option(MISSING, TEXT)
    outputs: Any = option(MISSING, TEXT)
    multirun: Any = option(MISSING, TEXT)


# ---------------------------------------------------------------------------------------------- models
# Each model's options are its own (models/options.py, models/baselines.py); the registry lists them.
MODEL_SCHEMAS: dict[str, type[Model]] = {name: s.options for name, s in REGISTRY.items()}


# ---------------------------------------------------------------------------------------------- datasets
@dataclass
class Effects:
    """Synthetic only: the logit change per standard deviation of each planted score (conf/effects/)."""

    sequence: float = option(1.0, ANY_NUMBER)
    user: float = option(1.0, ANY_NUMBER)
    context: float = option(1.0, ANY_NUMBER)


@dataclass
class Dataset:
    LOADER: ClassVar[str] = ""
    name: Any = option(MISSING, TEXT)
    loader: str = option(MISSING, choice(*LOADERS))
    seed: int = option(0, integer(0))              # data seed, distinct from the training seed
    max_len: int = option(30, integer(1))          # history length T
    effects: Optional[Effects] = None              # planted effects: dataset=synthetic only

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        if node.get("effects") is not None and node.loader != "synthetic":
            raise ConfigError(f"dataset.effects (the effects= option) applies to dataset=synthetic only, not "
                              f"dataset={node.name}: drop the effects override")


def check_split_fractions(node: DictConfig, limit: float) -> None:
    total = node.valid_fraction + node.test_fraction
    if total >= limit:
        raise ConfigError(f"dataset.valid_fraction + dataset.test_fraction = {total} is invalid: must be below {limit}")


@dataclass
class Synthetic(Dataset):
    """Generated from `seed` (benchmark/data/synthetic.py describes the planted effects)."""

    LOADER: ClassVar[str] = "synthetic"
    name: Any = option("synthetic", TEXT)
    loader: str = option("synthetic", choice(*LOADERS))
    effects: Optional[Effects] = field(default_factory=Effects)
    num_users: int = option(1000, integer(1))
    num_items: int = option(200, integer(4))
    num_categories: int = option(20, integer(4))
    num_groups: int = option(5, integer(1))          # item audience groups (category % num_groups)
    min_samples_per_user: int = option(10, integer(3))
    max_samples_per_user: int = option(30, integer(3))
    inactive_fraction: float = option(0.2, FRACTION)    # users whose histories hold 0-2 behaviours
    unrelated_fraction: float = option(0.3, FRACTION)   # candidates from a category the user never behaved on
    related_fraction: float = option(0.4, FRACTION)     # candidates from the category of a past behaviour
    stream_focus: float = option(0.8, FRACTION)         # share of a user's behaviours in their preferred categories
    base_logit: float = option(-0.5, ANY_NUMBER)
    valid_fraction: float = option(0.1, OPEN_FRACTION)
    test_fraction: float = option(0.1, OPEN_FRACTION)

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        super().check_across(node)
        check_split_fractions(node, 1.0)
        if node.max_samples_per_user < node.min_samples_per_user:
            raise ConfigError(f"dataset.max_samples_per_user={node.max_samples_per_user} is invalid: must be >= "
                              f"dataset.min_samples_per_user={node.min_samples_per_user}")
        if node.num_items < node.num_categories:
            raise ConfigError(f"dataset.num_items={node.num_items} is invalid: must be >= "
                              f"dataset.num_categories={node.num_categories}")
        if node.unrelated_fraction + node.related_fraction > 1:
            raise ConfigError("dataset.unrelated_fraction + dataset.related_fraction is invalid: must be <= 1")


@dataclass
class RawFiles(Dataset):
    raw_dir: Any = option(None, OPTIONAL_TEXT)     # null: <paths.raw_dir>/<name> (downloaded there when missing)
    download: Any = option(True, BOOL)             # fetch the original files when the default raw_dir lacks them
    on_bad_line: str = option("skip", choice("skip", "error"))  # skip: counted, logged | error: stop, naming the line
    max_bad_fraction: float = option(0.001, FRACTION)  # under skip: stop if more of a file's lines are malformed


@dataclass
class MovieLens(RawFiles):
    """MovieLens-1M, the stand-in for the paper's private commercial dataset (datasets/movielens/README.md)."""

    LOADER: ClassVar[str] = "movielens"
    name: Any = option("movielens", TEXT)
    loader: str = option("movielens", choice(*LOADERS))
    positive_threshold: int = option(4, integer(1, 5))  # label = rating >= 4
    history: str = option("positive", choice("positive", "all"))  # positive: earlier ratings >= threshold | all
    valid_fraction: float = option(0.1, OPEN_FRACTION)  # per user, time-ordered: the last 10% test, 10% before valid
    test_fraction: float = option(0.1, OPEN_FRACTION)
    zip_prefix_len: int = option(2, integer(1))        # user zip-code prefix length
    encoding: str = option("iso-8859-1", ENCODING)     # of movies.dat / users.dat

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        super().check_across(node)
        check_split_fractions(node, 0.7)


@dataclass
class Amazon(RawFiles):
    """An Amazon 5-core dataset (McAuley et al. 2015) under DIN's protocol; conf/dataset/<name>.yaml names its files."""

    LOADER: ClassVar[str] = "amazon"
    loader: str = option("amazon", choice(*LOADERS))
    reviews_file: Any = option(MISSING, TEXT)
    meta_file: Any = option(MISSING, TEXT)
    negatives: int = option(1, integer(0))             # sampled negatives per positive review
    min_user_reviews: int = option(2, integer(2))      # users with fewer reviews give no sample: dropped, counted
    on_missing_meta: str = option("unknown", choice("unknown", "skip", "error"))  # unknown: category 0 (counted)
    meta_encoding: str = option("utf-8", ENCODING)     # of the meta file's Python literals


@dataclass
class MovieLensSeq(RawFiles):
    """MovieLens-1M as next-item data under DIN's Amazon protocol, the stand-in for the paper's Amazon datasets
    (benchmark/data/movielens_seq.py, datasets/movielens/README.md)."""

    LOADER: ClassVar[str] = "movielens_seq"
    name: Any = option("movielens_seq", TEXT)
    loader: str = option("movielens_seq", choice(*LOADERS))
    negatives: int = option(1, integer(1))             # sampled unseen movies per positive
    split: str = option("fraction", choice("fraction", "last_one"))  # fraction: last 10% of a user's positives test
    valid_fraction: float = option(0.1, OPEN_FRACTION)  # split=fraction: per user, the 10% before test
    test_fraction: float = option(0.1, OPEN_FRACTION)
    encoding: str = option("iso-8859-1", ENCODING)     # of movies.dat / users.dat

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        super().check_across(node)
        check_split_fractions(node, 0.7)


CUSTOM_TIME_FIELDS = ("hour", "weekday", "month", "year")  # context fields derived from the timestamp (UTC)


@dataclass
class CustomColumns:
    """Which columns of the log hold what (README "Your own data"). Item, user and context fields are categorical;
    a field missing from the log is taken from the joined table of its kind (item_table, user_table)."""

    user_id: Any = option(MISSING, TEXT)               # whose event: gAUC, splits, histories
    item: List[str] = option(MISSING, name_list(1))    # the candidate's fields, its id first
    label: Any = option(None, OPTIONAL_TEXT)           # 0/1 (or a rating, with label_threshold); null: all positives
    timestamp: Any = option(None, OPTIONAL_TEXT)       # integer (unix) time; null: each user's rows are in time order
    user: List[str] = option([], name_list(0))         # user fields
    context: List[str] = option([], name_list(0))      # context fields
    split: Any = option(None, OPTIONAL_TEXT)           # split=column: the column naming each row's split


@dataclass
class CustomTable:
    """A file joined to the log by one key: item_table on the item id (columns.item[0]), user_table on user_id."""

    file: Any = option(MISSING, TEXT)                  # in raw_dir; csv/tsv/parquet as `format`, gzip allowed
    key: Any = option(MISSING, TEXT)                   # its column that matches the log's


@dataclass
class CustomSequence:
    """Where the behaviour sequence comes from. Item fields absent from `fields` are 0 (unknown) in the history."""

    source: str = option("log", choice("log", "column", "file", "none"))
    events: str = option("positive", choice("positive", "all"))  # log: the user's earlier clicks, or every event
    fields: Dict[str, str] = option({}, NAME_MAP)      # column, file: item field -> the column holding it
    delimiter: Any = option("^", TEXT)                 # column: separates a string column's ids (list columns: none)
    file: Any = option(None, OPTIONAL_TEXT)            # file: a behaviour log of its own
    user_id: Any = option(None, OPTIONAL_TEXT)         # file: its user column (null: columns.user_id's name)
    timestamp: Any = option(None, OPTIONAL_TEXT)       # file: its time column (null: columns.timestamp's name)


@dataclass
class Custom(Dataset):
    """Your own click log: CSV, TSV or Parquet files and the declared columns (benchmark/data/custom.py)."""

    LOADER: ClassVar[str] = "custom"
    name: Any = option("custom", TEXT)
    loader: str = option("custom", choice(*LOADERS))
    raw_dir: Any = option(None, OPTIONAL_TEXT)         # the folder of the files (null: <paths.raw_dir>/<name>)
    files: List[str] = option(MISSING, name_list(1))   # one log, or train, valid, test (split=files)
    format: str = option("auto", choice("auto", "csv", "tsv", "parquet"))  # auto: by extension (.gz ignored)
    delimiter: Any = option(None, OPTIONAL_TEXT)       # csv/tsv: null: ',' for csv, tab for tsv
    column_names: List[str] = option([], name_list(0))  # csv/tsv without a header row: the columns' names
    columns: CustomColumns = field(default_factory=CustomColumns)
    label_threshold: Any = option(None, OPTIONAL_NUMBER)  # label = value >= threshold (e.g. a rating 4)
    sorted: Any = option(False, BOOL)                  # true: each user's rows are in time order (checked)
    item_table: Optional[CustomTable] = None
    user_table: Optional[CustomTable] = None
    sequence: CustomSequence = field(default_factory=CustomSequence)
    time_fields: List[str] = option([], name_subset(*CUSTOM_TIME_FIELDS))  # context fields from the timestamp
    min_count: int = option(1, integer(1))             # rarer values of a field share its out-of-vocabulary id 1
    min_counts: Dict[str, int] = option({}, COUNT_MAP)  # per field, overriding min_count
    negatives: int = option(0, integer(0))             # > 0: sampled unseen items per positive row
    split: str = option("time", choice("time", "column", "files"))  # time: per user, the last rows test
    split_values: List[str] = option(["train", "valid", "test"], name_list(3))  # split=column: the three values
    valid_fraction: float = option(0.1, OPEN_FRACTION)  # split=time
    test_fraction: float = option(0.1, OPEN_FRACTION)
    on_bad_line: str = option("error", choice("skip", "error"))  # rows with the wrong number of fields
    max_bad_fraction: float = option(0.001, FRACTION)

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        super().check_across(node)
        check_split_fractions(node, 0.7)
        c, seq = node.columns, node.sequence
        item, user, context = list(c.item), list(c.user), list(c.context)
        if len(node.files) not in (1, 3) or (len(node.files) == 3) != (node.split == "files"):
            raise ConfigError(f"dataset.files={list(node.files)} is invalid with dataset.split={node.split}: one "
                              "file, or three (train, valid, test) with dataset.split=files")
        if node.split == "column" and c.split is None:
            raise ConfigError("dataset.split=column needs dataset.columns.split, the column naming each row's split")
        if len(node.split_values) != 3:
            raise ConfigError(f"dataset.split_values={list(node.split_values)} is invalid: must name train, valid "
                              "and test (three values)")
        fields = [*item, *user, *context, *node.time_fields]
        clash = sorted({f for f in fields if fields.count(f) > 1})
        if clash:
            raise ConfigError(f"dataset.columns: {clash} named more than once among the item, user, context and time "
                              "fields: a field belongs to one group")
        dotted = [f for f in fields if "." in f]
        if dotted:
            raise ConfigError(f"dataset.columns: field names must not contain '.' (model layers are named after "
                              f"them): {dotted}")
        if c.label is None and node.negatives == 0:
            raise ConfigError("dataset.columns.label=null (every row a positive) needs dataset.negatives >= 1")
        if node.label_threshold is not None and c.label is None:
            raise ConfigError("dataset.label_threshold needs dataset.columns.label")
        if c.timestamp is None and node.time_fields:
            raise ConfigError("dataset.time_fields needs dataset.columns.timestamp")
        unknown = sorted(set(node.min_counts) - set(item + user + context))
        if unknown:
            raise ConfigError(f"dataset.min_counts names {unknown}, not item, user or context fields")
        if seq.source in ("column", "file"):
            if not seq.fields or not set(seq.fields) <= set(item):
                raise ConfigError(f"dataset.sequence.fields={dict(seq.fields)} is invalid with dataset.sequence.source="
                                  f"{seq.source}: must map some item fields {item} to the columns holding them")
        elif seq.fields:
            raise ConfigError(f"dataset.sequence.fields applies to sequence.source=column or file, not {seq.source}")
        if seq.source == "file" and (seq.file is None or (c.timestamp is None and seq.timestamp is None)):
            raise ConfigError("dataset.sequence.source=file needs dataset.sequence.file (the behaviour log) and a "
                              "timestamp in both files (dataset.columns.timestamp, dataset.sequence.timestamp)")
        if seq.source == "file" and c.timestamp is None:
            raise ConfigError("dataset.sequence.source=file needs dataset.columns.timestamp: a sample's history is "
                              "the behaviours before its time")


@dataclass
class Calibrated(Dataset):
    """The calibrated synthetic benchmark for mechanisms (benchmark/data/calibrated.py): one planted effect of a
    chosen form, its strength calibrated to an oracle AUC; conf/mechanism/ picks the effect and form."""

    LOADER: ClassVar[str] = "calibrated"
    name: Any = option("calibrated", TEXT)
    loader: str = option("calibrated", choice(*LOADERS))
    tier: str = option("S", choice("S", "L"))      # S: 4,000 users, ~80k samples (a CPU) | L: 50,000, ~1M (a GPU)
    num_users: Optional[int] = option(None, optional(integer(1)))       # null: the tier's
    num_items: Optional[int] = option(None, optional(integer(4)))       # null: the tier's
    num_categories: Optional[int] = option(None, optional(integer(4)))  # null: the tier's
    effect: str = option("sequence", choice("sequence", "user", "context", "none"))
    form: str = option("max", choice(*SEQUENCE_FORMS, *FIELD_FORMS, "none"))  # which per effect: check_across
    temperature: float = option(0.1, number(0.0, low_open=True))  # form=softmax: of the similarity softmax
    strength: Optional[float] = option(None, optional(ANY_NUMBER))  # null: calibrated to target_auc
    target_auc: Optional[float] = option(0.70, optional(number(0.5, 1.0, low_open=True, high_open=True)))
    tolerance: float = option(0.01, number(0.0, low_open=True))     # |oracle AUC - target_auc| allowed
    max_strength: float = option(20.0, number(0.0, low_open=True))  # the bisection's upper end
    background: float = option(0.25, number(0.0))  # logit std of the first-order background the knock-out keeps
    base_logit: float = option(0.0, ANY_NUMBER)
    knockout: Any = option(False, BOOL)           # true: train/valid labels without the effect, test labels with it
    latent_dim: int = option(8, integer(1))
    field_rank: int = option(3, integer(1))       # user/context effects: the rank of the item side they see
    cluster_spread: float = option(0.25, number(0.0))  # item vectors around their category's direction
    min_interests: int = option(3, integer(1))
    max_interests: int = option(6, integer(1))
    interest_concentration: float = option(1.0, number(0.0, low_open=True))  # Dirichlet: small, one dominant
    stream_focus: float = option(0.85, FRACTION)   # share of a user's behaviours drawn from their interests
    related_fraction: float = option(0.5, FRACTION)  # candidates from one of the user's interests
    min_samples_per_user: int = option(10, integer(3))
    max_samples_per_user: int = option(30, integer(3))
    valid_fraction: float = option(0.1, OPEN_FRACTION)
    test_fraction: float = option(0.12, OPEN_FRACTION)
    holdout_samples: int = option(200_000, integer(1000))  # the calibration's held-out draw

    @classmethod
    def check_across(cls, node: DictConfig) -> None:
        from benchmark.data.calibrated import FORMS, TIERS

        super().check_across(node)
        check_split_fractions(node, 1.0)
        if node.form not in FORMS[node.effect]:
            raise ConfigError(f"dataset.form={node.form!r} is invalid for dataset.effect={node.effect!r}: must be "
                              f"one of {', '.join(FORMS[node.effect])} (conf/mechanism/ names the valid pairs)")
        for low, high in (("min_samples_per_user", "max_samples_per_user"), ("min_interests", "max_interests")):
            if node[high] < node[low]:
                raise ConfigError(f"dataset.{high}={node[high]} is invalid: must be >= dataset.{low}={node[low]}")
        categories = node.num_categories or TIERS[node.tier].num_categories
        items = node.num_items or TIERS[node.tier].num_items
        if node.max_interests > categories:
            raise ConfigError(f"dataset.max_interests={node.max_interests} is invalid: must be <= the "
                              f"{categories} categories (dataset.num_categories)")
        if items < categories:
            raise ConfigError(f"dataset.num_items={items} is invalid: must be >= the {categories} categories")


DATASET_SCHEMAS: dict[str, type[Dataset]] = {s.LOADER: s for s in (Synthetic, MovieLens, Amazon, MovieLensSeq,
                                                                    Custom, Calibrated)}


# ---------------------------------------------------------------------------------------------- registration
def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent), under `schema/`: `schema/config` for the root,
    `schema/trainer`, `schema/paths`, `schema/ablation`, `schema/model/<model>` and `schema/dataset/<loader>`.
    A YAML file names its schema first in its defaults list, e.g. `- /schema/model/mian@_here_`."""
    store = ConfigStore.instance()
    # `${models:}`: the registry's models but the controls, comma-separated in the tables' order, for the sweeps
    # of every model (conf/experiment/table2.yaml, efficiency.yaml): a registered baseline joins them by itself
    OmegaConf.register_new_resolver("models", lambda: ",".join(MODELS), replace=True)
    store.store(group="schema", name="config", node=Root)
    store.store(group="schema", name="trainer", node=Trainer)
    store.store(group="schema", name="paths", node=Paths)
    store.store(group="schema", name="ablation", node=Ablation)
    for name, schema in MODEL_SCHEMAS.items():
        store.store(group="schema/model", name=name, node=schema(name=name))  # type: ignore[call-arg]
    for loader, schema in DATASET_SCHEMAS.items():
        store.store(group="schema/dataset", name=loader, node=schema)


@functools.cache
def checked_fields(schema: type, prefix: str = "") -> tuple[tuple[str, Check], ...]:
    """('key', check) for every checked field of `schema`, nested schemas (tracking, effects) included; derived
    once per schema (validation and the fuzz tests ask for them on every config)."""
    out: list[tuple[str, Check]] = []
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        nested = [t for t in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(t)]
        if nested:
            out.extend(checked_fields(nested[0], f"{prefix}{f.name}."))
        elif CHECK in f.metadata:
            out.append((f"{prefix}{f.name}", f.metadata[CHECK]))
    return tuple(out)


register_configs()  # conf/ starts from these schemas: any compose after importing benchmark.config finds them
