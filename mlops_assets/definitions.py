"""The code location: every domain folder under defs/ plus the shared resources.

Runs use the in-process executor: the chain is mostly sequential, DuckDB admits one writer
process at a time, and each extra step process would pay the multi-second imports of sklearn,
mlflow and evidently again.
"""
from __future__ import annotations

import os

import dagster as dg

from mlops_assets import defs as defs_root
from mlops_assets.partitions import daily_partitions
from mlops_assets.resources import shared_resources
from mlops_assets.use_cases.config import load_use_cases


def _jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """Per use case: the daily chain (partitioned by day) and the training chain. A job holds
    one partitioning, so the two are separate; `mlops-assets demo` runs them in order."""
    from mlops_assets.defs.training.sensors import training_chain

    jobs = []
    for uc in load_use_cases():
        training = dg.AssetSelection.assets(*training_chain(uc))
        jobs.append(dg.define_asset_job(
            f"{uc.name}_daily", selection=dg.AssetSelection.groups(uc.name) - training,
            partitions_def=daily_partitions(uc),
            description=f"{uc.name}: raw data, dbt features, predictions and drift report for day partitions."))
        jobs.append(dg.define_asset_job(
            f"{uc.name}_training", selection=training,
            description=f"{uc.name}: training set, candidate model, evaluation and promotion."))
    return jobs


def _automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions declared on the assets (replaces Dagster's default
    sensor so that it runs from the start and its interval can be set)."""
    return dg.AutomationConditionSensorDefinition(
        "automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=int(os.environ.get("MLOPS_AUTOMATION_INTERVAL_S") or 30))


def build_defs() -> dg.Definitions:
    """Build the code location from the current environment (use case folders, data folder,
    MLflow URI). Tests call this after pointing the environment at a temporary folder."""
    return dg.Definitions.merge(
        dg.components.load_defs(defs_root),
        dg.Definitions(resources=shared_resources(), jobs=_jobs(), sensors=[_automation_sensor()],
                       executor=dg.in_process_executor),
    )


defs = build_defs()
