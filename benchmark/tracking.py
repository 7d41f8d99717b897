"""MLflow tracking: where the store is, one run per job, and what every run records."""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.data.meta_dataset import MetaDataset
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from benchmark import PROJECT_ROOT, SOURCE_CHECKOUT, state_root
from benchmark.io import file_lock

T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used: raised before any training starts."""


def default_db() -> Path:
    """The SQLite store used when nothing names one: `mlflow.db` under the state root (benchmark/paths.py)."""
    return state_root() / "mlflow.db"


def resolve_tracking_uri(configured: str | None, default: str | Path | None = None) -> str:
    """`tracking.uri` if set, else $MLFLOW_TRACKING_URI, else the SQLite file `default` (a job's
    `paths.tracking_db`; without one, `default_db()`)."""
    if configured:
        return str(configured)
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default or default_db()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store, None for any other store."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database file (an absolute path, not the job's cwd);
    a server decides for itself (None)."""
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").resolve().as_uri() if db is not None else None


def mlflow_executable() -> str:
    """`mlflow` as the user can type it: the one installed beside this Python (e.g. `.venv/bin/mlflow`, which
    is not on PATH unless the environment is activated), else plain `mlflow`."""
    beside = Path(sys.executable).parent / "mlflow"
    on_path = shutil.which("mlflow")
    if not beside.exists() or (on_path is not None and Path(on_path).absolute() == beside.absolute()):
        return "mlflow"
    with contextlib.suppress(ValueError):
        return str(beside.absolute().relative_to(Path.cwd()))
    return str(beside)


def dashboard_hint(uri: str) -> str:
    if sqlite_path(uri) is not None:
        return f"{mlflow_executable()} ui --backend-store-uri {uri}"
    return f"open {uri}"


# Errors of a SQLite store under concurrent writers (parallel Hydra jobs): worth a retry after a short wait.
_TRANSIENT = ("database is locked", "database table is locked", "sqlite_busy")


def _is_transient(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}".lower()
    return any(marker in text for marker in _TRANSIENT)


def retrying(fn: Callable[..., T], *args: Any, attempts: int = 8, **kwargs: Any) -> T:
    """fn(*args, **kwargs), retried with a growing, jittered wait while it fails with a transient SQLite
    concurrency error (other errors are raised at once)."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - filtered by _is_transient
            if attempt == attempts - 1 or not _is_transient(error):
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    retrying(mlflow.log_metrics, metrics, step=step)


def log_params(params: dict[str, Any]) -> None:
    retrying(mlflow.log_params, params)


def set_tags(tags: dict[str, Any]) -> None:
    retrying(mlflow.set_tags, tags)


def log_text(text: str, artifact_file: str) -> None:
    retrying(mlflow.log_text, text, artifact_file)


def end_run(status: str) -> None:
    """End the active run with `status` (MLflow pops it only once the store has it, so a retry is safe)."""
    retrying(mlflow.end_run, status=status)


FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextlib.contextmanager
def _fail_fast_http() -> Iterator[None]:
    """For the reachability probe only: no retries and a short timeout, unless the user set them. MLflow's
    defaults (7 retries with exponential backoff, 120 s timeout) would hold a job for minutes on a dead
    server; later logging keeps the defaults, so a short network hiccup mid-run does not fail the job."""
    saved = {key: os.environ.get(key) for key in FAIL_FAST_HTTP}
    for key, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# MLflow 3's UI opens an experiment of this kind on its runs table ("Model training"), not the GenAI overview
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


# A view of the runs table that MLflow 3's UI opens from `#/experiments/<id>/runs?viewStateShareKey=comparison`
# (the state its "Share" button stores as an experiment tag): every run, best test AUC first, with the test
# metrics, model and seed as columns.
COMPARISON_VIEW = "comparison"
COMPARISON_COLUMNS = ("metrics.`test_auc`", "metrics.`test_gauc`", "metrics.`test_logloss`", "tags.`model`",
                      "tags.`seed`", "attributes.`Dataset`")


def comparison_url(base: str, experiment_id: str) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={COMPARISON_VIEW}"


def _get_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
    experiment_id = _find_or_create_experiment(client, uri, name)
    tags = client.get_experiment(experiment_id).tags
    if EXPERIMENT_KIND[0] not in tags:  # the user's choice is kept
        client.set_experiment_tag(experiment_id, *EXPERIMENT_KIND)
    view_tag = f"mlflow.sharedViewState.{COMPARISON_VIEW}"
    if view_tag not in tags:
        client.set_experiment_tag(experiment_id, view_tag, json.dumps(
            {"orderByKey": "metrics.`test_auc`", "orderByAsc": False, "selectedColumns": list(COMPARISON_COLUMNS)}))
    return experiment_id


def _find_or_create_experiment(client: MlflowClient, uri: str, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"experiment {name!r} in {uri!r} is deleted: restore it (mlflow experiments restore) or use "
                "another tracking.experiment"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except mlflow.exceptions.MlflowException:
        experiment = client.get_experiment_by_name(name)  # another process created it in the meantime
        if experiment is None:
            raise
        return experiment.experiment_id


def prepare_experiment(uri: str, name: str) -> str:
    """Create the store and the experiment if needed; returns the experiment id. Idempotent and safe to call
    from parallel processes (SQLite: under a lock file beside the database, with retries).

    Fails fast with a TrackingError when the store is unreachable or unusable, so that no job trains for an
    hour and then loses its results."""
    mlflow.set_tracking_uri(uri)
    try:
        db = sqlite_path(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(db.with_name(db.name + ".lock")):
                return retrying(lambda: _get_or_create_experiment(MlflowClient(uri), uri, name))
        with _fail_fast_http():
            return _get_or_create_experiment(MlflowClient(uri), uri, name)
    except TrackingError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure here means the store is unusable
        text = str(error)
        reason = f"{type(error).__name__}: {text[:300]}"
        if any(sign in text for sign in ("NewConnectionError", "Connection refused", "timed out", "Max retries")):
            reason = "no answer (connection refused or timed out)"
        hint = ("is it an MLflow SQLite database, and writable?" if uri.startswith("sqlite:")
                else "is the server running?")
        raise TrackingError(
            f"cannot use the MLflow tracking store {uri!r}: {reason}\n"
            f"Check tracking.uri / MLFLOW_TRACKING_URI ({hint})."
        ) from error


COMMIT_ENV = "BENCHMARK_GIT_COMMIT"


def git_commit() -> str:
    """git's HEAD (with "-dirty" when tracked files differ), or $BENCHMARK_GIT_COMMIT when set: a machine that
    received the working tree without its matching .git (a copy made for a GPU machine) must be told the commit."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    if not SOURCE_CHECKOUT:  # an installed package: git would answer for whatever repository holds the venv
        return "unknown"
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become their string form."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_config(cfg: DictConfig) -> None:
    """Every resolved config value as a param (filterable in the dashboard) and the YAML as an artifact."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    container.pop("paths", None)  # this machine's folders: no part of the job (the checkpoint_dir tag names its own)
    params = {k: str(v)[:500] for k, v in flatten(container).items()}
    items = list(params.items())
    for lo in range(0, len(items), 100):
        log_params(dict(items[lo:lo + 100]))
    log_text(OmegaConf.to_yaml(OmegaConf.create(container)), "config.yaml")


# ------------------------------------------------------------------------- logging that training never waits for
PENDING_DIR = "mlflow-pending"  # beside the job folders under the checkpoint root: journals of unsent logging
RETRY_INTERVAL_S = 2.0  # while the server does not answer, the sender tries again this often
REQUEST_TIMEOUT_S = 10.0  # one request of the sender (MLflow's own default is 120 s, with 7 retries)
LOG_BATCH_ENDPOINT = "/api/2.0/mlflow/runs/log-batch"
UPDATE_RUN_ENDPOINT = "/api/2.0/mlflow/runs/update"


class TrackingBacklog(TrackingError):
    """The job ended while the tracking server still did not answer: its logging is kept in a journal."""


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _batch_op(metrics: dict[str, float] | None = None, step: int | None = None,
              tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """One log-batch call as plain JSON: metrics [key, value, timestamp ms, step], tags {key: value}."""
    stamp = _now_ms()
    return {"op": "log_batch", "metrics": [[k, float(v), stamp, int(step or 0)] for k, v in (metrics or {}).items()],
            "tags": {k: str(v) for k, v in (tags or {}).items()}}


def _rest_send(uri: str, run_id: str, op: dict[str, Any]) -> None:
    """Send one journal entry to an MLflow server: a single request, no retries, a short timeout (the sender
    retries on its own schedule)."""
    from mlflow.entities import Metric, RunStatus, RunTag
    from mlflow.protos.service_pb2 import LogBatch, UpdateRun
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.proto_json_utils import message_to_json
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    if op["op"] == "log_batch":
        endpoint = LOG_BATCH_ENDPOINT
        body = message_to_json(LogBatch(
            run_id=run_id, metrics=[Metric(k, v, t, s).to_proto() for k, v, t, s in op["metrics"]],
            tags=[RunTag(k, v).to_proto() for k, v in op["tags"].items()]))
    elif op["op"] == "set_terminated":
        endpoint = UPDATE_RUN_ENDPOINT
        body = message_to_json(UpdateRun(run_id=run_id, run_uuid=run_id, status=RunStatus.from_string(op["status"]),
                                         end_time=op["end_time"]))
    else:
        raise ValueError(f"the sender cannot send a {op['op']!r} entry")
    response = http_request(get_default_host_creds(uri), endpoint, "POST", max_retries=0,
                            timeout=REQUEST_TIMEOUT_S, json=json.loads(body))
    verify_rest_response(response, endpoint)


def _client_send(client: MlflowClient, run_id: str, op: dict[str, Any], folder: Path) -> None:
    """Apply one journal entry through MlflowClient (inline logging and replay)."""
    from mlflow.entities import Metric, RunTag

    if op["op"] == "log_batch":
        retrying(client.log_batch, run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in op["metrics"]],
                 tags=[RunTag(k, v) for k, v in op["tags"].items()])
    elif op["op"] == "set_terminated":
        retrying(client.set_terminated, run_id, op["status"], end_time=op["end_time"])
    elif op["op"] == "log_artifacts":
        retrying(client.log_artifacts, run_id, str(folder / op["local"]), op.get("artifact_path"))
    else:
        raise ValueError(f"unknown journal entry {op['op']!r}")


def _no_answer(error: BaseException) -> str:
    text = str(error)
    if "timed out" in text or "timeout" in text.lower():
        return "request timed out"
    if any(sign in text for sign in ("NewConnectionError", "Connection refused", "Max retries")):
        return "connection refused"
    return f"{type(error).__name__}: {text[:200]}"


def _worth_retrying(error: BaseException) -> bool:
    """Connection failures, timeouts, 5xx and 429 are the server's state; a 4xx is this request's fault."""
    from mlflow.exceptions import RestException

    if isinstance(error, RestException):
        status = error.get_http_status_code()
        return status >= 500 or status == 429
    return True


class RunLog:
    """The logging of one run during and right after training, in order, without making training wait.

    Other stores (SQLite) are written inline, as before. For an MLflow server each call is appended to a
    journal (`<pending dir>/<run id>.jsonl`, JSON lines) and sent in order by a background thread with one short
    request at a time, not MLflow's minutes of retries. While the server does not answer, the thread tries again
    every RETRY_INTERVAL_S and training goes on; the outage is reported when it starts and, with its length, when
    it ends. `close()` waits for the backlog; what is still unsent then stays in the journal, which
    `python -m benchmark.tracking replay <journal>` sends later."""

    def __init__(self, uri: str, run_id: str, pending_dir: Path | None) -> None:
        self.uri, self.run_id = uri, run_id
        self.asynchronous = is_http(uri) and pending_dir is not None
        self.journal: Path | None = None
        self.errors: list[str] = []  # entries the server refused (4xx): dropped, reported at close
        self.outage_started: float | None = None
        self._queue: list[dict[str, Any]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = False
        self.closed = False
        self._thread: threading.Thread | None = None
        self._client = MlflowClient(uri)
        if self.asynchronous:
            assert pending_dir is not None
            pending_dir.mkdir(parents=True, exist_ok=True)
            self.journal = pending_dir / f"{run_id}.jsonl"
            self._write({"journal": 1, "uri": uri, "run_id": run_id})
            self._thread = threading.Thread(target=self._send_loop, name=f"mlflow-{run_id[:8]}", daemon=True)
            self._thread.start()

    @property
    def artifacts_dir(self) -> Path:
        """Where files that could not be uploaded are kept for the replay."""
        assert self.journal is not None
        return self.journal.with_suffix("")

    def _write(self, record: dict[str, Any]) -> None:
        assert self.journal is not None
        with self._write_lock, open(self.journal, "a") as out:
            out.write(json.dumps(record) + "\n")

    def _submit(self, op: dict[str, Any], send: bool = True) -> None:
        if not self.asynchronous:
            _client_send(self._client, self.run_id, op, Path("."))
            return
        with self._cond:
            self._seq += 1
            op = dict(op, seq=self._seq)
            self._write(op)  # in the journal before it is sent: a crash loses nothing
            if send:
                self._queue.append(op)
                self._cond.notify_all()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._submit(_batch_op(metrics, step))

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._submit(_batch_op(tags=tags))

    def end(self, status: str) -> None:
        """End the run (only for a failure or an interrupt: a FINISHED run ends after its uploads)."""
        self._submit({"op": "set_terminated", "status": status, "end_time": _now_ms()})

    def keep(self, status: str) -> None:
        """After a failed close: the files put in `artifacts_dir` meanwhile and the run's end, in the journal
        only (the replay uploads and ends the run)."""
        if self.artifacts_dir.is_dir():
            self._submit({"op": "log_artifacts", "local": self.artifacts_dir.name, "artifact_path": None}, send=False)
        self._submit({"op": "set_terminated", "status": status, "end_time": _now_ms()}, send=False)

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                op = self._queue[0]
            try:
                _rest_send(self.uri, self.run_id, op)
            except Exception as error:  # noqa: BLE001 - sorted by _worth_retrying
                if not _worth_retrying(error):
                    self.errors.append(f"{op['op']} refused: {str(error)[:300]}")
                    self._sent(op)
                    continue
                if self.outage_started is None:
                    self.outage_started = time.monotonic()
                    print(f"[benchmark] warning: the tracking server {self.uri} does not answer "
                          f"({_no_answer(error)}); training goes on, the run's logging is kept in {self.journal} "
                          "and sent once the server answers", file=sys.stderr, flush=True)
                with self._cond:
                    self._cond.wait_for(lambda: self._stop, timeout=RETRY_INTERVAL_S)
                continue
            if self.outage_started is not None:
                lasted = time.monotonic() - self.outage_started
                self.outage_started = None
                print(f"[benchmark] warning: the tracking server {self.uri} did not answer for {lasted:.1f} s; "
                      f"the logging held meanwhile is now sent, in order", file=sys.stderr, flush=True)
            self._sent(op)

    def _sent(self, op: dict[str, Any]) -> None:
        self._write({"sent": op["seq"]})
        with self._cond:
            self._queue.pop(0)
            self._cond.notify_all()

    def close(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for everything to be sent and stop the sender. True: the journal is no longer
        needed (removed); False: the server still did not answer, the journal keeps what is unsent."""
        self.closed = True
        if not self.asynchronous:
            return True
        with self._cond:
            self._cond.wait_for(lambda: not self._queue, timeout=timeout_s)
            drained = not self._queue
            self._stop = True
            self._cond.notify_all()
        assert self._thread is not None
        self._thread.join(timeout=REQUEST_TIMEOUT_S + 1)
        if self.errors:
            print(f"[benchmark] warning: the tracking server refused {len(self.errors)} logging call(s) of run "
                  f"{self.run_id}: {'; '.join(self.errors[:3])}", file=sys.stderr)
        if drained and self.journal is not None:
            self.journal.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.journal.parent.rmdir()
        return drained

    def unreachable_for(self) -> float:
        return 0.0 if self.outage_started is None else time.monotonic() - self.outage_started

    def backlog_message(self) -> str:
        return (f"the tracking server {self.uri} did not answer for the last {self.unreachable_for():.0f} s of the "
                f"job: run {self.run_id} is complete only on disk. Once the server is back, send it with\n"
                f"  {sys.executable} -m benchmark.tracking replay {self.journal}")


def drop_active_run() -> None:
    """Forget the fluent API's active run without contacting the store (its end is in a journal). MLflow has no
    public call for that; without it, mlflow.end_run at exit would wait minutes for the dead server."""
    from mlflow.environment_variables import MLFLOW_RUN_ID
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()
    if stack:
        stack.pop()
        MLFLOW_RUN_ID.unset()


def read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, entries not yet sent, in order) of a journal written by RunLog."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0].get("journal") != 1:
        raise ValueError(f"{path} is not a logging journal of this suite")
    sent = {line["sent"] for line in lines[1:] if "sent" in line}
    return lines[0], [line for line in lines[1:] if "op" in line and line["seq"] not in sent]


def replay(path: Path, uri: str | None = None) -> int:
    """Send the unsent entries of journal `path` to its store (or `uri`), in order, marking each sent as it
    goes (an interrupted replay resumes); removes the journal and its files once done. Returns the count."""
    header, pending = read_journal(path)
    target = uri or header["uri"]
    client = MlflowClient(target)
    for op in pending:
        _client_send(client, header["run_id"], op, path.parent)
        with open(path, "a") as out:
            out.write(json.dumps({"sent": op["seq"]}) + "\n")
    with contextlib.suppress(mlflow.exceptions.MlflowException):
        if "reaped" in client.get_run(header["run_id"]).data.tags:  # ended KILLED as a ghost meanwhile
            client.delete_tag(header["run_id"], "reaped")
    path.unlink()
    shutil.rmtree(path.with_suffix(""), ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return len(pending)


# ------------------------------------------------------------------------------------- owners and ghost runs
# Every job's run is tagged with the process that owns it. A run still RUNNING whose owner process is gone
# (SIGKILL, out of memory, a lost machine) is a ghost: nothing will ever end it.
OWNER_TAGS = ("owner.host", "owner.pid", "owner.start", "owner.pidns")


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _pid_namespace() -> str:
    with contextlib.suppress(OSError):
        return str(os.stat("/proc/self/ns/pid").st_ino)
    return ""


def process_start(pid: int) -> str | None:
    """`<boot id>:<start time in clock ticks>` of process `pid` (Linux /proc), None when it cannot be read: two
    processes never share it, even when the pid is reused or the machine rebooted."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
    return f"{_boot_id()}:{fields[19]}"  # field 22 of stat(5): starttime


def owner_tags() -> dict[str, str]:
    """The tags naming this process as a run's owner."""
    return {"owner.host": socket.gethostname(), "owner.pid": str(os.getpid()),
            "owner.start": process_start(os.getpid()) or "", "owner.pidns": _pid_namespace()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_orphaned(run: Any) -> bool:
    """True when `run` is RUNNING and its owner process is known to be gone: it ran on this host (and pid
    namespace) and that pid is dead or now another process, or the host rebooted since. False when it is not
    RUNNING, its owner lives, or nothing can be known (another host, no owner tags: runs of older versions)."""
    if run.info.status != "RUNNING":
        return False
    tags = run.data.tags
    if any(not tags.get(key) for key in ("owner.host", "owner.pid")):
        return False
    if tags["owner.host"] != socket.gethostname() or tags.get("owner.pidns", "") != _pid_namespace():
        return False
    started = tags.get("owner.start", "")
    if started and started.split(":")[0] != _boot_id():
        return True  # the machine rebooted since the run started
    pid = int(tags["owner.pid"])
    if not _pid_alive(pid):
        return True
    return bool(started) and process_start(pid) not in (None, started)


def ghost_runs(runs: list[Any]) -> list[Any]:
    """The runs of `runs` that are RUNNING with no live owner (see is_orphaned): for reports to list apart."""
    return [run for run in runs if is_orphaned(run)]


def reap_ghosts(uri: str, experiment_ids: list[str] | None = None) -> list[Any]:
    """End every ghost run of these experiments (all, when None) as KILLED, tagged `reaped` with the reason.
    Returns them."""
    client = MlflowClient(uri)
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    runs = client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'", max_results=50000)
    ghosts = ghost_runs(runs)
    for run in ghosts:
        tags = run.data.tags
        reason = f"owner process {tags['owner.pid']} on {tags['owner.host']} ended without ending the run"
        retrying(client.set_tag, run.info.run_id, "reaped", reason)
        retrying(client.set_terminated, run.info.run_id, "KILLED")
    return ghosts


def end_replaced_run(uri: str, old_run_id: str, new_run_id: str) -> bool:
    """The run `old_run_id`, whose checkpoint the run `new_run_id` resumes, ends KILLED with the tag
    `replaced_by` when it is still RUNNING (its process was killed without a chance to end it). The caller
    holds the checkpoint's lock, so no live process owns that run. True when it was ended."""
    client = MlflowClient(uri)
    try:
        old = retrying(client.get_run, old_run_id)
    except mlflow.exceptions.MlflowException:  # written into another store
        return False
    if old.info.status != "RUNNING":
        return False
    retrying(client.set_tag, old_run_id, "replaced_by", new_run_id)
    retrying(client.set_tag, old_run_id, "error", f"the job's process died; resumed in run {new_run_id}")
    retrying(client.set_terminated, old_run_id, "KILLED")
    return True


# ------------------------------------------------------------------------------------------ dataset and model
class _SplitsDataset(MetaDataset):
    """The dataset as MLflow's Dataset column shows it: name, digest (the cache key) and, as its profile, the
    size of each split. No data is uploaded."""

    def __init__(self, name: str, digest: str, sizes: dict[str, int], source: Any) -> None:
        self._sizes = sizes
        super().__init__(source=source, name=name, digest=digest)

    @property
    def profile(self) -> dict[str, int]:
        return {f"{split}_samples": n for split, n in self._sizes.items()}

    def to_dict(self) -> dict[str, str]:
        return dict(super().to_dict(), profile=json.dumps(self.profile))


def dataset_digest(stats: dict[str, Any], dataset_cfg: DictConfig) -> str:
    """The dataset's cache key: from its cache entry (`<name>-<key>`), else (data generated, never cached) the
    key of its resolved config as the cache would compute it."""
    entry = str(stats.get("cache_entry", ""))
    if "-" in entry:
        return entry.rsplit("-", 1)[1]
    from benchmark.data.cache import cache_key

    container = OmegaConf.to_container(dataset_cfg, resolve=True)
    assert isinstance(container, dict)
    return cache_key(container, [])


def log_dataset(name: str, digest: str, sizes: dict[str, int], loader: str) -> None:
    """`mlflow.log_input` of the dataset (context `training`), with the split sizes as its profile and tags."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    source = CodeDatasetSource(tags={"loader": f"benchmark.data.{loader}"})
    dataset = _SplitsDataset(name, digest, sizes, source)
    retrying(mlflow.log_input, dataset, context="training", tags={f"{k}_samples": str(v) for k, v in sizes.items()})


MODEL_NAME = "model"


def log_model(model: Any, example: dict[str, Any], path: Path | None = None) -> None:
    """The model (best weights) as an MLflow PyTorch model named `model` in the active run (or saved in the
    folder `path`, for a replay), with `example` (a batch of numpy arrays, the model's input) and the signature
    inferred from it. Load it and predict:
    `torch.sigmoid(mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location="cpu")(batch))`."""
    import mlflow.pytorch
    import numpy as np
    import torch

    from mlflow.models import infer_signature

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = model({k: torch.as_tensor(v, device=device) for k, v in example.items()}).float().cpu().numpy()
    signature = infer_signature({k: np.asarray(v) for k, v in example.items()}, out)
    if path is not None:
        mlflow.pytorch.save_model(model, str(path), input_example=example, signature=signature,
                                  serialization_format="pickle")
    else:
        retrying(mlflow.pytorch.log_model, model, name=MODEL_NAME, input_example=example, signature=signature,
                 serialization_format="pickle")


# ---------------------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.tracking replay JOURNAL...` | `reap [--tracking-uri URI] [--experiment NAME ...]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmark.tracking", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replay_cmd = commands.add_parser("replay", help="send the logging a job kept while the server was away")
    replay_cmd.add_argument("journals", nargs="+", type=Path, help="journal files (.jsonl) or folders of them")
    replay_cmd.add_argument("--tracking-uri", help="send to this store instead of the journal's")
    reap_cmd = commands.add_parser("reap", help="end RUNNING runs whose owner process is gone as KILLED")
    reap_cmd.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else the project's mlflow.db")
    reap_cmd.add_argument("--experiment", action="append", help="experiment name (default: all); repeatable")
    args = parser.parse_args(argv)
    if args.command == "replay":
        files = [f for p in args.journals for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
        for path in files:
            try:
                count = replay(path, args.tracking_uri)
            except (OSError, ValueError, mlflow.exceptions.MlflowException) as error:
                print(f"error: {path}: {str(error)[:500]}", file=sys.stderr)
                return 2
            print(f"{path}: sent {count} logging call(s)")
        return 0
    uri = resolve_tracking_uri(args.tracking_uri)
    client = MlflowClient(uri)
    ids = None
    if args.experiment:
        found = [client.get_experiment_by_name(name) for name in args.experiment]
        ids = [e.experiment_id for e in found if e is not None]
    for run in reap_ghosts(uri, ids):
        print(f"run {run.info.run_id} ({run.info.run_name}) ended KILLED: {run.data.tags['owner.host']} pid "
              f"{run.data.tags['owner.pid']} is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
