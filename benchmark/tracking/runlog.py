"""Logging that training never waits for: RunLog sends a run's logging to an MLflow server from a journal on
disk, in order, in the background; what the server never received is sent later by `replay`."""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from benchmark.tracking.store import TrackingError, retrying

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
