"""Recovering from runs that died without saying so (SIGKILL, power loss, OOM killer).

- Dagster's run monitoring fails runs whose worker is gone, but Dagster's default run launcher
  cannot tell ("does not support check_run_worker_health"), so a killed run stayed STARTED for
  ever and, with one run at a time, blocked every later run. `LocalRunLauncher` is the default
  launcher plus that health check for this machine: the run worker's pid (Dagster records it
  when the worker starts; runs started in process by `mlops-assets` carry it as a tag) is alive
  or not. The `dagster.yaml` the CLI writes selects it and turns monitoring on.
- `fail_dead_runs` applies the same rule once, for commands that run without the daemon.
- `end_orphaned_mlflow_runs` ends MLflow runs left RUNNING by a Dagster run that is over.
- `with_dead_run_recovery` wraps the code location's executor: every run tags itself with its
  worker's pid and host, frees the pool slots of dead runs when it starts, and, while one of its
  steps waits for a slot, says at INFO which runs hold the pool and how to free it, and keeps
  freeing slots of runs that die meanwhile (concurrency.free_slots_of_dead_runs). A killed
  `dagster asset materialize` thus never blocks the next one, with or without the daemon.
"""
from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
from dagster._core.executor.base import Executor
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

PID_TAG = "mlops/pid"
HOST_TAG = "mlops/host"  # the machine of PID_TAG: a pid is judged on its own machine only
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


def worker_tags() -> dict[str, str]:
    """Tags that let another process tell whether the run executing here died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def dead_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why ``run``'s worker is known to be gone, or None when it is alive or cannot be judged
    here. Judged: runs tagged with this machine's host (every run of the code location's
    executor), and runs `mlops-assets` executed in its own process (PID_TAG alone; fail_dead_runs
    judges those the same way). A run of another host or container, or one without a pid tag,
    is left alone: its pid means nothing on this machine."""
    host = run.tags.get(HOST_TAG)
    if (host is None and PID_TAG not in run.tags) or (host is not None and host != socket.gethostname()):
        return None
    health = worker_health(instance, run)
    return health.msg if health.status == WorkerStatus.FAILED else None


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
    from mlops_assets.instance.concurrency import free_slots_of_ended_runs

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


BLOCKED_PREFIXES = ("Step blocked by limit for pool", "Step still blocked by limit for pool")


def _blocked_pool(event) -> str | None:
    """The pool of Dagster's "Step blocked by limit for pool" engine event (logged at DEBUG)."""
    if event.event_type != dg.DagsterEventType.ENGINE_EVENT or not (event.message or "").startswith(BLOCKED_PREFIXES):
        return None
    pool = (event.engine_event_data.metadata or {}).get("pool") if event.engine_event_data else None
    return getattr(pool, "value", None) or (event.message or "").rsplit(" ", 1)[-1]


class _SlotWatch:
    """While a step of the run waits for a pool slot: every ``poll_s``, free the slots of runs
    that died (Dagster itself re-logs a blocked step only every 5 minutes)."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, poll_s: float):
        self._instance, self._run_id, self._poll_s = instance, run_id, poll_s
        self.waiting: set[str] = set()
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mlops-slot-watch", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        from mlops_assets.instance.concurrency import free_slots_of_dead_runs

        while not self._stop.wait(self._poll_s):
            if self.waiting:
                try:
                    free_slots_of_dead_runs(self._instance, self._run_id, self.messages.append)
                except Exception as exc:  # noqa: BLE001 - a failed check must not break the run
                    self.messages.append(f"could not check the pool's slot holders: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class DeadRunRecoveringExecutor(Executor):
    """Runs the steps with ``inner`` and recovers pool slots from dead runs (see the module
    docstring). Built by with_dead_run_recovery."""

    def __init__(self, inner: Executor, poll_s: float = 5.0):
        self._inner = inner
        self._poll_s = poll_s

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator:
        from mlops_assets.instance.concurrency import describe_wait, free_slots_of_dead_runs

        instance, run_id, log = plan_context.instance, plan_context.run_id, plan_context.log
        try:
            instance.add_run_tags(run_id, worker_tags())
            free_slots_of_dead_runs(instance, run_id, log.info)
        except Exception as exc:  # noqa: BLE001 - recovery is best effort, the run goes on
            log.warning(f"could not check for pool slots held by dead runs: {exc}")
        watch = _SlotWatch(instance, run_id, self._poll_s)
        try:
            for event in self._inner.execute(plan_context, execution_plan):
                yield event
                pool = _blocked_pool(event)
                if pool is not None:
                    watch.waiting.add(event.step_key)
                    try:
                        free_slots_of_dead_runs(instance, run_id, log.info)
                        log.info(describe_wait(instance, pool, event.step_key, run_id))
                    except Exception as exc:  # noqa: BLE001
                        log.warning(f"could not describe the wait for pool {pool}: {exc}")
                    watch.start()
                elif event.step_key in watch.waiting and event.event_type in _STEP_ENDS:
                    watch.waiting.discard(event.step_key)
                while watch.messages:
                    log.info(watch.messages.pop(0))
        finally:
            watch.stop()


_STEP_ENDS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SKIPPED,
              dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SUCCESS)


def with_dead_run_recovery(executor_def: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """``executor_def`` (same name, config and requirements) whose executor recovers pool slots
    from dead runs. Wrap before `.configured(...)`."""
    create = executor_def.executor_creation_fn

    def creation_fn(init_context):
        return DeadRunRecoveringExecutor(create(init_context))

    return dg.ExecutorDefinition(name=executor_def.name, config_schema=executor_def.config_schema,
                                 requirements=executor_def.get_requirements, executor_creation_fn=creation_fn,
                                 description=executor_def.description)
