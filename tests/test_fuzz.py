"""Fuzz-style tests: random invalid overrides and random malformed raw lines must each end in a clear error
(ConfigError / Hydra's override error / DataError naming file and line) or a counted skip, never a traceback
from deep inside torch, pandas or OmegaConf.

Each test prints a one-line tally (`pytest -s` shows it). FUZZ_CASES=<n> multiplies the number of cases.
"""
from __future__ import annotations

import copy
import gzip
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

from benchmark import PROJECT_ROOT
from benchmark.config import ConfigError, group_config, validate_config
from benchmark.config.schema import DATASET_SCHEMAS, MODEL_SCHEMAS, Ablation, Paths, Root, Trainer, checked_fields
from benchmark.data import load_dataset
from benchmark.data.errors import DataError
from benchmark.data.schema import Field, Schema
from conftest import make_batch
from models import build_model

SCALE = int(os.environ.get("FUZZ_CASES", "1"))
CONF = PROJECT_ROOT / "conf"

# Invalid override values for each kind of check, keyed by a pattern of its message (benchmark/checks.py).
INVALID_BY_MESSAGE: list[tuple[str, Callable[[re.Match], list[str]]]] = [
    (r"integer >= (-?\d+)", lambda m: [str(int(m[1]) - 1), f"{int(m[1]) + 1}.5", "abc", "null", "true", "[1]",
                                       "nan", "''", "1e3"]),
    (r"integer in \[(\d+), (\d+)\]", lambda m: [str(int(m[1]) - 1), str(int(m[2]) + 1), "2.5", "x", "null"]),
    (r"finite number (>=?) (-?[\d.]+)$", lambda m: ["nan", "inf", "-inf", "abc", "null", "true", "[0.1]",
                                                    str(float(m[2]) - 1) if m[1] == ">=" else m[2]]),
    (r"finite number in [\[(]([\d.]+), ([\d.]+)[\])]", lambda m: ["nan", "inf", "x", "null", "false", "[0.5]",
                                                                 str(float(m[1]) - 0.5), str(float(m[2]) + 0.5)]),
    (r"^must be a finite number$", lambda m: ["nan", "inf", "x", "null", "true", "[1]"]),
    (r"one of ", lambda m: ["bogus", "1", "null", "true", "[a]", "''"]),
    (r"auto, true or false", lambda m: ["maybe", "1", "null", "[x]", "0.5"]),
    (r"true or false", lambda m: ["maybe", "2", "null", "[true]", "'true'", "0"]),
    (r"list of at least 1", lambda m: ["[]", "[0]", "[1.5]", "[a]", "3", "null", "[-1]", "[true]"]),
    (r"list of at least 0", lambda m: ["[0]", "[1.5]", "x", "null"]),
    (r"two numbers in \[0, 1\)", lambda m: ["[0.9]", "[1.0,0.5]", "[a,b]", "0.9", "null", "[nan,0.9]"]),
    (r"null or a non-empty string", lambda m: ["''", "123", "[a]", "true", "1.5"]),
    (r"non-empty string", lambda m: ["''", "123", "null", "[a]", "false"]),
    (r"text encoding", lambda m: ["no-such-codec", "1", "null", "[utf-8]"]),
    (r"auto, cpu, cuda", lambda m: ["tpu", "cuda:x", "gpu", "1", "null", "cuda:"]),
    (r"URI such as", lambda m: ["'not a uri'", "123", "sqlite:///", "sqlite:/x.db", "true"]),
    (r"existing checkpoint", lambda m: ["/no/such/checkpoint.pt", "1", "[a]", "''"]),
]
# Random override values: valid or not, they must never crash validation or (for model keys) the model build.
POOL = ["0", "1", "2", "3", "7", "-1", "0.5", "1e9", "-0.0", "nan", "inf", "relu", "Dice", "linear", "x", "''",
        "[1]", "[3,5]", "[]", "[0.5,0.5]", "true", "false", "null", "{a:1}", "${seed}", "${nope}", "AUGRU", "matrix"]
GARBAGE_CHARS = "=[]{},'\"$:~+@ ()\\abc019._-"


def invalid_values(key: str, message: str) -> list[str]:
    for pattern, make in INVALID_BY_MESSAGE:
        match = re.search(pattern, message)
        if match:
            return make(match)
    raise AssertionError(f"no invalid values known for {key} ({message}): extend INVALID_BY_MESSAGE")


def schema_keys() -> Iterator[tuple[str, str, str]]:
    """(base config overrides, key, check message) for every key of the schema, on a config that has it."""
    for group, schema in (("", Root), ("trainer.", Trainer), ("paths.", Paths), ("ablation.", Ablation)):
        for key, check in checked_fields(schema):
            yield "model=mian dataset=synthetic", f"{group}{key}", check.allowed
    for model, schema in MODEL_SCHEMAS.items():
        for key, check in checked_fields(schema):
            yield f"model={model} dataset=synthetic", f"model.{key}", check.allowed
    for loader, dataset in (("synthetic", "synthetic"), ("movielens", "movielens"), ("amazon", "electronics")):
        for key, check in checked_fields(DATASET_SCHEMAS[loader]):
            if key.startswith("effects.") and loader != "synthetic":
                continue  # a real dataset has no effects node to hold the value
            yield f"model=mian dataset={dataset}", f"dataset.{key}", check.allowed


@pytest.fixture(scope="module")
def bases() -> Callable[[str], DictConfig]:
    """Composed base configs, cached: overrides are then applied as Hydra's compose applies them."""
    cache: dict[str, DictConfig] = {}

    def get(base: str) -> DictConfig:
        if base not in cache:
            with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                cache[base] = compose(config_name="config", overrides=base.split())
        return copy.deepcopy(cache[base])

    return get


PARSER = OverridesParser.create()


def apply_and_validate(cfg: DictConfig, override: str) -> str:
    """'accepted', 'config_error:<msg>' or 'hydra_error:<msg>'; anything else propagates (a test failure)."""
    try:
        ConfigLoaderImpl._apply_overrides_to_config(PARSER.parse_overrides([override]), cfg)
    except HydraException as error:  # OverrideParseException, ConfigCompositionException
        return f"hydra_error:{error}"
    try:
        validate_config(cfg)
    except ConfigError as error:
        return f"config_error:{error}"
    return "accepted"


# ---------------------------------------------------------------------------------------------- overrides
def test_every_invalid_value_of_every_key_is_a_config_error_naming_the_key(bases: Callable) -> None:
    rng = random.Random(0)
    cases = [(base, key, value) for base, key, message in schema_keys() for value in invalid_values(key, message)]
    rng.shuffle(cases)
    cases = cases[:300 * SCALE]
    tally: Counter = Counter()
    wrong = []
    for base, key, value in cases:
        outcome = apply_and_validate(bases(base), f"{key}={value}")
        kind, _, message = outcome.partition(":")
        tally[kind] += 1
        if kind == "accepted" or key not in message:
            wrong.append(f"{base} {key}={value}: {outcome}")
    print(f"\n[fuzz] invalid values: {len(cases)} cases, {dict(tally)}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


def test_random_overrides_end_in_a_clear_error_or_a_working_model(bases: Callable) -> None:
    """Random values for random keys; where validation accepts a model value, the model must build and run on a
    batch (or refuse with a ValueError naming the key)."""
    rng = random.Random(1)
    keys = list(schema_keys())
    schema = Schema(item_fields=(Field("item_id", 30), Field("cate_id", 6)),
                    user_fields=(Field("gender", 3), Field("age", 8)),
                    context_fields=(Field("hour", 7), Field("weekday", 8)), max_len=6)
    batch = make_batch(schema, batch_size=4)
    tally: Counter = Counter()
    wrong = []
    for _ in range(250 * SCALE):
        base, key, _ = rng.choice(keys)
        value = rng.choice(POOL)
        cfg = bases(base)
        outcome = apply_and_validate(cfg, f"{key}={value}")
        kind, _, message = outcome.partition(":")
        tally[kind] += 1
        if kind != "accepted":
            if key.split(".")[-1] not in message and "cannot be resolved" not in message:
                wrong.append(f"{base} {key}={value}: {outcome}")
            continue
        if not key.startswith("model.") or cfg.model.embedding_dim > 64:
            continue
        try:
            model = build_model(cfg.model, cfg.ablation, schema, 0, torch.device("cpu"))
            model.train()
            logits = model(batch)
            assert logits.shape == (4,)
            tally["built"] += 1
        except ValueError as error:
            tally["refused at build"] += 1
            if "model." not in str(error):
                wrong.append(f"{base} {key}={value}: build raised {error!r}")
        except Exception as error:  # noqa: BLE001 - collected: a value that passed validation crashed the model
            wrong.append(f"{base} {key}={value}: build raised {type(error).__name__}: {error}")
    print(f"\n[fuzz] random overrides: {sum(v for k, v in tally.items() if k in ('accepted', 'config_error', 'hydra_error'))}"
          f" cases, {dict(tally)}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


def test_garbage_overrides_are_refused_by_hydra_or_validation(bases: Callable) -> None:
    """Random strings as overrides (random keys, random syntax), through the parser; some through compose."""
    rng = random.Random(2)
    known = [key for _, key, _ in schema_keys()]
    tally: Counter = Counter()
    wrong = []
    overrides = []
    for _ in range(200 * SCALE):
        key = rng.choice(known + ["trainer.nope", "nope", "model", "dataset.effects", "~trainer.lr", "+model.extra",
                                  "++trainer.lr", "trainer..lr", ""])
        value = "".join(rng.choice(GARBAGE_CHARS) for _ in range(rng.randint(0, 12)))
        overrides.append(f"{key}={value}" if rng.random() < 0.9 else value)
    for override in overrides:
        try:
            outcome = apply_and_validate(bases("model=mian dataset=synthetic"), override)
        except Exception as error:  # noqa: BLE001
            wrong.append(f"{override!r}: {type(error).__name__}: {error}")
            continue
        tally[outcome.partition(":")[0]] += 1
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for override in overrides[:25]:  # the real compose, as `python -m benchmark` runs it
            try:
                validate_config(compose(config_name="config", overrides=[override]))
                tally["compose accepted"] += 1
            except (HydraException, ConfigError):
                tally["compose refused"] += 1
            except Exception as error:  # noqa: BLE001
                wrong.append(f"compose {override!r}: {type(error).__name__}: {error}")
    print(f"\n[fuzz] garbage overrides: {len(overrides)} cases, {dict(tally)}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)


def test_invalid_overrides_on_the_command_line(tmp_path: Path) -> None:
    """A multirun of invalid values: every job fails alone with a message naming the key, no traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "-m", "trainer.lr=0,nan,abc,0.001", "+model.typo=1",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error in job")]
    assert len(errors) == 4, proc.stderr[-3000:]
    assert sum("trainer.lr=" in line and "is invalid" in line for line in errors) == 3
    assert sum("model.typo is not an option of model=mian" in line for line in errors) == 1


# ---------------------------------------------------------------------------------------------- raw lines
BAD_FIELDS = [b"", b"-1", b"0", b"99999999999999999999999", b"1e5", b"nan", b"\xff\xfe", b"x" * 5000, b"1.5",
              b" 7 ", b"\x00", b"9" * 400, b"\xe2\x80\xae", b"-0"]
BAD_LINES = [b"", b"\x00" * 10, b"{}", b"::::", b"\r", b"\xef\xbb\xbf", b"[" * 5000, b"{" * 5000, b"null", b"3",
             b"\"s\"", b"[]", b"\xff" * 20, b"\t \t"]


def corrupt(line: bytes, rng: random.Random, separator: bytes) -> bytes:
    """One random corruption of a raw line."""
    op = rng.randrange(6)
    if op == 0 and line:  # cut short
        return line[:rng.randrange(len(line))]
    if op == 1:  # random bytes inserted
        at = rng.randrange(len(line) + 1)
        return line[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))) + line[at:]
    if op == 2:  # one field replaced
        parts = line.split(separator)
        parts[rng.randrange(len(parts))] = rng.choice(BAD_FIELDS)
        return separator.join(parts)
    if op == 3:  # a separator dropped or doubled
        return line.replace(separator, rng.choice([b"", separator * 2]), 1)
    if op == 4:
        return rng.choice(BAD_LINES)
    return line + rng.choice([b"::1", b", extra", b"\x00", b"}"])


def json_corrupt(line: bytes, rng: random.Random) -> bytes:
    """A syntactically valid review whose values are wrong in type or range, or a generic corruption."""
    if rng.random() < 0.5:
        return corrupt(line, rng, b", ")
    record = json.loads(line)
    key = rng.choice(["reviewerID", "asin", "overall", "unixReviewTime"])
    choice = rng.choice(["drop", None, "x", "", -5, 10, 1.5, 1e30, 10**30, [], {}, True, "nan", -1e400, 1e400])
    if choice == "drop":
        record.pop(key)
    else:
        record[key] = choice
    return json.dumps(record).encode()


def meta_corrupt(line: bytes, rng: random.Random) -> bytes:
    """A metadata dict literal with a wrong 'asin' or 'categories', or a generic corruption."""
    if rng.random() < 0.5:
        return corrupt(line, rng, b", ")
    record: dict[str, Any] = eval(line)  # noqa: S307 - our own repr() output
    key = rng.choice(["asin", "categories"])
    record[key] = rng.choice([None, 5, "x", [], [[]], [[1]], [["a", 2]], "[['a']]", {"a": 1}, [[[]]], ""])
    return repr(record).encode()


def movielens_files(folder: Path) -> dict[str, list[bytes]]:
    users = [f"{u}::{'MF'[u % 2]}::{[1, 18, 25][u % 3]}::{u % 20}::{10000 + u}".encode() for u in range(1, 9)]
    movies = [f"{m}::Movie {m} ({1990 + m})::{['Comedy', 'Drama|Action', 'Horror'][m % 3]}".encode()
              for m in range(1, 13)]
    ratings = [f"{u}::{(u * 7 + k) % 12 + 1}::{(u + k) % 5 + 1}::{978300000 + 3600 * k + u}".encode()
               for u in range(1, 9) for k in range(6)]
    return {"ratings.dat": ratings, "users.dat": users, "movies.dat": movies}


def amazon_files(folder: Path) -> dict[str, list[bytes]]:
    reviews = [json.dumps({"reviewerID": f"U{u}", "asin": f"B{(u * 3 + k) % 10:07d}", "reviewerName": "R",
                           "helpful": [0, 0], "reviewText": "ok", "overall": float((u + k) % 5 + 1),
                           "summary": "s", "unixReviewTime": 1357000000 + 86400 * k + u,
                           "reviewTime": "01 1, 2013"}).encode() for u in range(1, 9) for k in range(6)]
    meta = [repr({"asin": f"B{i:07d}", "title": f"Item {i}", "categories": [["Electronics", f"C{i % 4}"]]}).encode()
            for i in range(10)]
    return {"reviews_Electronics_5.json.gz": reviews, "meta_Electronics.json.gz": meta}


def write_files(folder: Path, files: dict[str, list[bytes]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        data = b"".join(line + b"\n" for line in lines)
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)


def dataset_cfg(name: str, raw: Path, policy: str) -> DictConfig:
    cfg = group_config("dataset", name)
    cfg.raw_dir, cfg.download, cfg.on_bad_line, cfg.max_bad_fraction = str(raw), False, policy, 0.5
    return cfg


BAD_COUNTS = {"movielens": ("rating_bad_lines", "user_bad_lines", "movie_bad_lines"),
              "electronics": ("review_bad_lines", "meta_bad_lines")}


@pytest.mark.parametrize(("dataset", "make_files", "corrupters"), [
    ("movielens", movielens_files, {"ratings.dat": lambda l, r: corrupt(l, r, b"::"),
                                    "users.dat": lambda l, r: corrupt(l, r, b"::"),
                                    "movies.dat": lambda l, r: corrupt(l, r, b"::")}),
    ("electronics", amazon_files, {"reviews_Electronics_5.json.gz": json_corrupt,
                                   "meta_Electronics.json.gz": meta_corrupt}),
])
def test_malformed_raw_lines_are_a_clear_error_or_a_counted_skip(dataset: str, make_files: Callable,
                                                                corrupters: dict, tmp_path: Path) -> None:
    rng = random.Random(3)
    tally: Counter = Counter()
    wrong = []
    n_cases = 40 * SCALE
    for case in range(n_cases):
        files = make_files(tmp_path)
        name = rng.choice(sorted(corrupters))
        at = rng.randrange(len(files[name]))
        files[name][at] = corrupters[name](files[name][at], rng)
        raw = tmp_path / f"raw{case}"
        write_files(raw, files)
        for policy in ("skip", "error"):
            where = f"case {case} ({policy}): {name} line {at + 1} = {files[name][at][:120]!r}"
            try:
                ds = load_dataset(dataset_cfg(dataset, raw, policy), tmp_path / f"cache{case}{policy}")
            except DataError as error:
                named = name in str(error) and (policy == "skip" or re.search(rf"{re.escape(name)}:\d+", str(error)))
                tally[f"{policy}: DataError"] += 1
                if not named:
                    wrong.append(f"{where}: DataError without file and line: {error}")
                continue
            except Exception as error:  # noqa: BLE001 - collected: the failure this test looks for
                wrong.append(f"{where}: {type(error).__name__}: {str(error)[:300]}")
                continue
            bad = sum(int(ds.stats.get(key, 0)) for key in BAD_COUNTS[dataset])
            if bad > 1 or (policy == "error" and bad):
                wrong.append(f"{where}: {bad} lines counted as bad")
            tally[f"{policy}: {'skipped (counted)' if bad else 'still a valid line'}"] += 1
    print(f"\n[fuzz] {dataset} raw lines: {n_cases} corrupted files x 2 policies, {dict(tally)}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)
