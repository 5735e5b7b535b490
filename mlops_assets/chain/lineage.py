"""Asset keys of a use case's chain, and reading what an upstream materialization recorded.

Every use case's assets live under its name as key prefix and group, so two use cases never
collide and the UI shows one lineage per model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

# The one reader of a partition's check history in Dagster 1.13 is the event log storage's
# get_asset_check_execution_history, whose partition and status filters take these internal
# names; no public API reads a day's check verdict. Kept to this module (see docs/architecture.md).
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES

from mlops_assets.use_cases.config import UseCase

RAW, TRAINING_SET, CANDIDATE, EVALUATION, DRIFT = "raw", "training_set", "candidate_model", "model_evaluation", "drift_report"
LABELS = "labels"  # label files that arrive after their rows (defs/labels)
CHAMPION, BATCH_PREDICTIONS = "champion_model", "batch_predictions"
PERFORMANCE, SUMMARY = "performance_report", "monitoring_summary"


def key(uc: UseCase, name: str) -> dg.AssetKey:
    return dg.AssetKey([uc.name, name])


def features_key(uc: UseCase) -> dg.AssetKey:
    """The asset holding the feature table: the dbt model, or the raw table when there is none."""
    return key(uc, uc.features.dbt_model or RAW)


def latest_metadata(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, *required: str) -> dict[str, Any]:
    """Metadata values of the latest materialization of an upstream asset. Raises a clear
    error when it was never materialized or lacks a required entry."""
    event = context.instance.get_latest_materialization_event(asset_key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(f"{asset_key.to_user_string()} has never been materialized; materialize it first")
    values = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    missing = [r for r in required if r not in values]
    if missing:
        raise dg.Failure(f"the latest materialization of {asset_key.to_user_string()} lacks metadata {missing}")
    return values


MATS_PER_DAY = 20  # materializations of a day looked at to find the one a verdict belongs to


@dataclass(frozen=True)
class DayCheck:
    """A day's result of a partitioned check. Unpacks as (materialization, evaluation)."""
    materialization: dg.EventLogRecord  # of the day: the one the evaluation followed
    # The newest completed evaluation (passed or failed) of the day, never a planned one.
    evaluation: dg.AssetCheckEvaluation | None
    # Planned but not completed (running, skipped, or its run failed): no verdict yet, readers
    # look at an earlier day. False with no evaluation means the check never ran for the day.
    undecided: bool = False

    def __iter__(self):
        return iter((self.materialization, self.evaluation))


def day_check_result(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, day: str) -> DayCheck:
    """The day's newest completed result of the partitioned check and its materialization.

    Dagster records a planned evaluation when a run starts and completes it when the check
    runs, so the newest record of a day may be planned (a run or backfill in flight, a check
    that was skipped): only passed/failed records count."""

    storage, day_filter = instance.event_log_storage, PartitionKeyFilter(key=day)
    completed = storage.get_asset_check_execution_history(
        check_key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES, partition_filter=day_filter)
    mats = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=check_key.asset_key, asset_partitions=[day]), limit=MATS_PER_DAY).records
    if not mats:
        raise dg.DagsterInvariantViolationError(f"{check_key.asset_key.to_user_string()} has no materialization for {day}")
    if not completed:
        planned = storage.get_asset_check_execution_history(check_key, limit=1, partition_filter=day_filter)
        return DayCheck(mats[0], None, undecided=bool(planned))
    record = completed[0]
    evaluation = record.evaluation
    # The materialization the evaluation checked (its run's; else the newest before it), not a
    # newer one whose check is still in flight: a verdict belongs to the data it judged.
    done_at = record.event.timestamp if record.event else record.create_timestamp
    mat = (next((m for m in mats if record.run_id and m.run_id == record.run_id), None)
           or next((m for m in mats if m.timestamp <= done_at), mats[0]))
    return DayCheck(mat, evaluation)


def newest_decided_day(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey,
                       days) -> tuple[str, DayCheck] | None:
    """The newest of `days` whose check has a verdict or never ran (the caller fails loudly on
    that), skipping days whose check is planned, running or skipped; None when none has one."""
    for day in sorted(days, reverse=True):
        result = day_check_result(instance, check_key, day)
        if not result.undecided:
            return day, result
    return None
