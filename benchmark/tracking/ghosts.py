"""Owners and ghost runs.

Every job's run is tagged with the process that owns it. A run still RUNNING whose owner process is gone
(SIGKILL, out of memory, a lost machine) is a ghost: nothing will ever end it."""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from benchmark.tracking.store import retrying

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
