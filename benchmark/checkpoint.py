"""Per-job checkpoints, so that an interrupted job resumes from its last finished epoch.

A job's checkpoints live in `<trainer.checkpoint_dir or <project>/checkpoints>/<model>-<dataset>-seed<N>-<key>/`,
where `key` hashes the resolved config without the keys that cannot change the result (`tracking.*`,
`experiment_name`, `trainer.resume`, `trainer.checkpoint_dir`, `trainer.progress`). The folder holds `last.pt`, rewritten
atomically at the end of every epoch (model, optimizer, RNG state, best weights, early-stopping state, per-epoch
history, and the MLflow run that wrote it), and a `.lock` that the running job holds, so that two processes
running the very same job never resume from or overwrite each other's checkpoint. The folder is removed when
the job's run ends FINISHED.

`trainer.resume`: `auto` (default) resumes from the folder's checkpoint when there is one; `false` starts
fresh (and removes an old checkpoint); a path (a `last.pt` file or a folder holding one) resumes from it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.paths import default_checkpoint_dir
from benchmark.interrupt import deferred
from benchmark.io import atomic_path

try:  # POSIX advisory lock; elsewhere two identical concurrent jobs are not detected
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
CHECKPOINT_FILE = "last.pt"
REQUIRED_KEYS = ("model", "optimizer", "progress")  # what Trainer.load_state reads
# Config keys that cannot change a job's result: left out of the job key.
NON_RESULT_KEYS = ("tracking", "hydra", "paths", "experiment_name", "trainer.resume", "trainer.checkpoint_dir",
                   "trainer.progress", "tune")  # tune: where a study lives; what it applies is in model/trainer


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit this job; the message says which file and what to do."""


def job_key(cfg: DictConfig) -> str:
    """16 hex digits of SHA-256 over the resolved config minus NON_RESULT_KEYS."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    for dotted in NON_RESULT_KEYS:
        *parents, last = dotted.split(".")
        node: Any = container
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    blob = json.dumps(container, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def job_folder(cfg: DictConfig) -> Path:
    """Where this job's checkpoints go."""
    root = cfg.trainer.get("checkpoint_dir", None) or OmegaConf.select(cfg, "paths.checkpoint_dir")
    base = Path(os.path.expanduser(str(root))) if root else default_checkpoint_dir()
    name = f"{cfg.model.name}-{cfg.dataset.name}-seed{cfg.seed}-{job_key(cfg)}"
    return base.resolve() / name


def resume_setting(cfg: DictConfig) -> str | Path | None:
    """`trainer.resume` as 'auto', None (false: start fresh) or a Path."""
    value = cfg.trainer.get("resume", "auto")
    if value is None or value is False or str(value).lower() in ("false", "no", "off", "none"):
        return None
    if value is True or str(value).lower() in ("auto", "true"):
        return "auto"
    return Path(os.path.expanduser(str(value)))


def checkpoint_file(path: Path) -> Path:
    """A checkpoint file given itself or the folder holding it."""
    return path / CHECKPOINT_FILE if path.is_dir() else path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; CheckpointError when it is missing, unreadable or of another format."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"trainer.resume: no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means the file cannot be used
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {str(error)[:200]}); delete it or run "
            "with trainer.resume=false"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not a format-{FORMAT_VERSION} checkpoint of this suite")
    absent = [key for key in REQUIRED_KEYS if key not in state]
    if absent or not isinstance(state["progress"], dict) or "epoch" not in state["progress"]:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {', '.join(absent) or 'progress.epoch'}); "
                              "delete it or run with trainer.resume=false")
    return state


class JobCheckpoint:
    """The checkpoint folder of one job: lock, save, load, remove."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder
        self.key = key
        self.run_id: str | None = None  # the MLflow run whose progress the next save records
        self.saved_epoch = 0  # the epoch of the last checkpoint this process wrote
        self._lock_file: Any = None

    @property
    def path(self) -> Path:
        return self.folder / CHECKPOINT_FILE

    def acquire(self) -> bool:
        """Take the folder's lock; False when another live process holds it (the same job is running)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as error:
            raise CheckpointError(f"trainer.checkpoint_dir: cannot make the folder {self.folder} ({error.strerror}: "
                                  "a file is in the way); give trainer.checkpoint_dir= a folder") from error
        handle = open(self.folder / ".lock", "a")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
        self._lock_file = handle
        return True

    def release(self) -> None:
        """Drop the lock; a folder left without a checkpoint (no epoch finished) is removed."""
        if self._lock_file is None:
            return
        if not self.path.exists():
            self.discard()
        self._lock_file.close()  # closing drops the lock
        self._lock_file = None

    def load(self) -> dict[str, Any] | None:
        """This job's checkpoint, or None when there is none."""
        return read_checkpoint(self.path) if self.path.is_file() else None

    def save(self, state: dict[str, Any]) -> None:
        """Write `state` (from Trainer.training_state) with this job's key and run id, atomically; a signal
        arriving meanwhile is raised once the file is complete."""
        record = dict(state, format=FORMAT_VERSION, key=self.key, run_id=self.run_id)
        with deferred(), atomic_path(self.path) as tmp:
            torch.save(record, tmp)
        self.saved_epoch = int(state["progress"]["epoch"])

    def discard(self) -> None:
        """Remove the checkpoint (a fresh start, or the job has FINISHED) and the folder when empty."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            (self.folder / ".lock").unlink()
            self.folder.rmdir()


def open_job_checkpoint(cfg: DictConfig) -> tuple[JobCheckpoint | None, dict[str, Any] | None]:
    """The job's checkpoint folder (locked; None when the same job runs elsewhere) and the state to resume
    from (None: start fresh), following `trainer.resume`."""
    setting = resume_setting(cfg)
    checkpoint = JobCheckpoint(job_folder(cfg), job_key(cfg))
    if not checkpoint.acquire():
        print(f"[benchmark] warning: {checkpoint.folder} is locked by another process running the same job; "
              "this run neither resumes nor writes checkpoints", file=sys.stderr)
        if isinstance(setting, Path):
            return None, read_checkpoint(setting)
        return None, None
    try:
        if setting is None:
            with contextlib.suppress(FileNotFoundError):
                checkpoint.path.unlink()
            return checkpoint, None
        if setting == "auto":
            return checkpoint, checkpoint.load()
        state = read_checkpoint(setting)
        if state.get("key") != checkpoint.key:
            print(f"[benchmark] warning: {checkpoint_file(setting)} was written by a different configuration "
                  "(job key differs); resuming from it anyway, as asked", file=sys.stderr)
        return checkpoint, state
    except BaseException:
        checkpoint.release()
        raise
