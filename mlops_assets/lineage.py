"""Asset keys of a use case's chain, and reading what an upstream materialization recorded.

Every use case's assets live under its name as key prefix and group, so two use cases never
collide and the UI shows one lineage per model.
"""
from __future__ import annotations

from typing import Any

import dagster as dg

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


def day_check_result(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, day: str):
    """The latest materialization record of a day of the check's asset, and the latest result
    of that partitioned check for the day (None when it has none)."""
    from dagster._core.event_api import PartitionKeyFilter  # the 1.13 filter of partitioned check history

    (mat,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=check_key.asset_key, asset_partitions=[day]), limit=1).records
    history = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, partition_filter=PartitionKeyFilter(key=day))
    return mat, (history[0].evaluation if history else None)
