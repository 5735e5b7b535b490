"""Recovering from runs that died without saying so (SIGKILL, power loss, OOM killer).

- Run monitoring (the daemon) fails runs whose worker is gone, through the health check of the
  run launcher the project's dagster.yaml selects (launcher.LocalRunLauncher).
- `fail_dead_runs` applies the same rule once, for commands that run without the daemon.
- `end_orphaned_mlflow_runs` ends MLflow runs left RUNNING by a Dagster run that is over.
- `with_dead_run_recovery` wraps the code location's executor: every run tags itself with its
  worker's pid and host, frees the pool slots of dead runs when it starts, and, while one of its
  steps waits for a slot, says at INFO which runs hold the pool and how to free it, and keeps
  freeing slots of runs that die meanwhile (concurrency.free_slots_of_dead_runs). A killed
  `dagster asset materialize` thus never blocks the next one, with or without the daemon.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import dagster as dg

from mlops_assets.instance.concurrency import describe_wait, free_slots_of_dead_runs, free_slots_of_ended_runs
from mlops_assets.instance.workers import worker_gone, worker_tags

ENDED_TAG = "mlops.ended_because"


def fail_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark STARTED runs whose worker process is gone as failed (what the monitoring daemon does
    under `dagster dev`), so they stop holding the run queue. Returns their run ids."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        gone, why = worker_gone(instance, run)
        if gone:
            instance.report_run_failed(run, f"Marked failed by mlops-assets: {why}")
            log(f"run {run.run_id} ({run.job_name}) was left STARTED but its {why}; marked failed")
            failed.append(run.run_id)
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


class DeadRunRecoveringExecutor(dg.Executor):
    """Runs the steps with ``inner`` and recovers pool slots from dead runs (see the module
    docstring). Built by with_dead_run_recovery."""

    def __init__(self, inner: dg.Executor, poll_s: float = 5.0):
        self._inner = inner
        self._poll_s = poll_s

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator:
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
