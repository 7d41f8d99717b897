"""The value checks a schema field carries (`option(default, check)`), each with the sentence that says what is
allowed. Hydra checks a field's type when it composes the config; these add what a type cannot say: ranges,
choices, formats. Keys whose type OmegaConf would coerce (it turns 0 or 'true' into a bool and 123 into '123')
are typed `Any` in the schema and keep a strict check of their kind here instead.

A module of its own, outside benchmark.config, because the models' option classes (models/options.py,
models/baselines.py) use it, and the config schema in turn reads those classes: importing it loads no schema."""
from __future__ import annotations

import codecs
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

CHECK = "check"  # the dataclass field metadata key


class ConfigError(ValueError):
    """An invalid config value; the message names the key and what is allowed."""


def refuse(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is invalid: {allowed}")


@dataclass(frozen=True)
class Check:
    """`ok(value)` says whether a value is allowed; `allowed` says what is, e.g. 'must be an integer >= 1' (or a
    function giving that sentence, for a list known only once the model registry is assembled)."""

    ok: Callable[[Any], bool]
    says: str | Callable[[], str]

    @property
    def allowed(self) -> str:
        return self.says() if callable(self.says) else self.says

    def passes(self, value: Any) -> bool:
        try:
            return bool(self.ok(value))
        except (TypeError, ValueError, AttributeError):
            return False


def option(default: Any, check: Check) -> Any:
    """A schema field with its default and its check (lists and mappings get a fresh copy per instance)."""
    if isinstance(default, (list, tuple)):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata={CHECK: check})
    if isinstance(default, dict):
        entries = dict(default)
        return dataclasses.field(default_factory=lambda: dict(entries), metadata={CHECK: check})
    return dataclasses.field(default=default, metadata={CHECK: check})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int, high: int | None = None) -> Check:
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    return Check(lambda v: _is_int(v) and v >= low and (high is None or v <= high), f"must be an integer {span}")


def number(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False) -> Check:
    def ok(v: Any) -> bool:
        if not _is_number(v):
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    span = f"{'>' if low_open else '>='} {low}" if high is None else \
        f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return Check(ok, f"must be a finite number {span}")


def choice(*options: str, case_sensitive: bool = True, note: str = "") -> Check:
    def ok(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        return v in options if case_sensitive else v.lower() in {o.lower() for o in options}

    return Check(ok, f"must be one of {', '.join(options)}{note}")


def late_choice(options: Callable[[], tuple[str, ...]]) -> Check:
    """`choice` over names known only later (the registered models: models/registry.py)."""
    return Check(lambda v: isinstance(v, str) and v in options(), lambda: f"must be one of {', '.join(options())}")


def int_list(min_len: int = 1) -> Check:
    def ok(v: Any) -> bool:
        return isinstance(v, (list, tuple, ListConfig)) and len(v) >= min_len and all(_is_int(x) and x >= 1 for x in v)

    return Check(ok, f"must be a list of at least {min_len} integer(s) >= 1")


def _encoding(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        codecs.lookup(v)
    except LookupError:
        return False
    return True


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


ANY_NUMBER = Check(_is_number, "must be a finite number")
BOOL = Check(lambda v: isinstance(v, bool), "must be true or false")
TEXT = Check(lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty string")
OPTIONAL_TEXT = Check(lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                      "must be null or a non-empty string")
ON_OFF_AUTO = Check(lambda v: isinstance(v, bool) or v in ("auto", "true", "false"), "must be auto, true or false")
FRACTION = number(0.0, 1.0)  # [0, 1]
OPEN_FRACTION = number(0.0, 1.0, low_open=True, high_open=True)  # (0, 1)
ENCODING = Check(_encoding, "must be a known text encoding such as iso-8859-1 or utf-8")
DEVICE = Check(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
               "must be auto, cpu, cuda or cuda:N")
TRACKING_URI = Check(_tracking_uri, "must be null or a URI such as sqlite:///<abs path>.db or http://host:port")
RESUME = Check(_resume, "must be auto, false, or the path of an existing checkpoint (file or folder)")
BETAS = Check(lambda v: isinstance(v, (list, ListConfig)) and len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v),
              "must be two numbers in [0, 1)")
# DeepCTR-Torch's activation names; Dice works in the attention units only (its DNN fails on it with an assert)
ACTIVATION = choice("relu", "sigmoid", "linear", "prelu", case_sensitive=False)
ATTENTION_ACTIVATION = choice("relu", "sigmoid", "linear", "prelu", "Dice", case_sensitive=False)


def _names(v: Any) -> list[str] | None:
    if not isinstance(v, (list, tuple, ListConfig)) or not all(isinstance(x, str) and x.strip() for x in v):
        return None
    return list(v)


def name_list(min_len: int = 0) -> Check:
    """A list of distinct non-empty strings (column names)."""
    def ok(v: Any) -> bool:
        names = _names(v)
        return names is not None and len(names) >= min_len and len(set(names)) == len(names)

    return Check(ok, f"must be a list of at least {min_len} distinct non-empty string(s)")


def name_subset(*options: str) -> Check:
    """A list of distinct names, each one of `options`."""
    return Check(lambda v: (names := _names(v)) is not None and len(set(names)) == len(names)
                 and set(names) <= set(options), f"must be a list of distinct names among {', '.join(options)}")


def _mapping(v: Any, value_ok: Callable[[Any], bool]) -> bool:
    return isinstance(v, (dict, DictConfig)) and all(isinstance(k, str) and k.strip() and value_ok(x)
                                                     for k, x in v.items())


NAME_MAP = Check(lambda v: _mapping(v, lambda x: isinstance(x, str) and x.strip() != ""),
                 "must be a mapping of field names to non-empty column names, e.g. {cate_id: cate}")
COUNT_MAP = Check(lambda v: _mapping(v, lambda x: _is_int(x) and x >= 1),
                  "must be a mapping of field names to integers >= 1, e.g. {item_id: 5}")
OPTIONAL_NUMBER = Check(lambda v: v is None or _is_number(v), "must be null or a finite number")


def optional(check: Check) -> Check:
    """`check`, or null."""
    return Check(lambda v: v is None or check.passes(v), f"must be null or {check.allowed.removeprefix('must be ')}")
