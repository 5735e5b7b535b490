"""dbt staging and feature models, one group and one daily-partitioned dbt asset per use case
(the models' folder name under dbt_project/models/)."""
import datetime as dt
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
# The Core engine's event message: the exported DbtCliEventMessage is its abstract base, and its
# to_default_asset_events is how dagster-dbt turns a dbt result into Dagster events.
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from mlops_assets import settings
from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain.automation import per_day
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.chain.dbt import run_dbt
from mlops_assets.chain.lineage import LABELS, RAW
from mlops_assets.chain.partitions import daily_partitions
from mlops_assets.chain.resources import DuckDBWarehouse
from mlops_assets.use_cases.config import UseCase


class UseCaseTranslator(DagsterDbtTranslator):
    """models/<use case>/<model>.sql -> key [use case, model], group <use case>; the source
    table raw.<use case> is the raw asset of that use case."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # source raw.<uc> -> <uc>/raw; source labels.<uc> -> <uc>/labels (label files, ingest/labels.py)
            kind = LABELS if dbt_resource_props.get("source_name") == LABELS else RAW
            return dg.AssetKey([dbt_resource_props["name"], kind])
        return dg.AssetKey([_use_case_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _use_case_of(dbt_resource_props)

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        # A day's features must not wait for its labels (they come days later, or never).
        label_sources = [n for n in dbt_resource_props.get("depends_on", {}).get("nodes", [])
                         if n.startswith("source.") and n.split(".")[-2] == LABELS]
        optional = dg.AssetSelection.assets(*[dg.AssetKey([n.split(".")[-1], LABELS]) for n in label_sources])
        return per_day(wait_for_checks=False, may_be_missing=optional if label_sources else None)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return [*asset_metadata.OWNERS, *(super().get_owners(dbt_resource_props) or [])]

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        # code_version: dagster-dbt's default is the model file's checksum, which changes with the SQL.
        return {**super().get_tags(dbt_resource_props),
                **asset_metadata.tags("features", _use_case_of(dbt_resource_props))}


def _use_case_of(props: Mapping[str, Any]) -> str:
    fqn = props.get("fqn", [])
    # fqn = [project, <use case folder>, ..., model]; models at the top level are shared.
    return fqn[1] if len(fqn) > 2 else "shared"


def build_dbt_assets(uc: UseCase, project: DbtProject) -> dg.AssetsDefinition:
    translator = UseCaseTranslator()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=select_of(uc),
        dagster_dbt_translator=translator,
        name=f"{uc.name}_dbt_models",
        pool=WAREHOUSE_POOL,  # `dbt build` writes the warehouse (mlops_assets/instance/concurrency.py)
        partitions_def=daily_partitions(uc),
        # A range of days is one `dbt build` over the whole window.
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse):
        window = context.partition_time_window
        min_date, max_date = window.start.strftime("%Y-%m-%d"), window.end.strftime("%Y-%m-%d")
        context.log.info(f"dbt build for [{min_date}, {max_date})")
        # dbt runs in this process (chain/dbt.py: no dbt process, no parse per step); the resource
        # gives the project, the profiles folder and the target.
        project_dir = Path(dbt.project_dir)
        selection = _selection(context, project, uc, translator)
        # dbt opens the file itself and fails at once if another process holds it: hold the
        # warehouse lock around the whole build, so concurrent runs queue instead.
        with warehouse.write_lock(holder=f"dbt build of {uc.name} [{min_date}, {max_date}) in run {context.run.run_id}"):
            run = run_dbt(["build", *selection], project_dir=project_dir,
                          profiles_dir=Path(dbt.profiles_dir or project_dir), target=dbt.target or settings.dbt_target(),
                          target_path=project_dir / "target" / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}",
                          # the profile points at the same warehouse as ours (the DuckDB file, or
                          # the PostgreSQL database: warehouse.dbt_env())
                          profile_env=warehouse.dbt_env(),
                          # The window goes in variables that the models read only when executing
                          # (macros/window_bound.sql), not in --vars: dbt parses again when --vars change.
                          env=dbt_window_env(min_date, max_date), log=context.log)
        context.log.info(f"{run.command}: {'succeeded' if run.success else 'failed'}"
                         + (" (parsed the project first)" if run.parsed else " (manifest kept from an earlier step)"))
        events = [e for raw in run.result_events
                  for e in DbtCoreCliEventMessage(raw_event=raw, event_history_metadata={}).to_default_asset_events(
                      manifest=project.manifest_path, dagster_dbt_translator=translator, context=context,
                      target_path=run.target_path, project=project)]
        # The column schema of each built model, read once dbt has closed the warehouse.
        yield from with_column_schemas(events, warehouse, lambda e: _table_of(context.assets_def, e))
        if not run.success:
            raise run.error()

    return models


def select_of(uc: UseCase) -> str:
    """The dbt selection of a use case's models."""
    return f"path:models/{uc.name}"


def _selection(context: dg.AssetExecutionContext, project: DbtProject, uc: UseCase,
               translator: DagsterDbtTranslator) -> list[str]:
    """The dbt selection arguments for the assets and checks this step runs: the use case's
    models, or the subset picked in the UI, computed as dagster-dbt computes them for `dbt.cli`."""
    from dagster_dbt.asset_utils import get_subset_selection_for_context
    from dagster_dbt.dbt_manifest import validate_manifest

    args, indirect = get_subset_selection_for_context(
        context=context, manifest=validate_manifest(project.manifest_path), select=select_of(uc), exclude=None,
        selector=None, dagster_dbt_translator=translator,
        current_dbt_indirect_selection_env=os.environ.get("DBT_INDIRECT_SELECTION"))
    return [*args, *(["--indirect-selection", indirect] if indirect else [])]


WINDOW_ENV = {"min_date": "MLOPS_DBT_MIN_DATE", "max_date": "MLOPS_DBT_MAX_DATE"}  # macros/window_bound.sql


def dbt_window_env(min_date: str, max_date: str) -> dict[str, str]:
    """The variables that give the models their day window [min_date, max_date) (YYYY-MM-DD)."""
    for name, value in (("min_date", min_date), ("max_date", max_date)):
        try:
            dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"dbt window {name} {value!r}: expected a date YYYY-MM-DD") from exc
    return {WINDOW_ENV["min_date"]: min_date, WINDOW_ENV["max_date"]: max_date}


def with_column_schemas(events: list, warehouse: DuckDBWarehouse, table_of) -> list:
    """The dbt events, each model's Output/AssetMaterialization with `dagster/column_schema`
    from the table dbt built (`table_of(event)`: "database.schema.table" or None)."""
    tables = {_schema_table(table_of(e)) for e in events if _is_materialization(e)}
    tables.discard(None)
    if not tables:
        return events
    schemas = {}
    with warehouse.connect(read_only=True) as con:
        for table in tables:
            try:
                schemas[table] = asset_metadata.duckdb_column_schema(con, table)
            except LookupError:  # a model dbt failed to build: no table, no schema
                continue
    out = []
    for e in events:
        table = _schema_table(table_of(e)) if _is_materialization(e) else None
        out.append(e.with_metadata({**e.metadata, "dagster/column_schema": schemas[table]})
                   if table in schemas else e)
    return out


def _table_of(assets_def: dg.AssetsDefinition, event) -> str | None:
    """The relation dagster-dbt's translator recorded for the event's asset (from the manifest)."""
    asset_key = (event.asset_key if isinstance(event, dg.AssetMaterialization)
                 else assets_def.keys_by_output_name.get(event.output_name))
    spec = assets_def.specs_by_key.get(asset_key) if asset_key else None
    return spec.metadata.get("dagster/table_name") if spec else None


def _is_materialization(event) -> bool:
    return isinstance(event, dg.Output | dg.AssetMaterialization)


def _schema_table(relation) -> str | None:
    """"db.main.stg_churn" -> "main.stg_churn"."""
    value = getattr(relation, "value", relation)
    if not value:
        return None
    parts = str(value).replace('"', "").split(".")
    return ".".join(parts[-2:])
