"""The code location: the components under defs/ (one UseCase per use case, see
mlops_assets/components/; a bad one is a failing asset), use cases from MLOPS_USE_CASE_DIRS,
and the shared resources.

Runs use the in-process executor unless MLOPS_EXECUTOR picks another (executors.py): the chain
is mostly sequential, DuckDB admits one writer process at a time, and each extra step process
would pay the multi-second imports of sklearn, mlflow and evidently again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg

from mlops_assets import settings
from mlops_assets.chain.alerts import build_alert_defs
from mlops_assets.chain.build import build_use_case_defs, invalid_use_case_defs
from mlops_assets.chain.resources import shared_resources
from mlops_assets.instance.executors import build_executor
from mlops_assets.use_cases.loader import is_in_defs_folder, load_use_case_set

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # holds pyproject.toml ([tool.dg])
log = logging.getLogger(__name__)


def _extra_use_cases() -> dg.Definitions:
    """Use cases from MLOPS_USE_CASE_DIRS, built like the defs folder's (same loader, same
    builders), and their bad files as failing assets. The defs folder's files are read too, so
    that a name defined in both is refused; the UseCase component builds those."""
    loaded = load_use_case_set()
    extra = [uc for uc in loaded.use_cases if not is_in_defs_folder(uc.source_file)]
    bad = [b for b in loaded.invalid if not is_in_defs_folder(b.path)]
    for b in bad:
        log.error("skipping use case file: %s", b.error)
    return dg.Definitions.merge(*[build_use_case_defs(uc) for uc in extra], invalid_use_case_defs(bad))


def _automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions declared on the assets (replaces Dagster's default
    sensor so that it runs from the start and its interval can be set). 30 s: a landed day's chain
    is carried by the landing sensor's run, so this tick is not on that path; it evaluates every
    asset's condition over its partitions, the most expensive tick of the location."""
    return dg.AutomationConditionSensorDefinition(
        "automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=int(os.environ.get("MLOPS_AUTOMATION_INTERVAL_S") or 30))


def build_defs() -> dg.Definitions:
    """Build the code location from the current environment (use case folders, data folder,
    MLflow URI). Tests call this after pointing the environment at a temporary folder.

    The resources read their settings from variables (dg.EnvVar): unset ones get the embedded
    defaults here, names logged, values not (a tracking URI may hold credentials)."""
    filled = settings.fill_env_defaults()
    if filled:
        log.debug("embedded defaults for %s", ", ".join(filled))
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=PROJECT_ROOT),
        _extra_use_cases(),
        build_alert_defs(),
        dg.Definitions(resources=shared_resources(), sensors=[_automation_sensor()],
                       executor=build_executor()),
    )


def _environment_key() -> tuple:
    return tuple(sorted(os.environ.items()))


def current_defs() -> dg.Definitions:
    """The code location for the environment as it is now: `defs` below when the environment has
    not changed since it was built (a command's process imports this module once, so it does not
    build the location twice), else a new build (tests point the environment elsewhere)."""
    return defs if _environment_key() == _built_for else build_defs()


defs = build_defs()
_built_for = _environment_key()  # after the build: it fills unset variables with their defaults
