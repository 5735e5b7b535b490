"""The retraining sensor of each use case: reads the event log (drift reports, raw loads,
training sets) and requests the training chain when a trigger in training/triggers.py fires."""
import os
import time

import dagster as dg

from mlops_assets.lineage import CANDIDATE, CHAMPION, DRIFT, EVALUATION, RAW, TRAINING_SET, key
from mlops_assets.training.triggers import Decision, DriftState, RetrainState, decide
from mlops_assets.use_cases.config import UseCase

INTERVAL_ENV = "MLOPS_RETRAIN_SENSOR_INTERVAL_S"
RETRAIN_TAG = "mlops/retrain"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED]


def training_chain(uc: UseCase) -> list[dg.AssetKey]:
    return [key(uc, n) for n in (TRAINING_SET, CANDIDATE, EVALUATION, CHAMPION)]


def _labelled_rows(record) -> int:
    """Rows a raw materialization loaded for its own day. A range run records the same metadata
    on every day of the range, so the per-day figure comes from rows_per_day when present."""
    md = record.asset_materialization.metadata
    per_day = md.get("rows_per_day")
    if per_day is not None and record.partition_key:
        return int(per_day.value.get(record.partition_key, 0))
    rows = md.get("labelled_rows") or md.get("dagster/row_count")
    return int(rows.value) if rows else 0


def retrain_state(instance: dg.DagsterInstance, uc: UseCase, now: float) -> RetrainState:
    training = instance.fetch_materializations(key(uc, TRAINING_SET), limit=1).records
    training_id = training[0].storage_id if training else None
    # Latest load per day since the training set: a day re-loaded twice counts once.
    latest_per_day: dict[str, int] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key(uc, RAW), after_storage_id=training_id), limit=500, cursor=cursor)
        for rec in page.records:  # newest first
            latest_per_day.setdefault(rec.partition_key or "", _labelled_rows(rec))
        if not page.has_more:
            break
        cursor = page.cursor
    drift = None
    reported = instance.get_materialized_partitions(key(uc, DRIFT))
    if reported:
        day = max(reported)
        recs = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key(uc, DRIFT), asset_partitions=[day]), limit=1).records
        if recs:
            md = recs[0].asset_materialization.metadata
            drift = DriftState(day=day, flagged=bool(md["drift_flagged"].value) if "drift_flagged" in md else False,
                               drift_share=float(md["drift_share"].value), storage_id=recs[0].storage_id,
                               timestamp=recs[0].timestamp)
    # Any queued or running run that builds the training set counts, whoever launched it
    # (this sensor, the weekly cron, a person).
    active = [r for r in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=200)
              if r.tags.get(RETRAIN_TAG) == uc.name or key(uc, TRAINING_SET) in (r.asset_selection or ())]
    return RetrainState(
        now=now, training_storage_id=training_id, training_timestamp=training[0].timestamp if training else None,
        new_labelled_rows=sum(latest_per_day.values()), latest_drift=drift,
        retrain_in_progress=active[0].run_id if active else None)


def build_retrain_sensor(uc: UseCase) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{uc.name}_retrain_sensor",
        target=training_chain(uc),
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV) or 60),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains {uc.name} when the latest day's drift check fails"
                    f"{' (on)' if uc.retrain.on_drift else ' (off)'} or {uc.retrain.min_new_rows} labelled rows "
                    f"arrived since the last training set; the weekly cron ({uc.retrain.cron}) is an automation "
                    "condition on the training set.",
    )
    def retrain_sensor(context: dg.SensorEvaluationContext):
        state = retrain_state(context.instance, uc, time.time())
        decision: Decision = decide(uc.name, uc.retrain, state)
        context.log.info(decision.reason)
        if decision.trigger is None:
            return dg.SkipReason(decision.reason)
        return dg.RunRequest(run_key=decision.run_key,
                             tags={RETRAIN_TAG: uc.name, "mlops/trigger": decision.trigger,
                                   "mlops/trigger_reason": decision.reason[:200]})

    return retrain_sensor
