"""Reading the files a `dataset=custom` declaration names (benchmark/data/custom.py says what they mean): the log,
its joined item and user tables and a behaviour log, each column checked as it is read (custom_read.py)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data import custom_read as rd
from benchmark.data.errors import DataError

log = logging.getLogger(__name__)

Options = dict[str, Any]


def file_format(o: Options) -> rd.FileFormat:
    return rd.FileFormat(o["format"], o["delimiter"], tuple(o["column_names"]), o["on_bad_line"],
                         float(o["max_bad_fraction"]))


class Log:
    """The log's declared columns, read and checked, in file order (rows of several files concatenated)."""

    def __init__(self, o: Options, paths: dict[str, Any]) -> None:
        fmt, c = file_format(o), o["columns"]
        self.fields: dict[str, pa.ChunkedArray] = {}   # categorical columns (text), by declared name
        self.joined: dict[str, str] = {}               # field -> the table file it came from
        self.stats: dict[str, Any] = {"bad_rows": 0}
        self.seq_flat: dict[str, pa.Array] = {}        # sequence.source=column: flat history values per item field
        self.seq_lengths = np.zeros(0, dtype=np.int64)
        log_paths: list[Path] = paths["log"]
        tables = {kind: _Table(o, kind, paths[kind], fmt) for kind in ("item_table", "user_table") if kind in paths}
        seq = o["sequence"]
        times, labels, split_col, lengths = [], [], [], []
        per_file: dict[str, list[pa.ChunkedArray]] = {}
        flat: dict[str, list[pa.Array]] = {}
        rows = [0]
        for path in log_paths:
            available = rd.header(path, fmt)
            wanted = {c["user_id"]: "the user id, columns.user_id", c["item"][0]: "the item id, columns.item[0]"}
            for key, role in (("label", "columns.label"), ("timestamp", "columns.timestamp"),
                              ("split", "columns.split")):
                if c[key] is not None and (key != "split" or o["split"] == "column"):
                    wanted[c[key]] = role
            for kind, group in (("item_table", "item"), ("user_table", "user")):
                for name in c[group][1 if group == "item" else 0:]:
                    if kind in tables and name not in available and tables[kind].has(name):
                        self.joined[name] = kind
                        continue
                    if kind in tables and name not in available:
                        table = tables[kind]
                        near = rd.nearest(name, [*available, *table.available])
                        raise DataError(f"{path}: no column {name!r} (a {group} field, columns.{group}), nor in "
                                        f"{table.path}{near} The log has: {', '.join(map(repr, available))}; "
                                        f"{table.path.name} has: {', '.join(map(repr, table.available))}")
                    wanted[name] = f"a {group} field, columns.{group}"
            for name in c["context"]:
                wanted[name] = "a context field, columns.context"
            if seq["source"] == "column":
                for field, column in seq["fields"].items():
                    wanted[column] = f"the history of {field}, sequence.fields"
            actual = rd.resolve_columns(path, available, wanted)
            table, bad = rd.read_columns(path, fmt, list(actual.values()))
            self.stats["bad_rows"] += bad
            where = rd.Where((path,), np.array([0, table.num_rows]), not fmt.column_names)
            col = {name: table.column(real) for name, real in actual.items()}
            rd.no_nulls(col[c["user_id"]], where, c["user_id"], "user id")
            rd.no_nulls(col[c["item"][0]], where, c["item"][0], "item id")
            for name in actual:
                if name in (c["label"], c["timestamp"]) or (seq["source"] == "column" and name in seq["fields"].values()):
                    continue
                per_file.setdefault(name, []).append(rd.categorical(col[name], where, name))
            if c["timestamp"] is not None:
                times.append(rd.timestamps(col[c["timestamp"]], where, c["timestamp"]))
            if c["label"] is not None:
                labels.append(rd.labels(col[c["label"]], where, c["label"], o["label_threshold"]))
            if o["split"] == "column":
                split_col.append(_split_of(col[c["split"]], o["split_values"], where, c["split"]))
            if seq["source"] == "column":
                lengths.append(self._history_columns(seq, col, where, flat))
            rows.append(rows[-1] + table.num_rows)
        self.where = rd.Where(tuple(log_paths), np.array(rows), not fmt.column_names)
        self.n = rows[-1]
        self.file_of = np.repeat(np.arange(len(log_paths), dtype=np.int8), np.diff(rows))
        self.fields = {name: pa.chunked_array([ch for part in parts for ch in part.chunks], type=pa.string())
                       for name, parts in per_file.items()}
        self.time = np.concatenate(times) if times else None
        self.label = np.concatenate(labels) if labels else None
        self.split = np.concatenate(split_col) if split_col else None
        if lengths:
            self.seq_lengths = np.concatenate(lengths)
            self.seq_flat = {f: pa.chunked_array(v, type=pa.string()) for f, v in flat.items()}
        key = {"item_table": c["item"][0], "user_table": c["user_id"]}
        for kind, table in tables.items():
            names = [n for n, k in self.joined.items() if k == kind]
            if names:
                matched = table.join(self.fields[key[kind]], names, self.fields)
                self.stats[f"{kind}_unmatched_rows"] = self.n - matched
                if matched < self.n:
                    log.warning("%s: %d of %d log rows have no row in %s; their %s are 0 (unknown)", log_paths[0],
                                self.n - matched, self.n, table.path, ", ".join(names))

    def _history_columns(self, seq: dict[str, Any], col: dict[str, pa.ChunkedArray], where: rd.Where,
                         flat: dict[str, list[pa.Array]]) -> np.ndarray:
        """Split one file's history columns; their per-row lengths must agree (they are aligned per event)."""
        first_field, lengths = None, None
        for field, column in seq["fields"].items():
            values, n = rd.split_sequence(col[column], seq["delimiter"], where, column)
            values = rd.categorical(values, where, column)
            flat.setdefault(field, []).extend(values.chunks)
            if lengths is None:
                first_field, lengths = (field, column), n
            elif (lengths != n).any():
                row = int(np.argmax(lengths != n))
                raise DataError(f"{where(row, column)}: the history has {n[row]} ids, while column "
                                f"{first_field[1]!r} ({first_field[0]}) has {lengths[row]} in the same row; the "
                                "history columns hold one value per behaviour each, aligned")
        return lengths


class _Table:
    """An item or user table: read lazily, its key unique, joined to the log by the key's text."""

    def __init__(self, o: Options, kind: str, path: Path, fmt: rd.FileFormat) -> None:
        self.kind, self.path, self.fmt, self.key = kind, path, fmt, o[kind]["key"]
        self.available = rd.header(path, fmt)

    def has(self, name: str) -> bool:
        return name in self.available or sum(a.strip() == name for a in self.available) == 1

    def join(self, log_key: pa.ChunkedArray, names: list[str], out: dict[str, pa.ChunkedArray]) -> int:
        """Put the table's `names` columns, row-aligned with `log_key`, into `out`; returns the rows matched."""
        wanted = {self.key: f"the key of dataset.{self.kind}", **{n: f"a field joined from dataset.{self.kind}"
                                                                 for n in names}}
        actual = rd.resolve_columns(self.path, self.available, wanted)
        table, _ = rd.read_columns(self.path, self.fmt, list(actual.values()))
        where = rd.Where((self.path,), np.array([0, table.num_rows]), not self.fmt.column_names)
        key = rd.categorical(table.column(actual[self.key]), where, self.key)
        rd.no_nulls(key, where, self.key, f"key of dataset.{self.kind}")
        counts = pc.value_counts(key)
        dup = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        if len(dup):
            rows = np.flatnonzero(pc.equal(key, dup[0]).to_numpy(zero_copy_only=False))
            raise DataError(f"{where(int(rows[1]), self.key)}: key {dup[0].as_py()!r} appears again (first in row "
                            f"{rows[0] + 1}); a table joined on its key must have one row per key")
        index = pc.index_in(log_key, value_set=key.combine_chunks())
        for name in names:
            out[name] = pc.take(rd.categorical(table.column(actual[name]), where, name), index)
        return len(index) - index.null_count


def _split_of(values: pa.ChunkedArray, split_values: list[str], where: rd.Where, column: str) -> np.ndarray:
    """0 train, 1 valid, 2 test per row, from a column holding one of `split_values`."""
    text = rd.categorical(values, where, column)
    index = pc.index_in(text, value_set=pa.array([str(v) for v in split_values]))
    if index.null_count:
        row = rd.first_true(pc.is_null(index))
        raise DataError(f"{where(row, column)}: split value {text[row].as_py()!r} is not one of "
                        f"dataset.split_values={list(split_values)}")
    return index.to_numpy().astype(np.int8)


def read_behaviours(o: Options, path: Path) -> dict[str, Any]:
    """sequence.source=file: the behaviour log's user, time and the item fields it holds."""
    fmt, seq, c = file_format(o), o["sequence"], o["columns"]
    user_col, time_col = seq["user_id"] or c["user_id"], seq["timestamp"] or c["timestamp"]
    wanted = {user_col: "its user id, sequence.user_id", time_col: "its time, sequence.timestamp",
              **{col: f"the history of {field}, sequence.fields" for field, col in seq["fields"].items()}}
    actual = rd.resolve_columns(path, rd.header(path, fmt), wanted)
    table, bad = rd.read_columns(path, fmt, list(actual.values()))
    where = rd.Where((path,), np.array([0, table.num_rows]), not fmt.column_names)
    user = rd.categorical(table.column(actual[user_col]), where, user_col)
    rd.no_nulls(user, where, user_col, "user id")
    return {"user": user, "time": rd.timestamps(table.column(actual[time_col]), where, time_col), "bad_rows": bad,
            "fields": {f: rd.categorical(table.column(actual[col]), where, col) for f, col in seq["fields"].items()}}
