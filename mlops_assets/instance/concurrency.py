"""How many runs and warehouse writers Dagster lets run at once, per profile.

Every asset that writes the warehouse (raw, labels, the dbt build, the training set, the batch
predictions) is in the concurrency pool `WAREHOUSE_POOL`; readers are in no pool. Dagster hands
out the pool's slots across all runs, so on the embedded profile (DuckDB: one writing process
at a time) one writer runs while the others wait in the queue instead of on the file lock, and
everything else (training, evaluation, drift reports, other use cases' readers) runs beside it.
The file lock (warehouse/lock.py) stays: it also serializes writers outside Dagster (a CLI, a
dbt run by hand). PostgreSQL takes concurrent writers, so the shared profile's pool is wider.

The instance's dagster.yaml cannot name a pool (Dagster 1.13 has `concurrency: pools:
default_limit` for every pool without a limit of its own, plus `granularity`), so the block
below sets the default to the warehouse limit (the project's only pool), and `apply_pool_limits`
sets the named pool's own limit on the instance, as `dagster instance concurrency set` does.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_assets.instance.workers import dead_worker

# dagster is imported by the functions that take an instance: the dagster.yaml writer
# (instance/home.py) imports this module, and `mlops-assets` commands start without dagster.

WAREHOUSE_POOL = "mlops_warehouse"
BACKFILL_TAG = "dagster/backfill"  # Dagster puts it on every run a backfill launches


@dataclass(frozen=True)
class Limits:
    warehouse_writers: int  # slots of WAREHOUSE_POOL: warehouse-writing steps at once, all runs together
    max_concurrent_runs: int  # runs in progress at once (the rest stay QUEUED)
    backfill_runs: int  # of those, runs launched by backfills: the rest are kept for sensors and schedules
    # Runs launched although every first step waits for a warehouse slot. A run worker takes
    # 10 s or more to start (it imports the code location), so one worker starting while another
    # run writes takes the slot the moment it frees, instead of leaving the queue only then.
    waiting_runs: int = 1


LIMITS: dict[str, Limits] = {
    # 2 cores, one DuckDB writer. A run spends most of its time waiting (for the writer slot, on
    # MLflow, on the dbt subprocess), so 3 runs keep the cores busy: e.g. a backfill, a landed
    # file's run and a retrain. Each run worker holds sklearn, mlflow and evidently in memory
    # (a few hundred MB), so more would cost memory without adding throughput. Backfills get 2
    # of the 3, so a landed file or a label file is never queued behind a long backfill.
    "embedded": Limits(warehouse_writers=1, max_concurrent_runs=3, backfill_runs=2),
    # PostgreSQL: each writer replaces its own day or table in one transaction, so writers may
    # overlap; 4 keeps the warehouse's connections and the run workers' memory modest on the
    # machine the daemon runs on. Raise both with the machine (and the server's max_connections).
    "shared": Limits(warehouse_writers=4, max_concurrent_runs=8, backfill_runs=6),
}


def limits(profile: str) -> Limits:
    try:
        return LIMITS[profile]
    except KeyError:
        raise ValueError(f"unknown profile {profile!r} (MLOPS_PROFILE): expected one of "
                         f"{', '.join(sorted(LIMITS))}") from None


def instance_concurrency_yaml(profile: str) -> str:
    """The whole `concurrency:` block of dagster.yaml for a profile (runs and pools)."""
    lim = limits(profile)
    return f"""\
# Runs: at most {lim.max_concurrent_runs} in progress, at most {lim.backfill_runs} of them from backfills; the rest wait QUEUED.
# Pools: the steps that write the warehouse share the pool {WAREHOUSE_POOL}, {lim.warehouse_writers} slot(s)
# across all runs; per-step (op) granularity lets the other steps of a waiting run go on, and
# {lim.waiting_runs} run(s) whose first step waits for a slot may start meanwhile (the rest stay QUEUED).
# dagster.yaml cannot name a pool, so the default limit is the warehouse's (the only pool);
# `dagster instance concurrency set {WAREHOUSE_POOL} N` sets that pool's own limit.
concurrency:
  runs:
    max_concurrent_runs: {lim.max_concurrent_runs}
    tag_concurrency_limits:
      - key: {BACKFILL_TAG}
        limit: {lim.backfill_runs}
  pools:
    granularity: op
    default_limit: {lim.warehouse_writers}
    op_granularity_run_buffer: {lim.waiting_runs}
"""


def apply_pool_limits(instance, profile: str, log=None) -> int | None:
    """Give WAREHOUSE_POOL the profile's limit on `instance` unless someone set one of its own
    (in the UI or with `dagster instance concurrency set`): that one is kept. Returns the
    limit set, or None when kept. `instance`: a DagsterInstance."""
    wanted = limits(profile).warehouse_writers
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise RuntimeError(f"the Dagster instance at {instance.root_directory} has no concurrency tables: "
                           "run `dagster instance migrate` once, then retry")
    current = {p.name: p for p in storage.get_pool_limits()}.get(WAREHOUSE_POOL)
    if current is not None and not current.from_default:
        if log and current.limit != wanted:
            log(f"pool {WAREHOUSE_POOL}: keeping the limit {current.limit} set on the instance "
                f"(the {profile} profile's default is {wanted})")
        return None
    storage.set_concurrency_slots(WAREHOUSE_POOL, wanted)
    return wanted


def free_slots_of_ended_runs(instance, log=None) -> list[str]:
    """Free the pool slots still held by runs that are over. A run frees its slots when its
    steps end, but a worker killed mid-step (SIGKILL, OOM) never does, and with one warehouse
    slot every later writer would then wait for ever. The daemon does this itself when
    dagster.yaml sets `run_monitoring: free_slots_after_run_end_seconds`; commands that run
    without the daemon call this once they have failed dead runs (recovery.fail_dead_runs).
    Returns the run ids whose slots were freed. `instance`: a DagsterInstance."""
    import dagster as dg

    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = storage.get_concurrency_run_ids()
    if not holders:
        return []
    ended = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    freed = []
    for record in instance.get_run_records(dg.RunsFilter(run_ids=sorted(holders), statuses=ended)):
        run = record.dagster_run
        storage.free_concurrency_slots_for_run(run.run_id)
        if log:
            log(f"run {run.run_id} ({run.job_name}, {run.status.value}) still held concurrency slots; freed")
        freed.append(run.run_id)
    return freed


FREE_HINT = ("`uv run mlops-assets prepare` fails runs whose worker process is gone and frees their "
             "slots; a slot of a run you know is over is freed with "
             "`DagsterInstance.get().event_log_storage.free_concurrency_slots_for_run('<run id>')` "
             "(or in the UI: Deployment, Concurrency)")


def free_slots_of_dead_runs(instance, current_run_id: str | None = None, log=None) -> list[str]:
    """Free the pool slots held by runs that are over, or whose worker process on this machine
    is gone (those are marked failed first: they would otherwise stay STARTED). Called by every
    run when it starts and while one of its steps waits for a slot (recovery.py's executor),
    so a killed run's slot goes back to whatever comes next, with or without the daemon. Runs
    of other machines are left to their own (workers.dead_worker). Returns the run ids freed."""
    import dagster as dg

    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = set(storage.get_concurrency_run_ids()) - {current_run_id}
    if not holders:
        return []
    freed = []
    for record in instance.get_run_records(dg.RunsFilter(run_ids=sorted(holders))):
        run = record.dagster_run
        if run.is_finished:
            why = f"it ended ({run.status.value})"
        else:
            why = dead_worker(instance, run)
            if why is None:
                continue
            instance.report_run_failed(run, f"Marked failed by mlops-assets: {why}")
        storage.free_concurrency_slots_for_run(run.run_id)
        if log:
            log(f"run {run.run_id} ({run.job_name}) held concurrency slots but {why}; "
                f"{'marked failed, ' if not run.is_finished else ''}slots freed")
        freed.append(run.run_id)
    return freed


def describe_wait(instance, pool: str, step_key: str | None, current_run_id: str | None = None) -> str:
    """What a step blocked on ``pool`` waits for (the runs and steps holding its slots) and how
    to free a slot that a dead run holds. `instance`: a DagsterInstance."""
    import dagster as dg

    info = instance.event_log_storage.get_concurrency_info(pool)
    held = [s for s in info.claimed_slots if s.run_id != current_run_id]
    runs = {r.dagster_run.run_id: r.dagster_run for r in
            instance.get_run_records(dg.RunsFilter(run_ids=sorted({s.run_id for s in held})))} if held else {}
    holders = "; ".join(
        f"run {s.run_id} ({runs[s.run_id].job_name}, {runs[s.run_id].status.value}) step {s.step_key}"
        if s.run_id in runs else f"run {s.run_id} (not in this instance's run storage) step {s.step_key}"
        for s in held) or "no run (the slot frees on the next try)"
    return (f"step {step_key or '?'} waits for a slot of pool {pool} (limit {info.limit}, "
            f"{info.active_slot_count} in use), held by: {holders}. It starts when one ends. If a holder "
            f"is stuck or gone: {FREE_HINT}.")
