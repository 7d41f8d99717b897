"""Atomic file writes and an inter-process file lock. Atomic writes: a reader sees the old file or the complete new one, never a half-written file.

Each write goes to a temporary file in the same folder (same filesystem), is flushed to disk, and is then
renamed over the target with `os.replace` (atomic on POSIX and Windows). A write that fails or is
interrupted removes its temporary file and leaves the target untouched.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, the file written there replaces `path`.

    For writers that want a file name (torch.save, np.save, DataFrame.to_csv):
        with atomic_path(out) as tmp:
            torch.save(state, tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the data must be on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and caches are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically (newlines as given, no platform translation)."""
    atomic_write_bytes(path, text.encode(encoding))


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed), held by one process at a time; a no-op where
    `fcntl` does not exist."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_result_files(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """A benchmark script's result as <out>/<stem>.json and <stem>.md (the scale benchmarks under results/scale)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    print(f"wrote {out / stem}.md/.json")
