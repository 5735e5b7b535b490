"""The code location: every domain folder under defs/ plus the shared resources.

Runs use the in-process executor: the chain is mostly sequential, DuckDB admits one writer
process at a time, and each extra step process would pay the multi-second imports of sklearn,
mlflow and evidently again.
"""
from __future__ import annotations

import dagster as dg

from mlops_assets import defs as defs_root
from mlops_assets.resources import shared_resources
from mlops_assets.use_cases.config import load_use_cases


def _jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    jobs = [dg.define_asset_job("mlops_pipeline", selection=dg.AssetSelection.all(),
                                description="Every use case, raw data to drift report: the main job.")]
    jobs += [dg.define_asset_job(f"{uc.name}_pipeline", selection=dg.AssetSelection.groups(uc.name),
                                 description=f"The {uc.name} use case, raw data to drift report.")
             for uc in load_use_cases()]
    return jobs


def build_defs() -> dg.Definitions:
    """Build the code location from the current environment (use case folders, data folder,
    MLflow URI). Tests call this after pointing the environment at a temporary folder."""
    return dg.Definitions.merge(
        dg.components.load_defs(defs_root),
        dg.Definitions(resources=shared_resources(), jobs=_jobs(), executor=dg.in_process_executor),
    )


defs = build_defs()
