"""Shared fixtures: a tiny schema and batch, Hydra composition, a temporary MLflow store."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmark import PROJECT_ROOT
from benchmark.data.schema import Field, Schema

CONF_DIR = str(PROJECT_ROOT / "conf")
SHARED_DIR = PROJECT_ROOT.parent / "shared"

# Small enough that a whole job runs in a few seconds on 2 CPU cores.
TINY_SYNTHETIC = [
    "dataset.num_users=120", "dataset.num_items=200", "dataset.num_categories=8",
    "dataset.min_samples_per_user=6", "dataset.max_samples_per_user=12", "dataset.max_len=10",
    "dataset.valid_fraction=0.25", "dataset.test_fraction=0.25",
    "trainer.max_epochs=2", "trainer.progress=false", "embedding_dim=8",
]


# One intra-op thread: on a 2-core machine shared with other processes, several multi-threaded torch processes
# oversubscribe the cores and slow each other down by orders of magnitude.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """compose_cfg("model=lr", ...) -> the composed config, as `python -m benchmark` would see it."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def tiny_schema() -> Schema:
    return Schema(
        item_fields=(Field("item_id", 30), Field("cate_id", 6)),
        user_fields=(Field("gender", 3), Field("age", 8)),
        context_fields=(Field("hour", 7), Field("weekday", 8), Field("season", 5)),
        max_len=6,
    )


def make_batch(schema: Schema, batch_size: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random batch in the shared format; row 1 has an empty history, row 2 a full one."""
    g = torch.Generator().manual_seed(seed)
    t, fi = schema.max_len, len(schema.item_fields)

    def ids(fields: tuple[Field, ...], *shape: int) -> torch.Tensor:
        cols = [torch.randint(1, f.vocab_size, (*shape,), generator=g) for f in fields]
        return torch.stack(cols, dim=-1)

    hist_len = torch.randint(1, t + 1, (batch_size,), generator=g)
    hist_len[1] = 0
    hist_len[2] = t
    valid = (torch.arange(t)[None, :] < hist_len[:, None])[..., None]
    return {
        "item": ids(schema.item_fields, batch_size),
        "hist": ids(schema.item_fields, batch_size, t) * valid,
        "hist_len": hist_len,
        "neg_hist": ids(schema.item_fields, batch_size, t) * valid,
        "user": ids(schema.user_fields, batch_size),
        "context": ids(schema.context_fields, batch_size),
        "label": torch.randint(0, 2, (batch_size,), generator=g).float(),
        "user_id": torch.arange(batch_size) + 1,
    }


@pytest.fixture
def tiny_batch(tiny_schema: Schema) -> dict[str, torch.Tensor]:
    assert len(tiny_schema.item_fields) == 2
    return make_batch(tiny_schema)


# ------------------------------------------------------------------------------------- a local mlflow server
def free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """`mlflow server` on 127.0.0.1:`port` (a free one by default), with its SQLite store and artifacts in `folder`.
    It can be stopped and started again on the same port and store, as a server that went away and came back."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 300) -> None:
        """Start it and return once /health answers."""
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        with open(self.folder / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
                 "--artifacts-destination", str(self.folder / "art")],
                env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that stop() reaches every worker
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mlflow server did not start:\n{(self.folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop its whole process group (uvicorn and its workers) and wait until it is gone."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


@contextlib.contextmanager
def mlflow_server(folder: Path, timeout_s: float = 300) -> Iterator[str]:
    """An MlflowServer on a free port; yields its URL once /health answers, stops it at the end."""
    server = MlflowServer(folder)
    try:
        server.start(timeout_s)
        yield server.url
    finally:
        server.stop()
