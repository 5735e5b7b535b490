"""dbt staging and feature models, one group per use case (the models' folder name)."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from mlops_assets.lineage import RAW
from mlops_assets.resources import DuckDBWarehouse, dbt_project


class UseCaseTranslator(DagsterDbtTranslator):
    """models/<use case>/<model>.sql -> key [use case, model], group <use case>; the source
    table raw.<use case> is the raw asset of that use case."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["name"], RAW])
        return dg.AssetKey([_use_case_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _use_case_of(dbt_resource_props)


def _use_case_of(props: Mapping[str, Any]) -> str:
    fqn = props.get("fqn", [])
    # fqn = [project, <use case folder>, ..., model]; models at the top level are shared.
    return fqn[1] if len(fqn) > 2 else "shared"


@dg.definitions
def defs() -> dg.Definitions:
    project = dbt_project()
    if not project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {project.manifest_path}. It is built by `dbt parse`: "
            "run `uv run mlops-assets prepare` (the Quickstart does this for you)."
        )

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=UseCaseTranslator(),
                name="dbt_models")
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse):
        # dbt runs in a subprocess: point its profile at the same DuckDB file as ours.
        os.environ["MLOPS_DUCKDB_PATH"] = warehouse.path
        os.environ.setdefault("DO_NOT_TRACK", "1")
        yield from dbt.cli(["build"], context=context).stream()

    return dg.Definitions(assets=[dbt_models])
