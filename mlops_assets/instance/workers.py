"""Whether the process executing a run is still alive, judged on this machine.

A run executed by `mlops-assets` in its own process carries its pid as a tag; a launched run
records it in Dagster's "Started process for run (pid: N)" engine event. The code location's
executor also tags every run with its host, so a pid is only judged on the machine it belongs to.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

PID_TAG = "mlops/pid"
HOST_TAG = "mlops/host"  # the machine of PID_TAG: a pid is judged on its own machine only


def worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process executing the run: the tag set by `mlops-assets`, or the
    "Started process for run (pid: N)" engine event of a launched run."""
    import dagster as dg  # not at load: every `mlops-assets` command reaches this module (home.py)

    if PID_TAG in run.tags:
        return int(run.tags[PID_TAG])
    records = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for record in reversed(records):  # a resumed run has a newer worker
        data = record.dagster_event.engine_event_data if record.dagster_event else None
        if data is not None and "pid" in (data.metadata or {}):
            return int(data.metadata["pid"].value)
    return None


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a killed child its parent has not
    reaped yet still answers kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def worker_tags() -> dict[str, str]:
    """Tags that let another process tell whether the run executing here died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def worker_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[bool, str]:
    """(True, why) when the run's worker process is gone; (False, what is known) otherwise."""
    pid = worker_pid(instance, run)
    if pid is None:  # not started far enough to say; the start timeout covers that case
        return False, "no worker pid recorded yet"
    if pid_alive(pid):
        return False, f"worker pid {pid} alive"
    return True, f"run worker (pid {pid}) is gone: killed or crashed"


def dead_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why ``run``'s worker is known to be gone, or None when it is alive or cannot be judged
    here. Judged: runs tagged with this machine's host (every run of the code location's
    executor), and runs `mlops-assets` executed in its own process (PID_TAG alone; fail_dead_runs
    judges those the same way). A run of another host or container, or one without a pid tag,
    is left alone: its pid means nothing on this machine."""
    host = run.tags.get(HOST_TAG)
    if (host is None and PID_TAG not in run.tags) or (host is not None and host != socket.gethostname()):
        return None
    gone, why = worker_gone(instance, run)
    return why if gone else None
