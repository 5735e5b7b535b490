"""The retraining sensor of each use case: reads the event log (drift checks, raw loads,
training sets, runs) and requests the training chain when a trigger in training/triggers.py fires."""
import os
import time

import dagster as dg

from mlops_assets.chain import handoffs
from mlops_assets.chain.lineage import DRIFT, LABELS, RAW, TRAINING_SET, key, newest_decided_day
from mlops_assets.chain.history import (RETRAIN_TAG, TRAINING_RUN_TAGS, TRIGGER_TAG, last_retrain_end,
                                          retrain_in_progress, training_chain)
from mlops_assets.training.triggers import Decision, DriftState, RetrainState, decide, held_back
from mlops_assets.use_cases.config import UseCase
from mlops_assets.chain.performance import recent_performance

INTERVAL_ENV = "MLOPS_RETRAIN_SENSOR_INTERVAL_S"

__all__ = ["RETRAIN_TAG", "build_retrain_schedule", "build_retrain_sensor", "schedule_decision", "new_labelled_rows", "retrain_state", "training_chain"]


def _latest_per_day(instance: dg.DagsterInstance, asset_key: dg.AssetKey, after_day: str | None) -> dict:
    """{day: its newest materialization record} of the days after `after_day` (all when None)."""
    days = sorted(d for d in instance.get_materialized_partitions(asset_key) if after_day is None or d > after_day)
    latest: dict[str, dg.EventLogRecord] = {}
    for start in range(0, len(days), 100):
        records_filter = dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=days[start:start + 100])
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=500, cursor=cursor)
            for rec in page.records:  # newest first: the first record of a day is its latest
                latest.setdefault(rec.partition_key, rec)
            if not page.has_more:
                break
            cursor = page.cursor
    return latest


def new_labelled_rows(instance: dg.DagsterInstance, uc: UseCase, after_day: str | None) -> int:
    """Labelled rows of the days after `after_day` (all days when None), each day counted once.
    A row counts when it has a label, from its landing file or from a label file. Raw and the
    labels asset both record that count per day when they run; the newer of the two records is
    the current one (labels arriving after raw loaded raise the count; a raw reload after the
    labels sees them too). A reload or backfill replaces a day's count, and days the training
    set already covers never count."""
    raw = {d: (r, True) for d, r in _latest_per_day(instance, key(uc, RAW), after_day).items()}
    label_recs = _latest_per_day(instance, key(uc, LABELS), after_day) if uc.labels else {}
    newest = dict(raw)
    for day, rec in label_recs.items():
        if day not in newest or rec.storage_id > newest[day][0].storage_id:
            newest[day] = (rec, False)
    return sum(handoffs.read_labelled_rows_any(
        rec.asset_materialization.metadata, day, f"{rec.asset_key.to_user_string()} for {day}", raw_fallback=is_raw)
        for day, (rec, is_raw) in newest.items())


def latest_drift(instance: dg.DagsterInstance, uc: UseCase) -> DriftState | None:
    """The drift check's verdict for the newest reported day that has one. Days whose check is
    planned, running or skipped have no verdict yet and are passed over (None when no day has
    one). Fails loudly when a day's report has no check result at all: a silent default would
    switch the trigger off."""
    check_key = dg.AssetCheckKey(key(uc, DRIFT), handoffs.DRIFT_CHECK)
    found = newest_decided_day(instance, check_key, instance.get_materialized_partitions(key(uc, DRIFT)))
    if found is None:
        return None
    day, (mat, evaluation) = found
    verdict = handoffs.read_drift_verdict(
        day, evaluation.passed if evaluation else None, evaluation.metadata if evaluation else None,
        f"the check {check_key.to_user_string()}")
    return DriftState(day=day, flagged=not verdict.passed, drift_share=verdict.drift_share,
                      storage_id=mat.storage_id, timestamp=mat.timestamp)


def retrain_state(instance: dg.DagsterInstance, uc: UseCase, now: float) -> RetrainState:
    training = instance.fetch_materializations(key(uc, TRAINING_SET), limit=1).records
    after_day = None
    if training:
        window = handoffs.read_training_window(training[0].asset_materialization.metadata,
                                               key(uc, TRAINING_SET).to_user_string())
        after_day = window.holdout_end.isoformat()
    training_id = training[0].storage_id if training else None
    days = uc.monitoring.performance_retrain_days
    return RetrainState(
        now=now, training_storage_id=training_id,
        last_retrain_end=last_retrain_end(instance, uc),
        new_labelled_rows=new_labelled_rows(instance, uc, after_day) if uc.retrain.min_new_rows else 0,
        latest_drift=latest_drift(instance, uc) if uc.retrain.on_drift else None,
        retrain_in_progress=retrain_in_progress(instance, uc),
        performance=recent_performance(instance, uc, training_id, days) if days else ())


def training_job_name(uc: UseCase) -> str:
    """The job of the training chain (training_chain(uc)), defined in chain/build.py."""
    return f"{uc.name}_training"


def build_retrain_sensor(uc: UseCase) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{uc.name}_retrain_sensor",
        # The use case's training job (chain/build.py), not a target list: an asset list
        # makes Dagster add one more job per sensor, and the snapshot checks every job against
        # every asset, which grows with the square of the number of use cases.
        job_name=training_job_name(uc),
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV) or 60),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains {uc.name} when the newest day's drift check fails"
                    f"{' (on)' if uc.retrain.on_drift else ' (off)'} or {uc.retrain.min_new_rows} labelled rows "
                    f"arrived for days after the current training set, or performance_within_tolerance failed "
                    f"on the {uc.monitoring.performance_retrain_days or '(off)'} most recent labelled days; nothing within {uc.retrain.cooldown_minutes} "
                    f"min of the last training chain's end. The weekly cron ({uc.retrain.cron}) is a "
                    "schedule with the same guards.",
    )
    def retrain_sensor(context: dg.SensorEvaluationContext):
        state = retrain_state(context.instance, uc, time.time())
        decision: Decision = decide(uc.name, uc.retrain, state, uc.monitoring.performance_retrain_days)
        context.log.info(decision.reason)
        return _request(uc, decision)

    return retrain_sensor


def _request(uc: UseCase, decision: Decision) -> dg.RunRequest | dg.SkipReason:
    """A trigger's decision as the sensor's or schedule's answer, tagged with what fired it."""
    if decision.trigger is None:
        return dg.SkipReason(decision.reason)
    return dg.RunRequest(run_key=decision.run_key,
                         tags={**TRAINING_RUN_TAGS, RETRAIN_TAG: uc.name, TRIGGER_TAG: decision.trigger,
                               "mlops/trigger_reason": decision.reason[:200]})


def schedule_decision(uc: UseCase, instance: dg.DagsterInstance, tick: str, now: float) -> Decision:
    """The cron retrain obeys the same guards as the other triggers: a tick that finds a retrain
    running, or falls within the cool-down after the last one, is skipped (that retrain is the
    fresh model the tick asked for)."""
    held = held_back(uc.retrain, retrain_in_progress(instance, uc), last_retrain_end(instance, uc), now)
    if held:
        return Decision(None, None, f"scheduled retrain at {tick} skipped: {held}")
    return Decision("schedule", f"schedule:{uc.name}:{tick}", f"scheduled retrain ({uc.retrain.cron}) at {tick}")


def build_retrain_schedule(uc: UseCase) -> dg.ScheduleDefinition:
    # A schedule rather than a cron automation condition on the training set: the condition
    # could not see the cool-down (that needs arbitrary Python evaluated on the code server),
    # and the whole chain runs in one run, as for the sensor's triggers.
    @dg.schedule(
        name=f"{uc.name}_retrain_schedule",
        cron_schedule=uc.retrain.cron,
        execution_timezone="UTC",
        # The use case's training job (chain/build.py), not a target list: an asset list
        # makes Dagster add one more job per sensor, and the snapshot checks every job against
        # every asset, which grows with the square of the number of use cases.
        job_name=training_job_name(uc),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrains {uc.name} at {uc.retrain.cron} (UTC) unless a retrain is running or the last one "
                    f"ended less than {uc.retrain.cooldown_minutes} min ago.",
    )
    def retrain_schedule(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time.isoformat()
        decision = schedule_decision(uc, context.instance, tick, time.time())
        context.log.info(decision.reason)
        return _request(uc, decision)

    return retrain_schedule

