"""The code location: the components under defs/ (one UseCase per use case, see
mlops_assets/components/), use cases from MLOPS_USE_CASE_DIRS, and the shared resources.

Runs use the in-process executor: the chain is mostly sequential, DuckDB admits one writer
process at a time, and each extra step process would pay the multi-second imports of sklearn,
mlflow and evidently again.
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from mlops_assets.resources import shared_resources

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _extra_use_cases() -> dg.Definitions:
    """Use cases from MLOPS_USE_CASE_DIRS, built like the defs folder's (same builders).
    load_use_cases() reads both places, so a name defined twice is refused here."""
    from mlops_assets.components.chain import build_use_case_defs
    from mlops_assets.use_cases.config import load_use_cases
    from mlops_assets.use_cases.discovery import DEFS_DIR

    extra = [uc for uc in load_use_cases() if DEFS_DIR not in Path(uc.source_file or "").parents]
    return dg.Definitions.merge(*[build_use_case_defs(uc) for uc in extra]) if extra else dg.Definitions()


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
        dg.components.load_from_defs_folder(path_within_project=PROJECT_ROOT),
        _extra_use_cases(),
        dg.Definitions(resources=shared_resources(), sensors=[_automation_sensor()],
                       executor=dg.in_process_executor),
    )


defs = build_defs()
