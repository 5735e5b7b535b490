"""Recovering from runs that died without saying so (SIGKILL, power loss, OOM killer).

- Dagster's run monitoring fails runs whose worker is gone, but Dagster's default run launcher
  cannot tell ("does not support check_run_worker_health"), so a killed run stayed STARTED for
  ever and, with one run at a time, blocked every later run. `LocalRunLauncher` is the default
  launcher plus that health check for this machine: the run worker's pid (Dagster records it
  when the worker starts; runs started in process by `mlops-assets` carry it as a tag) is alive
  or not. The `dagster.yaml` the CLI writes selects it and turns monitoring on.
- `fail_dead_runs` applies the same rule once, for commands that run without the daemon.
- `end_orphaned_mlflow_runs` ends MLflow runs left RUNNING by a Dagster run that is over.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

PID_TAG = "mlops/pid"
ENDED_TAG = "mlops.ended_because"


def worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the process executing the run: the tag set by `mlops-assets`, or the
    "Started process for run (pid: N)" engine event of a launched run."""
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


def worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    pid = worker_pid(instance, run)
    if pid is None:  # not started far enough to say; the start timeout covers that case
        return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker pid recorded yet")
    if pid_alive(pid):
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker pid {pid} alive")
    return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker (pid {pid}) is gone: killed or crashed")


class LocalRunLauncher(DefaultRunLauncher):
    """The default run launcher, plus the run-worker health check that run monitoring needs.
    Only valid when runs execute on this machine (the embedded default)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return worker_health(self._instance, run)


def fail_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark STARTED runs whose worker process is gone as failed (what the monitoring daemon does
    under `dagster dev`), so they stop holding the run queue. Returns their run ids."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        health = worker_health(instance, run)
        if health.status == WorkerStatus.FAILED:
            instance.report_run_failed(run, f"Marked failed by mlops-assets: {health.msg}")
            log(f"run {run.run_id} ({run.job_name}) was left STARTED but its {health.msg}; marked failed")
            failed.append(run.run_id)
    from mlops_assets.concurrency import free_slots_of_ended_runs

    free_slots_of_ended_runs(instance, log)  # a killed writer would hold the warehouse pool for ever
    return failed


def end_orphaned_mlflow_runs(client, experiment_ids: list[str], instance: dg.DagsterInstance | None,
                             current_dagster_run: str | None = None,
                             log: Callable[[str], None] = print) -> list[str]:
    """End (as KILLED) the MLflow runs still RUNNING whose Dagster run is over: it finished,
    failed or was cancelled, typically because its worker was killed. Runs of Dagster runs this
    instance does not know are left alone (they may belong to another instance). Returns the
    MLflow run ids ended."""
    if instance is None or not experiment_ids:
        return []
    ended = []
    for run in client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'", max_results=1000):
        dagster_run_id = run.data.tags.get("dagster_run_id")
        if not dagster_run_id or dagster_run_id == current_dagster_run:
            continue
        dagster_run = instance.get_run_by_id(dagster_run_id)
        if dagster_run is None or not dagster_run.is_finished:
            continue
        client.set_tag(run.info.run_id, ENDED_TAG,
                       f"its Dagster run {dagster_run_id} ended ({dagster_run.status.value}) with this run open")
        client.set_terminated(run.info.run_id, status="KILLED")
        log(f"MLflow run {run.info.run_id} was left RUNNING by Dagster run {dagster_run_id} "
            f"({dagster_run.status.value}); marked KILLED")
        ended.append(run.info.run_id)
    return ended
