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
