"""One use case's whole chain of definitions, from the builders of each domain under defs/.

Pure of how use cases are found: the UseCase component calls it for its defs.yaml, and
definitions.py for use cases from MLOPS_USE_CASE_DIRS.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import dagster as dg

from mlops_assets import settings
from mlops_assets.use_cases.config import InvalidUseCase, UseCase
from mlops_assets.chain.drift import build_drift_report
from mlops_assets.chain.evaluation import build_model_evaluation
from mlops_assets.chain.governance import build_champion_model
from mlops_assets.chain.history import TRAINING_RUN_TAGS
from mlops_assets.chain.label_sensor import build_label_sensor
from mlops_assets.chain.labels import build_labels_asset
from mlops_assets.chain.landing_sensor import build_landing_sensor
from mlops_assets.chain.lineage import SUMMARY, key
from mlops_assets.chain.performance import build_performance_report
from mlops_assets.chain.raw import build_raw_asset
from mlops_assets.chain.resources import dbt_project
from mlops_assets.chain.retrain import build_retrain_schedule, build_retrain_sensor, training_chain, training_job_name
from mlops_assets.chain.scoring import build_batch_predictions
from mlops_assets.chain.summary import build_monitoring_summary
from mlops_assets.chain.training import build_candidate_model, build_training_set

INVALID_GROUP = "invalid_use_cases"


def dbt_assets_of(uc: UseCase) -> list[dg.AssetsDefinition]:
    """The dbt models under dbt_project/models/<use case>/, when the features come from dbt."""
    if not uc.features.dbt_model:
        return []
    from mlops_assets.chain.features import build_dbt_assets  # dagster_dbt: only with a dbt model

    project = dbt_project()
    prepare_if_dev(project)
    if not project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {project.manifest_path}. It is built by `dbt parse`: "
            "run `uv run mlops-assets prepare` (`dagster dev` and `dg` build it themselves)."
        )
    models = _manifest_models(str(project.manifest_path), project.manifest_path.stat().st_mtime)
    if (uc.name, uc.features.dbt_model) not in models:
        # Otherwise the dbt selection is silently empty and the training set depends on nothing.
        raise ValueError(
            f"{uc.source_file}: features.dbt_model {uc.features.dbt_model!r} is not a model under "
            f"dbt_project/models/{uc.name}/ in the dbt manifest {project.manifest_path}. Add it there and "
            "run `uv run mlops-assets prepare` (dbt parse) to refresh the manifest."
        )
    return [build_dbt_assets(uc, project)]


def prepare_if_dev(project) -> None:
    """Under `dagster dev` and the `dg` CLI (both set DAGSTER_IS_DEV_CLI) dagster-dbt runs `dbt
    parse`, so a fresh clone, or an edited model, needs no separate prepare step. Once per
    process (every use case shares the project); deployments keep the manifest built at build time."""
    from mlops_assets.chain import dbt  # dagster_dbt: only for use cases with a dbt model

    key = str(project.project_dir)
    if key in _PREPARED:
        return
    dbt.prepare_if_dev(project, settings.dbt_executable())
    _PREPARED.add(key)


_PREPARED: set[str] = set()


@functools.cache
def _manifest_models(path: str, mtime: float) -> frozenset[tuple[str, str]]:
    """(folder under models/, model name) of every model in the manifest (cached per mtime)."""
    nodes = json.loads(Path(path).read_text())["nodes"].values()
    return frozenset((n["fqn"][1], n["name"]) for n in nodes
                     if n.get("resource_type") == "model" and len(n.get("fqn", [])) > 2)


def jobs_of(uc: UseCase) -> list[dg.UnresolvedAssetJobDefinition]:
    """The daily chain (day partitions, inferred from the assets) and the training chain. A job
    holds one partitioning, so the two are separate; `mlops-assets demo` runs them in order."""
    training = dg.AssetSelection.assets(*training_chain(uc))
    summary = dg.AssetSelection.assets(key(uc, SUMMARY))  # unpartitioned: not in the daily job
    return [
        dg.define_asset_job(
            f"{uc.name}_daily", selection=dg.AssetSelection.groups(uc.name) - training - summary,
            description=f"{uc.name}: raw data, dbt features, predictions and drift report for day partitions."),
        dg.define_asset_job(
            training_job_name(uc), selection=training, tags=TRAINING_RUN_TAGS,  # also when launched from the UI
            description=f"{uc.name}: training set, candidate model, evaluation and promotion."),
        dg.define_asset_job(
            f"{uc.name}_monitoring_summary", selection=summary,
            description=f"{uc.name}: the monitoring summary (one row per day) and its overview page."),
    ]


def label_defs_of(uc: UseCase, dbt_keys=()) -> tuple[list[dg.AssetsDefinition], list[dg.SensorDefinition]]:
    """The labels asset and its sensor, when the use case declares a `labels:` section."""
    if uc.labels is None:
        return [], []
    return [build_labels_asset(uc)], [build_label_sensor(uc, dbt_keys)]


def build_use_case_defs(uc: UseCase) -> dg.Definitions:
    """Raw data and its landing sensor, dbt features, training, evaluation, promotion, batch
    scoring, drift monitoring, the retrain sensor and the use case's two jobs."""
    dbt_models = dbt_assets_of(uc)
    # The landing and label sensors' runs carry the dbt models too (one run per event).
    dbt_keys = sorted((k for a in dbt_models for k in a.keys), key=lambda k: k.to_user_string())
    labels_assets, labels_sensors = label_defs_of(uc, dbt_keys)
    return dg.Definitions(
        assets=[build_raw_asset(uc), *labels_assets, *dbt_models, build_training_set(uc), build_candidate_model(uc),
                build_model_evaluation(uc), build_champion_model(uc), build_batch_predictions(uc),
                build_drift_report(uc), build_performance_report(uc), build_monitoring_summary(uc)],
        sensors=[build_landing_sensor(uc, dbt_keys), *labels_sensors, build_retrain_sensor(uc)],
        schedules=[build_retrain_schedule(uc)],
        jobs=jobs_of(uc),
    )


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


def invalid_use_case_defs(invalid: list[InvalidUseCase]) -> dg.Definitions:
    """One failing asset per bad file, keyed by the file's folder (defs.yaml) or stem."""
    assets, used = [], set()
    for bad in invalid:
        path = Path(bad.path)
        stem = re.sub(r"[^A-Za-z0-9_]", "_", path.parent.name if path.name == "defs.yaml" else path.stem) or "unnamed"
        name, n = stem, 1
        while name in used:  # the same file name in two folders
            n += 1
            name = f"{stem}_{n}"
        used.add(name)
        assets.append(build_invalid_use_case(bad, name))
    return dg.Definitions(assets=assets)
