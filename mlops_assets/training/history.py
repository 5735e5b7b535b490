"""What the Dagster instance remembers about a use case's retraining: when the last training
chain finished, and whether one is queued or running. Shared by the retrain sensor and the
scheduled-retrain automation condition, so both apply the same cool-down."""
from __future__ import annotations

import dagster as dg

from mlops_assets.lineage import CANDIDATE, CHAMPION, EVALUATION, TRAINING_SET, key
from mlops_assets.use_cases.config import UseCase

RETRAIN_TAG = "mlops/retrain"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def training_chain(uc: UseCase) -> list[dg.AssetKey]:
    return [key(uc, n) for n in (TRAINING_SET, CANDIDATE, EVALUATION, CHAMPION)]


def _builds_chain(run: dg.DagsterRun, uc: UseCase) -> bool:
    selection = set(run.asset_selection or ())
    return run.tags.get(RETRAIN_TAG) == uc.name or bool(selection & set(training_chain(uc)))


def retrain_in_progress(instance: dg.DagsterInstance, uc: UseCase) -> str | None:
    """Run id of a queued or running run that builds part of the training chain, whoever
    launched it (the retrain sensor, the cron, a person)."""
    active = [r for r in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=200) if _builds_chain(r, uc)]
    return active[0].run_id if active else None


def last_retrain_end(instance: dg.DagsterInstance, uc: UseCase) -> float | None:
    """When the last training chain finished (Unix seconds), None when it never ran.

    The chain may span several runs (the training set, then the model, evaluation and
    promotion as automation follows it) and may stop early (a failed gate, a failed run), so
    this is the latest end among: the runs that wrote the newest materialization of each chain
    asset, and the newest finished runs that targeted the chain."""
    ends: list[float] = []
    run_ids: set[str] = set()
    for asset_key in training_chain(uc):
        records = instance.fetch_materializations(asset_key, limit=1).records
        if records:
            ends.append(records[0].timestamp)  # a runless report has no run to end
            if records[0].run_id:
                run_ids.add(records[0].run_id)
    finished = [*instance.get_runs(filters=dg.RunsFilter(statuses=FINISHED), limit=100),
                *instance.get_runs(filters=dg.RunsFilter(statuses=FINISHED, tags={RETRAIN_TAG: uc.name}), limit=1)]
    run_ids |= {r.run_id for r in finished if _builds_chain(r, uc)}
    if run_ids:
        for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=sorted(run_ids))):
            if record.end_time is not None:
                ends.append(record.end_time)
    return max(ends) if ends else None


def cooldown_left(instance: dg.DagsterInstance, uc: UseCase, now: float) -> float:
    """Seconds until the cool-down after the last training chain ends (0 when none)."""
    end = last_retrain_end(instance, uc)
    if end is None:
        return 0.0
    return max(0.0, uc.retrain.cooldown_minutes * 60 - (now - end))
