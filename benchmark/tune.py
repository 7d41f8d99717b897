"""The tuning track: every arm gets the same budget of trials on validation, then its best configuration is
tested once over seeds (`protocol=tuned`). README "Tuning" has the commands.

    python -m benchmark.tune arm=din,deepfm,mian dataset=synthetic tune.trials=20 tune.max_epochs=10 \
        tune.storage=sqlite:///tuning/optuna.db [tune.n_jobs=2] [any job override]

An arm is an option of conf/arm/ or a model name (`mian` is MIAN with its defaults). Per arm: one Optuna study
(TPE sampler, median or Hyperband pruner on per-epoch validation AUC) named `<dataset>-<model>-<variant>
[-<reading>...]` (or `tune.study`), in the RDB storage `tune.storage` (a SQLite file by default; any database URL
for a shared one), and one parent MLflow run; each trial is a child run of the normal job (benchmark/run.py) with
the sampled values, `trainer.max_epochs=tune.max_epochs`, and no test evaluation. The objective is the trial's best
validation AUC. The search space is conf/search/shared.yaml under conf/search/<model>.yaml (`tune.space` names
another folder); it is checked against the arm's config before any trial runs.

Budget: `tune.trials` trials per arm, counted over the whole study: COMPLETE, PRUNED, RUNNING and trials that
failed on their own (a diverged loss, a bad combination) count; a trial interrupted or left by a dead process
(Optuna's heartbeat) does not, and a rerun of the same command runs it again. Several processes on one storage
(`tune.n_jobs`, or the same command on other machines against one database URL) share the budget exactly: a
process that draws a trial beyond it gives it up unrun (user attribute `surplus`).

What a study records (its user attributes) and refuses to change on a rerun: the search space, the epoch budget,
the pruner, the arm and every config value that is not searched (the data above all). `protocol=tuned` reads the
best trial back (`tuned_config`)."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from benchmark import CONFIG_DIR
from benchmark.config import ConfigError, validate_config
from benchmark.io import file_lock
from benchmark.machine import cpu_model, git_commit, package_versions
from benchmark.names import MODELS
from benchmark.paths import default_optuna_db
from benchmark.tracking import TrackingError, owner_tags, prepare_experiment, resolve_tracking_uri, sqlite_path

SPACE_DIR = CONFIG_DIR / "search"
SHARED_SPACE = "shared"
# Keys a search space may not hold: the budget is the same for every arm (tune.max_epochs), and the options that
# define an arm (MIAN's readings and ablations) are tuned as arms of their own (arm=mian,mian_product).
BUDGET_KEYS = ("trainer.max_epochs",)
ARM_KEYS = ("model.encoder", "model.ibim_score", "model.field_score", "model.e_b_pool", "model.positional",
            "model.readout", "ablation.")
# Config keys that may differ between the processes and reruns of one study (where things go, how fast).
FREE_KEYS = ("tracking.", "paths.", "tune.", "hydra.", "trainer.device", "trainer.cuda_graph", "trainer.compile",
             "trainer.progress", "trainer.resume", "trainer.checkpoint_dir", "trainer.eval_batch_size")
HEARTBEAT_S, GRACE_S = 30, 120  # a RUNNING trial without a heartbeat for GRACE_S is failed (its process died)
TPE_STARTUP_MAX = 10


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return trial.state.name


# ------------------------------------------------------------------------------------------ search spaces
@dataclasses.dataclass(frozen=True)
class Param:
    """One searched config key: a float or int range (optionally log-scaled, an int with a step) or a choice.
    Choices that are lists (MLP widths) are held by Optuna as their JSON text."""

    key: str
    kind: str  # float | int | choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        return any(isinstance(c, list) for c in self.choices)

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "float":
            return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                        step=self.step or 1)
        return optuna.distributions.CategoricalDistribution(
            [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices))

    def decode(self, raw: Any) -> Any:
        """The config value of Optuna's `raw` value."""
        return json.loads(raw) if self.encoded else raw

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=self.step or 1, log=self.log)
        choices = self.distribution().choices  # type: ignore[attr-defined]
        return self.decode(trial.suggest_categorical(self.key, list(choices)))

    def corners(self) -> list[Any]:
        """The values that bound the range: both ends, or every choice (each must make a valid config)."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def describe(self) -> dict[str, Any]:
        """As the study records it (JSON)."""
        described: dict[str, Any] = {"key": self.key, "kind": self.kind}
        if self.kind == "choice":
            described["choices"] = list(self.choices)
        else:
            described.update({"low": self.low, "high": self.high, "log": self.log})
            if self.step is not None:
                described["step"] = self.step
        return described

    @classmethod
    def from_description(cls, described: dict[str, Any]) -> Param:
        fields = dict(described)
        fields["choices"] = tuple(fields.get("choices", ()))
        return cls(**fields)


def parse_param(key: str, node: Any, where: str) -> Param:
    """A Param from its YAML form ({float: [lo, hi], log: true} | {int: [lo, hi], step: n} | {choice: [...]}); a
    ConfigError naming the key and the file for anything else."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"search space {where}: {key}: {why}")

    if not isinstance(node, dict):
        raise bad(f"{node!r} is not a range: give {{float: [low, high]}}, {{int: [low, high]}} or {{choice: [...]}}")
    kinds = [k for k in ("float", "int", "choice") if k in node]
    unknown = sorted(set(node) - {"float", "int", "choice", "log", "step"})
    if unknown:
        raise bad(f"unknown field {unknown[0]!r} (allowed: float, int, choice, log, step)")
    if len(kinds) != 1:
        raise bad("give exactly one of float, int, choice")
    kind = kinds[0]
    if kind == "choice":
        choices = node["choice"]
        if not isinstance(choices, list) or not choices:
            raise bad("choice must be a non-empty list")
        if len({json.dumps(c, sort_keys=True) for c in choices}) != len(choices):
            raise bad(f"choice {choices} lists a value twice")
        if "log" in node or "step" in node:
            raise bad("log and step apply to float and int ranges, not to a choice")
        return Param(key, kind, choices=tuple(choices))
    bounds = node[kind]
    is_number = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)) if kind == "float" else \
        (lambda v: isinstance(v, int) and not isinstance(v, bool))
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(is_number(b) for b in bounds):
        raise bad(f"{kind} must be [low, high] of {'numbers' if kind == 'float' else 'integers'}, not {bounds!r}")
    low, high = bounds
    if not math.isfinite(low) or not math.isfinite(high) or low >= high:
        raise bad(f"the range [{low}, {high}] is empty or contradictory: low must be below high")
    log = node.get("log", False)
    if not isinstance(log, bool):
        raise bad(f"log must be true or false, not {log!r}")
    if log and low <= 0:
        raise bad(f"a log range needs low > 0, not {low}")
    step = node.get("step")
    if step is not None:
        if kind != "int" or not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise bad("step applies to int ranges and must be an integer >= 1")
        if log and step != 1:
            raise bad("a log int range takes no step")
    return Param(key, kind, float(low) if kind == "float" else int(low), float(high) if kind == "float" else int(high),
                 log, step)


def load_space(model: str, folder: Path | str | None = None) -> dict[str, Param]:
    """The search space of `model`: <folder>/shared.yaml under <folder>/<model>.yaml (a key set to null in the
    model's file drops a shared one); ConfigError when a file is malformed or the space is empty."""
    folder = Path(folder) if folder else SPACE_DIR
    if not folder.is_dir():
        raise ConfigError(f"tune.space={str(folder)!r} is not a folder of search spaces (shared.yaml, <model>.yaml)")
    merged: dict[str, tuple[Any, str]] = {}
    for name in (SHARED_SPACE, model):
        path = folder / f"{name}.yaml"
        if not path.is_file():
            if name == SHARED_SPACE:
                continue
            raise ConfigError(f"there is no search space for model={model}: write {path.name} in {folder} "
                              "(`{}` when the shared one is all it needs)")
        raw = OmegaConf.to_container(OmegaConf.load(path)) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"search space {path.name}: must map config keys to ranges")
        for key, node in raw.items():
            merged[str(key)] = (node, path.name)
    space = {key: parse_param(key, node, where) for key, (node, where) in merged.items() if node is not None}
    if not space:
        raise ConfigError(f"the search space of model={model} is empty ({folder}/shared.yaml and {model}.yaml "
                          "leave no key): give at least one key a range")
    return space


def apply_values(cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """A copy of `cfg` with each dotted key set to its value; ConfigError naming the key for a value of the wrong
    type for its schema."""
    out = copy.deepcopy(cfg)
    for key, value in values.items():
        try:
            OmegaConf.update(out, key, value, merge=False)
        except OmegaConfBaseException as error:
            first = (str(error).splitlines() or ["?"])[0]
            raise ConfigError(f"{key}={value!r} is invalid: {first}") from error
    return out


def check_space(space: dict[str, Param], cfg: DictConfig) -> None:
    """Before any trial: every key is an option of this arm's config, none is the budget or defines the arm, and
    both ends of every range (every choice) make a valid config."""
    for key, param in space.items():
        if key in BUDGET_KEYS:
            raise ConfigError(f"search space: {key} is the budget, the same for every arm: set tune.max_epochs instead")
        if any(key == k or (k.endswith(".") and key.startswith(k)) for k in ARM_KEYS):
            raise ConfigError(f"search space: {key} defines an arm (a reading or ablation of MIAN): tune each value "
                              "as an arm of its own (e.g. arm=mian,mian_product)")
        if OmegaConf.select(cfg, key, default=dataclasses.MISSING) is dataclasses.MISSING:
            group, _, name = key.partition(".")
            option = cfg.model.name if group == "model" else cfg.get(group, {}).get("name", group)
            raise ConfigError(f"search space: {key} is not an option of this arm's config ({group}={option}); "
                              f"see `python -m benchmark model={cfg.model.name} --cfg job`")
        for value in param.corners():
            try:
                validate_config(apply_values(cfg, {key: value}))
            except ConfigError as error:
                raise ConfigError(f"search space: {key}={value!r} makes an invalid config: {error}") from error


# ------------------------------------------------------------------------------------------ studies
def arm_key(cfg: DictConfig) -> str:
    """The arm a config is: model, variant and MIAN's non-default readings, e.g. `din-default`, `mian-full-product`
    (the same words as a run's name)."""
    from benchmark.run import MIAN_READING_DEFAULTS, variant_of

    readings = ([str(cfg.model[k]) for k, default in MIAN_READING_DEFAULTS.items() if str(cfg.model[k]) != str(default)]
                if cfg.model.name == "mian" else [])
    return "-".join([str(cfg.model.name), variant_of(cfg), *readings])


def study_name(cfg: DictConfig) -> str:
    return str(cfg.tune.study or f"{cfg.dataset.name}-{arm_key(cfg)}")


def storage_url(cfg: DictConfig) -> str:
    return str(cfg.tune.storage or f"sqlite:///{default_optuna_db()}")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study storage at `url` (a SQLite file's folder is created); ConfigError naming tune.storage when it
    cannot be opened."""
    kwargs: dict[str, Any] = {}
    db = sqlite_path(url)
    try:
        if db is not None:
            kwargs = {"connect_args": {"timeout": 120}}  # parallel writers wait for each other's transactions
        with storage_lock(url), warnings.catch_warnings():  # the first opening creates the tables
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat's
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except Exception as error:  # noqa: BLE001 - any failure here means the storage is unusable
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"tune.storage={url!r} cannot be opened: {first} (give a database URL such as "
                          "sqlite:///<folder>/optuna.db or postgresql://user@host/db)") from error


def fixed_values(cfg: DictConfig, space: dict[str, Param]) -> dict[str, str]:
    """Every config value a study holds fixed: all but the searched keys and FREE_KEYS, as text."""
    from benchmark.tracking import flatten

    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {key: json.dumps(value, sort_keys=True, default=str) for key, value in sorted(flatten(container).items())
            if key not in space and not key.startswith(FREE_KEYS) and key not in FREE_KEYS}


def first_difference(before: dict[str, Any], now: dict[str, Any]) -> str | None:
    return next((k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)), None)


def check_study_record(study: optuna.Study, record: dict[str, Any]) -> None:
    """A study that already ran must have been started with the same space, budget, pruner, arm and fixed config;
    ConfigError naming the first key that changed."""
    attrs = study.user_attrs
    if "space" not in attrs:
        return
    name = study.study_name
    space_key = first_difference(attrs["space"], record["space"])
    if space_key is not None:
        raise ConfigError(f"study {name!r}: the search space of {space_key} changed since the study started "
                          f"(was {attrs['space'].get(space_key)}, now {record['space'].get(space_key)}): restore it, "
                          "or start another study (tune.study=<new name>)")
    for key in ("max_epochs", "pruner", "arm"):
        if attrs.get(key) != record[key]:
            shown = f"tune.{key}" if key != "arm" else "arm"
            raise ConfigError(f"study {name!r}: {shown} was {attrs.get(key)!r} when it started, now {record[key]!r}: "
                              "every trial of a study has the same budget; use another tune.study to change it")
    fixed_key = first_difference(attrs.get("config", {}), record["config"])
    if fixed_key is not None:
        raise ConfigError(f"study {name!r}: {fixed_key} was {attrs['config'].get(fixed_key)} when it started, now "
                          f"{record['config'].get(fixed_key)}: a study's trials share every value it does not search; "
                          "use another tune.study")


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Finished, pruned, running, or failed on its own: it used (or is using) one trial of the budget."""
    if trial.user_attrs.get("surplus"):
        return False
    if trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                       optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
        return True
    return trial.state == optuna.trial.TrialState.FAIL and "error" in trial.user_attrs


def budget_used(study: optuna.Study, before: int | None = None) -> int:
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False)
               if before is None or t.number < before)


# ------------------------------------------------------------------------------------------ one arm
@dataclasses.dataclass
class ArmPlan:
    """Everything a worker process needs to run trials of one arm (picklable)."""

    arm: str
    overrides: list[str]  # the job's overrides, the arm's first
    study: str
    storage: str
    tracking_uri: str
    experiment: str  # the MLflow experiment's name
    trials: int
    max_epochs: int
    pruner: str
    startup_trials: int
    sampler_seed: int
    space: dict[str, dict[str, Any]]  # Param.describe() per key
    record: dict[str, Any]
    command: str
    n_jobs: int = 1
    experiment_id: str = ""
    parent_run_id: str = ""

    def params(self) -> dict[str, Param]:
        return {key: Param.from_description(d) for key, d in self.space.items()}


def arm_overrides(arm: str) -> list[str]:
    if (CONFIG_DIR / "arm" / f"{arm}.yaml").is_file():
        return [f"arm={arm}"]
    if arm in MODELS:
        return [f"model={arm}"]
    known = sorted(p.stem for p in (CONFIG_DIR / "arm").glob("*.yaml"))
    raise ConfigError(f"arm={arm!r} is neither an option of conf/arm/ ({', '.join(known)}) nor a model "
                      f"({', '.join(MODELS)})")


def compose_job(overrides: list[str]) -> DictConfig:
    """The job config `python -m benchmark <overrides>` would run, through Hydra's compose API."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def trial_base(cfg: DictConfig) -> DictConfig:
    """The config every trial starts from: the budget's epochs, a fresh start (a trial never resumes another's
    checkpoint)."""
    return apply_values(cfg, {"trainer.max_epochs": int(cfg.tune.max_epochs), "trainer.resume": False})


def plan_arm(arm: str, overrides: list[str], command: str) -> ArmPlan:
    """Compose and check one arm (config, search space, storage, the study's record if it exists) without
    starting anything."""
    arm_args = arm_overrides(arm)
    job_overrides = ["experiment=tune", *arm_args, *overrides]
    try:
        cfg = compose_job(job_overrides)
    except Exception as error:  # noqa: BLE001 - Hydra's composition errors name the override
        raise ConfigError(f"arm={arm}: the config does not compose: {(str(error).splitlines() or ['?'])[0]}") from error
    validate_config(cfg)
    base = trial_base(cfg)
    space = load_space(str(cfg.model.name), cfg.tune.space)
    check_space(space, base)
    trials, max_epochs = int(cfg.tune.trials), int(cfg.tune.max_epochs)
    startup = int(cfg.tune.startup_trials or max(1, min(TPE_STARTUP_MAX, trials // 2)))
    record = {"space": {k: p.describe() for k, p in space.items()}, "max_epochs": max_epochs,
              "pruner": str(cfg.tune.pruner), "arm": arm_key(cfg), "config": fixed_values(base, space)}
    url, name = storage_url(cfg), study_name(cfg)
    storage = open_storage(url)
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        check_study_record(existing, record)
    uri = resolve_tracking_uri(cfg.tracking.uri, OmegaConf.select(cfg, "paths.tracking_db"))
    return ArmPlan(arm, [*arm_args, *overrides], name, url, uri, str(cfg.tracking.experiment), trials, max_epochs,
                   str(cfg.tune.pruner), startup, int(cfg.tune.sampler_seed), record["space"], record, command,
                   int(cfg.tune.n_jobs))


def make_pruner(plan: ArmPlan) -> optuna.pruners.BasePruner:
    if plan.pruner == "median":  # at any epoch (steps are epochs, from 1), once `startup_trials` trials finished
        return optuna.pruners.MedianPruner(n_startup_trials=plan.startup_trials, n_warmup_steps=1)
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.max_epochs, reduction_factor=3)
    return optuna.pruners.NopPruner()


def load(plan: ArmPlan, worker: int = 0, storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """The plan's study with its sampler (seeded per worker) and pruner, created when it does not exist."""
    sampler = optuna.samplers.TPESampler(seed=plan.sampler_seed + worker, n_startup_trials=plan.startup_trials)
    return optuna.create_study(study_name=plan.study, storage=storage or open_storage(plan.storage),
                               direction="maximize", sampler=sampler, pruner=make_pruner(plan), load_if_exists=True)


def storage_lock(url: str) -> contextlib.AbstractContextManager[Any]:
    """A lock beside a SQLite storage's file (processes of one machine create its tables, a study and its parent
    run one at a time); nothing for a database server."""
    db = sqlite_path(url)
    if db is None:
        return contextlib.nullcontext()
    db.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(db.with_name(db.name + ".lock"))


def start_arm(plan: ArmPlan) -> optuna.Study:
    """Create (or reopen) the study and its parent MLflow run; the study records what it was started with."""
    plan.experiment_id = prepare_experiment(plan.tracking_uri, plan.experiment)
    storage = open_storage(plan.storage)
    with storage_lock(plan.storage):
        return _start(plan, storage)


def _start(plan: ArmPlan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    study = load(plan, storage=storage)
    check_study_record(study, plan.record)  # another process may have started it since plan_arm
    if "space" not in study.user_attrs:
        for key, value in plan.record.items():
            study.set_user_attr(key, value)
    study.set_user_attr("trials", max(plan.trials, int(study.user_attrs.get("trials", 0))))
    plan.parent_run_id = parent_run(plan, study)
    return study


def parent_run(plan: ArmPlan, study: optuna.Study) -> str:
    """The study's parent MLflow run in this store: the one it recorded (set RUNNING again), else a new one. Two
    launchers starting the same study at once: the one whose run the study recorded last keeps it, the other's
    (childless) run is deleted."""
    client = MlflowClient(plan.tracking_uri)
    recorded = study.user_attrs.get("mlflow_parent_run_id")
    if recorded and study.user_attrs.get("mlflow_tracking_uri") == plan.tracking_uri:
        try:
            run = client.get_run(recorded)
            if run.info.lifecycle_stage == "active":
                if run.info.status != "RUNNING":
                    client.update_run(recorded, status="RUNNING")
                return str(recorded)
        except mlflow.exceptions.MlflowException:
            pass
    tags = {"sweep": "true", "experiment_name": "tune", "tune_study": plan.study, "tune_arm": plan.arm,
            "tune_storage": plan.storage, "tune_trials": str(plan.trials), "tune_max_epochs": str(plan.max_epochs),
            "tune_pruner": plan.pruner, "tune_sampler": f"TPE (seed {plan.sampler_seed}, {plan.startup_trials} "
            "random trials first)", "tune_space": json.dumps(plan.space, sort_keys=True), "command": plan.command,
            "git_commit": git_commit(),
            "mlflow.note.content": f"Tuning study `{plan.study}` ({plan.storage}): one child run per trial."}
    run = client.create_run(plan.experiment_id, run_name=f"tune-{plan.study}", tags=tags)
    study.set_user_attr("mlflow_parent_run_id", run.info.run_id)
    study.set_user_attr("mlflow_tracking_uri", plan.tracking_uri)
    time.sleep(0.5)
    if study.user_attrs.get("mlflow_parent_run_id") != run.info.run_id:  # another launcher won
        client.delete_run(run.info.run_id)
        return str(study.user_attrs["mlflow_parent_run_id"])
    return str(run.info.run_id)


class _TrialFailed(Exception):
    """A trial failed on its own (its run is FAILED with the reason): recorded FAIL, the study goes on."""


class _Surplus(Exception):
    """The budget was used up by other processes meanwhile: this trial is given up unrun."""


def trial_tags(plan: ArmPlan, number: int, values: dict[str, Any]) -> dict[str, str]:
    tags = {"tune_study": plan.study, "tune_trial": str(number), "tune_arm": plan.arm, "tune_trials": str(plan.trials),
            "tune_max_epochs": str(plan.max_epochs), "tune_pruner": plan.pruner, "protocol": "tuning trial"}
    tags.update({f"tune_param.{key}": json.dumps(value) for key, value in values.items()})
    tags.update({"command": plan.command, "packages": package_versions(), "cpu_model": cpu_model()})
    return tags


def _trial_run(plan: ArmPlan, number: int) -> str | None:
    client = MlflowClient(plan.tracking_uri)
    runs = client.search_runs([plan.experiment_id], filter_string=(
        f"tags.tune_study = '{plan.study}' and tags.tune_trial = '{number}'"), order_by=["attributes.start_time DESC"],
        max_results=1)
    return runs[0].info.run_id if runs else None


def run_trial(plan: ArmPlan, base: DictConfig, trial: optuna.Trial) -> float:
    """One trial: sample, run the job without test, report each epoch's validation AUC (pruning), return the best."""
    from benchmark.run import JobHooks, run_job
    from benchmark.trainer import StopTraining

    if budget_used(trial.study, before=trial.number) >= plan.trials:
        trial.set_user_attr("surplus", True)
        raise _Surplus()
    values = {key: param.suggest(trial) for key, param in plan.params().items()}
    cfg = apply_values(base, values)
    cfg.tracking.parent_run_id = plan.parent_run_id
    pruned: list[int] = []

    def report(epoch: int, record: dict[str, float]) -> None:
        if math.isfinite(record["val_auc"]):
            trial.report(record["val_auc"], epoch)
        if epoch < plan.max_epochs and trial.should_prune():
            pruned.append(epoch)
            raise StopTraining()

    hooks = JobHooks(tags=trial_tags(plan, trial.number, values), on_epoch=report, evaluate_test=False,
                     name_suffix=f"-trial{trial.number}")
    state = "FAIL"
    try:
        final = run_job(cfg, hooks)
        best = float(final["best_val_auc"])
        trial.set_user_attr("best_val_auc", best)
        trial.set_user_attr("epochs_run", int(final["epochs_run"]))
        if not math.isfinite(best):
            trial.set_user_attr("error", "the best validation AUC is not a number")
            raise _TrialFailed("the best validation AUC is not a number")
        state = "PRUNED" if pruned else "COMPLETE"
    except (TrackingError, OSError, KeyboardInterrupt) as error:  # the store, the data or the user: not the trial's
        trial.set_user_attr("interrupted", f"{type(error).__name__}: {str(error)[:500]}")
        raise
    except _TrialFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the trial's own failure: recorded, the study goes on
        trial.set_user_attr("error", f"{type(error).__name__}: {str(error)[:500]}")
        raise _TrialFailed(str(error)) from error
    finally:
        run_id = _trial_run(plan, trial.number)
        if run_id is not None:
            trial.set_user_attr("mlflow_run_id", run_id)
            MlflowClient(plan.tracking_uri).set_tag(run_id, "tune_state", state)
    if pruned:
        raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
    return best


def run_worker(plan: ArmPlan, worker: int = 0) -> int:
    """Run trials of the plan's study until its budget is used (by this process and the others); returns how many
    this process ran."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if worker:
        import torch

        torch.set_num_threads(1)
    base = trial_base(compose_job(["experiment=tune", *plan.overrides]))
    study = load(plan, worker)
    ran = 0
    while budget_used(study) < plan.trials:
        surplus: list[bool] = []

        def objective(trial: optuna.Trial) -> float:
            try:
                return run_trial(plan, base, trial)
            except _Surplus:
                surplus.append(True)
                raise

        study.optimize(objective, n_trials=1, catch=(_TrialFailed, _Surplus), gc_after_trial=False)
        if surplus:
            break
        ran += 1
    return ran


def finish_arm(plan: ArmPlan, study: optuna.Study) -> str:
    """End the parent run FINISHED with the best trial once the budget is used and no trial runs; a summary line."""
    trials = study.get_trials(deepcopy=False)
    states = {s: sum(_state(t) == s for t in trials if counts_toward_budget(t)) for s in ("COMPLETE", "PRUNED", "FAIL")}
    done = budget_used(study) >= plan.trials and not any(_state(t) == "RUNNING" for t in trials)
    client = MlflowClient(plan.tracking_uri)
    complete = [t for t in trials if _state(t) == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    if best is not None:
        params = {key: Param.from_description(plan.space[key]).decode(v) for key, v in best.params.items()}
        client.log_metric(plan.parent_run_id, "best_val_auc", float(best.value))
        client.set_tag(plan.parent_run_id, "tune_best_trial", str(best.number))
        client.set_tag(plan.parent_run_id, "tune_best_params", json.dumps(params, sort_keys=True))
    for state, count in states.items():
        client.log_metric(plan.parent_run_id, f"trials_{state.lower()}", count)
    if done:
        client.set_terminated(plan.parent_run_id, "FINISHED")
    head = f"{plan.study}: {sum(states.values())}/{plan.trials} trials ({states['COMPLETE']} complete, " \
           f"{states['PRUNED']} pruned, {states['FAIL']} failed), at most {plan.max_epochs} epochs each"
    if best is None:
        return head + "; no trial finished"
    return head + f"; best validation AUC {best.value:.4f} (trial {best.number}): " + json.dumps(params)


# ------------------------------------------------------------------------------------------ protocol=tuned
def tuned_config(cfg: DictConfig) -> DictConfig:
    """`cfg` with the best trial of its study applied (its parameters and the study's epoch budget), recorded in
    `tune.applied`; ConfigError when the study is missing, of another arm or data, or has no finished trial."""
    name, url = study_name(cfg), storage_url(cfg)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ConfigError(f"tune.study={name!r}: there is no such study in tune.storage={url!r}; tune it first "
                          f"(python -m benchmark.tune arm=<arm> dataset={cfg.dataset.name} tune.storage=...) or "
                          "name the study with tune.study") from None
    attrs = study.user_attrs
    if attrs.get("arm") != arm_key(cfg):
        raise ConfigError(f"tune.study={name!r} tuned the arm {attrs.get('arm')!r}, this job is {arm_key(cfg)!r}: "
                          "pick the study of this model (tune.study) or this study's model")
    space = {key: Param.from_description(d) for key, d in attrs.get("space", {}).items()}
    mine = fixed_values(cfg, space)
    data_key = first_difference({k: v for k, v in attrs.get("config", {}).items() if k.startswith("dataset.")},
                                {k: v for k, v in mine.items() if k.startswith("dataset.")})
    if data_key is not None:
        raise ConfigError(f"tune.study={name!r} was tuned with {data_key}={attrs['config'].get(data_key)}, this job "
                          f"has {mine.get(data_key)}: tune on the data you test on")
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "COMPLETE"]
    if not complete:
        raise ConfigError(f"tune.study={name!r} has no finished trial yet: run python -m benchmark.tune first")
    best = max(complete, key=lambda t: t.value)
    values = {key: space[key].decode(raw) for key, raw in best.params.items()}
    values["trainer.max_epochs"] = int(attrs["max_epochs"])
    out = apply_values(cfg, values)
    nested: dict[str, Any] = {}
    for key, value in values.items():
        group, _, rest = key.partition(".")
        nested.setdefault(group, {})[rest] = value
    out.tune.study = name
    out.tune.applied = {"trial": best.number, "best_val_auc": float(best.value), "params": nested}
    validate_config(out)
    return out


# ------------------------------------------------------------------------------------------ command line
def split_arms(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the arms of `arm=a,b,...`, the other overrides); ConfigError without an arm."""
    arms: list[str] = []
    rest = []
    for arg in argv:
        if arg.startswith("arm="):
            arms += [a.strip() for a in arg.removeprefix("arm=").split(",") if a.strip()]
        elif arg.startswith(("model=", "-m", "--multirun")):
            raise ConfigError(f"{arg}: name what to tune with arm=<arm>[,<arm>...] (a conf/arm/ option or a model)")
        else:
            rest.append(arg)
    if not arms:
        raise ConfigError("no arm to tune: give arm=<arm>[,<arm>...] (a conf/arm/ option or a model name)")
    return list(dict.fromkeys(arms)), rest


def tune_arm(plan: ArmPlan, n_jobs: int) -> str:
    study = start_arm(plan)
    print(f"[tune] {plan.study}: {budget_used(study)}/{plan.trials} trials used so far; storage {plan.storage}, "
          f"MLflow parent run {plan.parent_run_id} ({plan.tracking_uri})", flush=True)
    try:
        if n_jobs > 1:
            from joblib import Parallel, delayed

            Parallel(n_jobs=n_jobs, backend="loky")(delayed(run_worker)(plan, i) for i in range(n_jobs))
        else:
            run_worker(plan)
    except BaseException:
        MlflowClient(plan.tracking_uri).set_terminated(plan.parent_run_id, "KILLED")
        raise
    return finish_arm(plan, load(plan))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    command = shlex.join(["python", "-m", "benchmark.tune", *argv])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        arms, overrides = split_arms(argv)
        plans = [plan_arm(arm, overrides, command) for arm in arms]  # every arm checked before any trial runs
        for plan in plans:
            print(f"[tune] {tune_arm(plan, plan.n_jobs)}", flush=True)
    except KeyboardInterrupt:
        print("[tune] interrupted: rerun the same command to continue the studies", file=sys.stderr)
        return 130
    except (ValueError, OSError, TrackingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
