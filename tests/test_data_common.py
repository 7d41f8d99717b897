"""Shared raw-file reading and sample-building helpers."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from benchmark.data import common
from benchmark.data.errors import DataError


def lines_of(path: Path) -> list[tuple[int, bytes]]:
    return list(common.read_lines(path))


def test_plain_gzip_and_multimember_gzip_read_alike(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(common, "_READ_CHUNK", 7)  # many tiny chunks: lines cut across chunk borders
    text = b"".join(b"line %d with some text\n" % i for i in range(200)) + b"last without newline"
    expected = list(enumerate(text.split(b"\n"), 1))
    (tmp_path / "a.txt").write_bytes(text)
    (tmp_path / "a.gz").write_bytes(gzip.compress(text))
    (tmp_path / "m.gz").write_bytes(gzip.compress(text[:1000]) + gzip.compress(b"") + gzip.compress(text[1000:]))
    for name in ("a.txt", "a.gz", "m.gz"):
        assert lines_of(tmp_path / name) == expected, name


def test_crlf_bom_and_empty(tmp_path: Path) -> None:
    (tmp_path / "crlf.txt").write_bytes(b"\xef\xbb\xbfa\r\nb\r\n")
    assert [line.rstrip(b"\r") for _, line in lines_of(tmp_path / "crlf.txt")] == [b"a", b"b"]
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    assert lines_of(tmp_path / "empty.gz") == []
    (tmp_path / "utf32.txt").write_bytes("x\n".encode("utf-32"))
    with pytest.raises(DataError, match="UTF-32 byte-order mark"):
        lines_of(tmp_path / "utf32.txt")


def test_corrupt_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"".join(b"row %d\n" % i for i in range(5000))))
    (tmp_path / "trunc.gz").write_bytes(bytes(data[:-20]))
    with pytest.raises(DataError, match=r"trunc\.gz is truncated or corrupt after line \d+"):
        lines_of(tmp_path / "trunc.gz")
    data[-6] ^= 0xFF  # the CRC-32 in the trailer
    (tmp_path / "crc.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"crc\.gz is truncated or corrupt"):
        lines_of(tmp_path / "crc.gz")
    (tmp_path / "fake.gz").write_bytes(b"plain text\n")
    with pytest.raises(DataError, match="is named .gz but is not a gzip file"):
        lines_of(tmp_path / "fake.gz")


def test_consumer_stopping_early_ends_the_reader_thread(tmp_path: Path) -> None:
    import threading

    (tmp_path / "big.gz").write_bytes(gzip.compress(b"x" * 100 + b"\n" * 200_000))
    before = threading.active_count()
    gen = common.read_lines(tmp_path / "big.gz")
    next(gen)
    gen.close()
    assert threading.active_count() == before


def test_log2_bucket_and_positions() -> None:
    np.testing.assert_array_equal(common.log2_bucket(np.array([0, 1, 2, 3, 6, 7, 14, 15, 10**9]), 6),
                                  [1, 2, 2, 3, 3, 4, 4, 5, 6])
    pos, start, count = common.user_positions(np.array([3, 3, 5, 7, 7, 7]))
    np.testing.assert_array_equal(pos, [0, 1, 0, 0, 1, 2])
    np.testing.assert_array_equal(start, [0, 0, 2, 3, 3, 3])
    np.testing.assert_array_equal(count, [2, 2, 1, 3, 3, 3])


def test_sample_unseen_never_returns_seen_items() -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(1, 4), 500)
    seen = {1: [1, 2, 3, 4], 2: [5], 3: [1, 2, 3, 4, 5, 6, 7, 8, 9]}  # user 3 has one unseen item: 10
    keys = np.unique([u * 11 + i for u, items in seen.items() for i in items])
    out = common.sample_unseen(rng, users, 10, keys, 11)
    for u, i in zip(users, out):
        assert 1 <= i <= 10 and i not in seen[int(u)]
    assert (out[users == 3] == 10).all()
    with pytest.raises(DataError, match="interacted with"):
        common.sample_unseen(rng, np.array([1]), 4, keys, 11)
