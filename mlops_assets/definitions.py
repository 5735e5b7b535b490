"""The code location: every domain folder under defs/ plus the shared resources.

Runs use the in-process executor: the chain is mostly sequential, DuckDB admits one writer
process at a time, and each extra step process would pay the multi-second imports of sklearn,
mlflow and evidently again.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg

from mlops_assets.resources import shared_resources
from mlops_assets.use_cases.config import InvalidUseCase, load_use_case_set, load_use_cases

INVALID_GROUP = "invalid_use_cases"


def _jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    """Per use case: the daily chain (partitioned by day) and the training chain. A job holds
    one partitioning, so the two are separate; `mlops-assets demo` runs them in order."""
    from mlops_assets.defs.training.sensors import training_chain

    jobs = []
    for uc in load_use_cases():
        training = dg.AssetSelection.assets(*training_chain(uc))
        # The job takes its day partitions from its assets (all of them daily).
        jobs.append(dg.define_asset_job(
            f"{uc.name}_daily", selection=dg.AssetSelection.groups(uc.name) - training,
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


def build_invalid_use_case(bad: InvalidUseCase, key_name: str) -> dg.AssetsDefinition:
    """A use-case file that does not load, shown in the UI instead of taking the whole code
    location down: its description holds the error, and materializing it fails with it."""

    @dg.asset(key=["invalid_use_case", key_name], group_name=INVALID_GROUP, kinds={"yaml"},
              description=f"This use-case file could not be loaded, so it has no assets.\n\n"
                          f"File: {bad.path}\n\nError: {bad.error}",
              metadata={"file": bad.path, "error": bad.error})
    def _invalid() -> None:
        raise dg.Failure(description=bad.error, metadata={"file": bad.path})

    return _invalid


def _invalid_use_case_assets(invalid: list[InvalidUseCase]) -> list[dg.AssetsDefinition]:
    assets, used = [], set()
    for bad in invalid:
        stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(bad.path).stem) or "unnamed"
        name, n = stem, 1
        while name in used:  # the same file name in two folders
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        assets.append(build_invalid_use_case(bad, name))
    return assets


def build_defs() -> dg.Definitions:
    """Build the code location from the current environment (use case folders, data folder,
    MLflow URI). Tests call this after pointing the environment at a temporary folder."""
    project_root = Path(__file__).resolve().parent.parent  # holds pyproject.toml ([tool.dg])
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=project_root),
        dg.Definitions(assets=_invalid_use_case_assets(load_use_case_set().invalid),
                       resources=shared_resources(), jobs=_jobs(), sensors=[_automation_sensor()],
                       executor=dg.in_process_executor),
    )


defs = build_defs()
