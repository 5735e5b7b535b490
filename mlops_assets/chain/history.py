"""What the Dagster instance remembers about a use case's retraining: when the last training
chain finished, and whether one is queued or running. Shared by the retrain sensor and the
scheduled-retrain automation condition, so both apply the same cool-down."""
from __future__ import annotations

import dagster as dg

from mlops_assets.chain.lineage import CANDIDATE, CHAMPION, EVALUATION, TRAINING_SET, key
from mlops_assets.use_cases.config import UseCase

RETRAIN_TAG = "mlops/retrain"
TRIGGER_TAG = "mlops/trigger"  # which trigger requested a retrain: drift, performance, new_rows, schedule
# A retrain is rare and decides the model every later day is scored with, so it goes ahead of
# the daily runs (priority 0) waiting in the QueuedRunCoordinator's queue (higher runs first).
TRAINING_PRIORITY = 10
TRAINING_RUN_TAGS = {"dagster/priority": str(TRAINING_PRIORITY)}
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def training_chain(uc: UseCase) -> list[dg.AssetKey]:
    return [key(uc, n) for n in (TRAINING_SET, CANDIDATE, EVALUATION, CHAMPION)]


def _builds_chain(run: dg.DagsterRun, uc: UseCase) -> bool:
    selection = set(run.asset_selection or ())
    return run.tags.get(RETRAIN_TAG) == uc.name or bool(selection & set(training_chain(uc)))


def _chain_run_ids(instance: dg.DagsterInstance, uc: UseCase) -> set[str]:
    """Runs that last planned or wrote each chain asset (whatever launched them, also runs
    that failed before writing), plus the newest runs the retrain sensor/schedule tagged."""
    run_ids: set[str] = set()
    for asset_key in training_chain(uc):
        planned = instance.get_latest_planned_materialization_info(asset_key)
        if planned is not None and planned.run_id:
            run_ids.add(planned.run_id)
        records = instance.fetch_materializations(asset_key, limit=1).records
        if records and records[0].run_id:
            run_ids.add(records[0].run_id)
    tagged = instance.get_runs(filters=dg.RunsFilter(tags={RETRAIN_TAG: uc.name}), limit=5)
    return run_ids | {r.run_id for r in tagged}


def retrain_in_progress(instance: dg.DagsterInstance, uc: UseCase) -> str | None:
    """Run id of a queued or running run that builds part of the training chain, whoever
    launched it (the retrain sensor, the schedule, a person)."""
    active = [r for r in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=200) if _builds_chain(r, uc)]
    if active:
        return active[0].run_id
    ids = _chain_run_ids(instance, uc)
    if ids:
        running = instance.get_runs(filters=dg.RunsFilter(run_ids=sorted(ids), statuses=ACTIVE), limit=1)
        if running:
            return running[0].run_id
    return None


def last_retrain_end(instance: dg.DagsterInstance, uc: UseCase) -> float | None:
    """When the last training chain finished (Unix seconds), None when it never ran.

    The chain may span several runs (the training set, then the model, evaluation and
    promotion as automation follows it) and may stop early (a failed gate or run), so this
    is the latest end among the runs that last planned or wrote a chain asset; a runless
    report of a chain asset counts at its own time."""
    ends: list[float] = []
    for asset_key in training_chain(uc):
        records = instance.fetch_materializations(asset_key, limit=1).records
        if records:
            ends.append(records[0].timestamp)
    ids = _chain_run_ids(instance, uc)
    if ids:
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=sorted(ids))):
            if record.end_time is not None:
                ends.append(record.end_time)
    return max(ends) if ends else None


def cooldown_left(instance: dg.DagsterInstance, uc: UseCase, now: float) -> float:
    """Seconds until the cool-down after the last training chain ends (0 when none)."""
    end = last_retrain_end(instance, uc)
    if end is None:
        return 0.0
    return max(0.0, uc.retrain.cooldown_minutes * 60 - (now - end))
