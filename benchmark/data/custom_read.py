"""Reading the declared columns of CSV, TSV and Parquet files with pyarrow, and turning them into ids.

pyarrow reads CSV/TSV (plain or gzip) in blocks on several threads and converts only the declared columns
(`include_columns`); Parquet is read column by column. Every column of a CSV file is read as text and converted
here, so that a bad value is an error naming the file, the column and the row (the N-th data row, the header not
counted; for a CSV file with a header, line N + 1 unless a quoted value spans lines) instead of a type guessed
from the first block.

Ids: each categorical field gets a vocabulary of its values (sorted, so ids do not depend on the files' row order)
that occur at least `min_count` times; 0 is padding or a missing value, 1 the field's out-of-vocabulary id (rarer
values), 2.. the kept values.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmark.data.errors import DataError

PAD, OOV = 0, 1  # ids every field reserves
FIRST_ID = 2
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_BLOCK = 1 << 24  # bytes per CSV block; pyarrow parses blocks on its thread pool


@dataclass(frozen=True)
class FileFormat:
    """How the files of a dataset are written (the dataset config's format, delimiter, column_names, on_bad_line)."""

    format: str                    # auto | csv | tsv | parquet
    delimiter: str | None          # csv/tsv; None: ',' or tab
    column_names: tuple[str, ...]  # csv/tsv without a header row; () when the first row names the columns
    on_bad_line: str               # error | skip
    max_bad_fraction: float

    def kind(self, path: Path) -> str:
        """csv, tsv or parquet, from the config or the file's extension (a .gz suffix is looked through)."""
        if self.format != "auto":
            return self.format
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes.pop()
        kind = _SUFFIXES.get(suffixes[-1] if suffixes else "")
        if kind is None:
            raise DataError(f"{path}: cannot tell its format from the name; set dataset.format to csv, tsv or parquet")
        return kind

    def delimiter_of(self, path: Path) -> str:
        kind = self.kind(path)
        if self.delimiter is None:
            return "\t" if kind == "tsv" else ","
        delimiter = self.delimiter.encode().decode("unicode_escape") if "\\" in self.delimiter else self.delimiter
        if len(delimiter) != 1:
            raise DataError(f"dataset.delimiter={self.delimiter!r} is invalid: must be one character (e.g. ',', '\\t', "
                            "'|')")
        return delimiter


def _open(path: Path) -> pa.NativeFile:
    """A stream of the file, gunzipped when it is gzip (told by its first bytes, not its name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if path.suffix == ".gz" and magic != b"\x1f\x8b" and magic:
        raise DataError(f"{path} is named .gz but is not a gzip file")
    return pa.input_stream(str(path), compression="gzip" if magic == b"\x1f\x8b" else None)


def _csv_options(fmt: FileFormat, path: Path) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions]:
    read = pacsv.ReadOptions(use_threads=True, block_size=_BLOCK,
                             column_names=list(fmt.column_names) or None)
    parse = pacsv.ParseOptions(delimiter=fmt.delimiter_of(path))
    return read, parse


def header(path: Path, fmt: FileFormat) -> list[str]:
    """The column names of a file: its header row or Parquet schema (or the configured column_names)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist (dataset.raw_dir and dataset.files / the table's file name it)")
    try:
        if fmt.kind(path) == "parquet":
            return list(pq.read_schema(path).names)
        if fmt.column_names:
            return list(fmt.column_names)
        with _open(path) as stream:
            read, parse = _csv_options(fmt, path)
            return list(pacsv.open_csv(stream, read_options=read, parse_options=pacsv.ParseOptions(
                delimiter=parse.delimiter, invalid_row_handler=lambda row: "skip")).schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        if "Empty CSV file" in str(exc):
            raise DataError(f"{path} is empty: no header row and no data") from exc
        raise DataError(f"{path}: cannot read it as {fmt.kind(path)} ({exc})") from exc


def resolve_columns(path: Path, available: Sequence[str], wanted: dict[str, str]) -> dict[str, str]:
    """{declared name: the file's name} for each `wanted` {declared name: what it is for}; a declared name matches a
    header name equal to it after stripping spaces (published headers carry stray ones). A missing column is an
    error naming the file, the column, what it was for and the nearest names the file has."""
    out = {}
    for name, role in wanted.items():
        if name in available:
            out[name] = name
            continue
        stripped = [a for a in available if a.strip() == name.strip()]
        if len(stripped) == 1:
            out[name] = stripped[0]
            continue
        raise DataError(f"{path}: no column {name!r} ({role}){nearest(name, available)} The file has: "
                        f"{', '.join(map(repr, available))}")
    return out


def nearest(name: str, available: Sequence[str]) -> str:
    """'; did you mean ...?' with the names most like `name`, or '.'."""
    near = difflib.get_close_matches(name, list(dict.fromkeys(available)), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(map(repr, near))}?" if near else "."


def read_columns(path: Path, fmt: FileFormat, columns: Sequence[str]) -> tuple[pa.Table, int]:
    """The named columns of a file (CSV: all as text) and the number of malformed rows skipped. A file without data
    rows, or (under on_bad_line=error) a row with the wrong number of fields, is an error naming the file."""
    columns = list(dict.fromkeys(columns))
    bad: list[str] = []
    try:
        if fmt.kind(path) == "parquet":
            table = pq.read_table(path, columns=columns, use_threads=True)
        else:
            def invalid(row: pacsv.InvalidRow) -> str:
                where = f"row {row.number}" if row.number is not None else "a row"
                bad.append(f"{where} has {row.actual_columns} fields, expected {row.expected_columns}: "
                           f"{row.text[:200]!r}")
                return "skip"

            read, parse = _csv_options(fmt, path)
            parse = pacsv.ParseOptions(delimiter=parse.delimiter, invalid_row_handler=invalid)
            convert = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns},
                                           strings_can_be_null=True, quoted_strings_can_be_null=False)
            with _open(path) as stream:
                table = pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError, EOFError) as exc:
        if "Empty CSV file" in str(exc):
            raise DataError(f"{path} is empty: no header row and no data") from exc
        raise DataError(f"{path}: cannot read it as {fmt.kind(path)} ({exc})") from exc
    if bad and fmt.on_bad_line == "error":
        raise DataError(f"malformed line in {path}: {bad[0]} (set dataset.on_bad_line=skip to skip and count such "
                        "rows)")
    total = table.num_rows + len(bad)
    if bad and len(bad) > fmt.max_bad_fraction * total:
        raise DataError(f"{path}: {len(bad)} of {total} rows are malformed (more than max_bad_fraction="
                        f"{fmt.max_bad_fraction}); wrong file or wrong delimiter? First: {bad[0]}")
    if table.num_rows == 0:
        raise DataError(f"{path} is empty: no data rows")
    return table, len(bad)


@dataclass(frozen=True)
class Where:
    """Rows of several files concatenated: which file and row a global row index is, for error messages."""

    paths: tuple[Path, ...]
    offsets: np.ndarray  # [files + 1] first global row of each file
    header: bool         # CSV with a header row: line = row + 1

    def __call__(self, row: int, column: str) -> str:
        k = int(np.searchsorted(self.offsets, row, side="right")) - 1
        n = row - int(self.offsets[k]) + 1
        line = f" (line {n + 1})" if self.header and self.paths[k].suffix.lower() not in (".parquet", ".pq") else ""
        return f"{self.paths[k]}, column {column!r}, row {n}{line}"


def first_true(mask: pa.ChunkedArray | pa.Array | np.ndarray) -> int | None:
    """Index of the first true value, or None."""
    index = int(pc.index(mask, True).as_py()) if not isinstance(mask, np.ndarray) else \
        (int(np.argmax(mask)) if mask.any() else -1)
    return None if index < 0 else index


def no_nulls(values: pa.ChunkedArray, where: Where, column: str, what: str) -> None:
    if values.null_count:
        row = first_true(pc.is_null(values))
        raise DataError(f"{where(row, column)}: the {what} is missing")


def _numbers(values: pa.ChunkedArray, where: Where, column: str, what: str, target: pa.DataType) -> np.ndarray:
    """A column of numbers (CSV text or Parquet numbers) as numpy; a missing or non-numeric value is an error naming
    its row."""
    no_nulls(values, where, column, what)
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        values = pc.cast(pc.cast(values, pa.timestamp("s")), pa.int64())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.utf8_trim_whitespace(values)
    try:
        out = pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pattern = r"^[+-]?[0-9]{1,18}$" if pa.types.is_integer(target) else \
            r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
        try:
            ok = pc.match_substring_regex(pc.cast(values, pa.string()), pattern)
        except pa.ArrowInvalid:
            ok = None
        row = first_true(pc.invert(ok)) if ok is not None else None
        if row is None:
            raise DataError(f"{where(0, column)}...: the {what} column cannot be read as numbers ({values.type})")
        value = pc.cast(values, pa.string())[row].as_py()
        kind = "an integer" if pa.types.is_integer(target) else "a number"
        raise DataError(f"{where(row, column)}: the {what} {value!r} is not {kind}")
    return out.to_numpy()


def timestamps(values: pa.ChunkedArray, where: Where, column: str) -> np.ndarray:
    """Integer times (e.g. unix seconds) as int64; a float column (pandas writes one when a value is missing) is
    taken where every value is a whole number."""
    if pa.types.is_floating(values.type):
        no_nulls(values, where, column, "timestamp")
        whole = pc.and_(pc.is_finite(values), pc.equal(values, pc.floor(values)))
        row = first_true(pc.invert(whole))
        if row is not None:
            raise DataError(f"{where(row, column)}: the timestamp {values[row].as_py()!r} is not an integer")
        values = pc.cast(values, pa.int64())
    return _numbers(values, where, column, "timestamp", pa.int64()).astype(np.int64, copy=False)


def labels(values: pa.ChunkedArray, where: Where, column: str, threshold: float | None) -> np.ndarray:
    """0/1 float32 labels: the values themselves (which must be 0 or 1), or value >= threshold."""
    x = _numbers(values, where, column, "label", pa.float64())
    if threshold is not None:
        bad = ~np.isfinite(x)
        if bad.any():
            raise DataError(f"{where(int(np.argmax(bad)), column)}: the label {x[np.argmax(bad)]!r} is not finite")
        return (x >= threshold).astype(np.float32)
    bad = (x != 0) & (x != 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where(row, column)}: the label {x[row]:g} is not 0 or 1; for ratings or scores set "
                        "dataset.label_threshold (label = value >= threshold)")
    return x.astype(np.float32)


def categorical(values: pa.ChunkedArray | pa.Array, where: Where | None, column: str) -> pa.ChunkedArray:
    """A categorical column as text (so that 7 in one file and '7' in a history string are the same value);
    fractional numbers are refused: an id read as a float has lost its digits or was never an id."""
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    if pa.types.is_floating(values.type):
        frac = pc.not_equal(values, pc.floor(values))
        row = first_true(pc.fill_null(frac, False))
        if row is not None or (pc.max(pc.abs(values)).as_py() or 0) >= 2 ** 53:
            where_ = where(row or 0, column) if where is not None else column
            raise DataError(f"{where_}: holds fractional or too large numbers ({values.type}); ids must be integers "
                            "or text (write them as such, or as text)")
        values = pc.cast(values, pa.int64())
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        try:
            values = pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"{where(0, column) if where else column}: a {values.type} column cannot be a categorical "
                            f"field") from exc
    return values.cast(pa.string()) if pa.types.is_large_string(values.type) else values


def vocabulary(parts: Sequence[pa.ChunkedArray], min_count: int) -> tuple[pa.Array, dict[str, int]]:
    """The sorted values of a field that occur at least `min_count` times in `parts` (nulls left out), and counts:
    distinct values, values (and occurrences) sent to the OOV id."""
    chunks = [c for p in parts for c in p.chunks if len(c)]
    if not chunks:
        return pa.array([], pa.string()), {"values": 0, "rare_values": 0, "rare_occurrences": 0}
    counted = pc.value_counts(pa.chunked_array(chunks, type=pa.string()))
    values, counts = counted.field("values"), counted.field("counts")
    valid = pc.is_valid(values)
    values, counts = pc.filter(values, valid), pc.filter(counts, valid)
    keep = pc.greater_equal(counts, min_count)
    kept = pc.filter(values, keep)
    kept = pc.take(kept, pc.sort_indices(kept))
    rare = pc.filter(counts, pc.invert(keep))
    return kept, {"values": len(values), "rare_values": len(rare),
                  "rare_occurrences": int(pc.sum(rare).as_py() or 0)}


def encode(values: pa.ChunkedArray | pa.Array, vocab: pa.Array) -> np.ndarray:
    """int32 ids (the caller keeps vocabularies within int32): 0 for a null, 1 (OOV) for a value not in `vocab`,
    2.. by position in `vocab`."""
    index = pc.index_in(values, value_set=vocab)
    ids = pc.fill_null(index, OOV - FIRST_ID).to_numpy().astype(np.int32)
    ids += FIRST_ID
    if values.null_count:
        ids[pc.is_null(values).to_numpy(zero_copy_only=False)] = PAD
    return ids


def split_sequence(values: pa.ChunkedArray, delimiter: str, where: Where, column: str) -> tuple[pa.Array, np.ndarray]:
    """A history column as (flat values, per-row lengths): a string column split at `delimiter` (an empty or missing
    string is an empty history), or a Parquet list column."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.split_pattern(pc.fill_null(values, ""), delimiter)
    elif not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)):
        raise DataError(f"{where(0, column)}: a history column must hold {delimiter!r}-separated ids or a list, not "
                        f"{values.type}")
    values = pc.fill_null(values, pa.scalar([], values.type)) if values.null_count else values
    lists = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    flat = lists.flatten()
    if pa.types.is_string(flat.type):  # '^'-separated: '' (an empty history, or a trailing '^') is no id
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        empty = pc.equal(flat, "").to_numpy(zero_copy_only=False)
        if empty.any():
            owner = np.repeat(np.arange(len(lengths)), lengths)
            lengths = lengths - np.bincount(owner[empty], minlength=len(lengths))
            flat = pc.filter(flat, pa.array(~empty))
        return flat, lengths
    return flat, pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
