"""dbt staging and feature models, one group and one daily-partitioned dbt asset per use case
(the models' folder name under dbt_project/models/)."""
import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from mlops_assets import settings
from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain.automation import per_day
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.chain.dbt import dies_with_this_process
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
    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=f"path:models/{uc.name}",
        dagster_dbt_translator=UseCaseTranslator(),
        name=f"{uc.name}_dbt_models",
        pool=WAREHOUSE_POOL,  # `dbt build` writes the warehouse (mlops_assets/instance/concurrency.py)
        partitions_def=daily_partitions(uc),
        # A range of days is one `dbt build` over the whole window.
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBWarehouse):
        # dbt runs in a subprocess: point its profile at the same warehouse as ours (the DuckDB
        # file, or the PostgreSQL database: warehouse.dbt_env()).
        os.environ.update(warehouse.dbt_env())
        os.environ.setdefault("DO_NOT_TRACK", "1")
        window = context.partition_time_window
        dbt_vars = {"min_date": window.start.strftime("%Y-%m-%d"), "max_date": window.end.strftime("%Y-%m-%d")}
        context.log.info(f"dbt build for [{dbt_vars['min_date']}, {dbt_vars['max_date']})")
        # dbt opens the file itself and fails at once if another process holds it: hold the
        # warehouse lock around the whole build, so concurrent runs queue instead.
        with warehouse.write_lock(holder=f"dbt build of {uc.name} [{dbt_vars['min_date']}, "
                                         f"{dbt_vars['max_date']}) in run {context.run.run_id}"):
            # The window goes in variables that the models read only when executing (macros/
            # window_bound.sql), not in --vars: dbt re-parses the whole project when --vars change.
            os.environ.update(dbt_window_env(dbt_vars["min_date"], dbt_vars["max_date"]))
            invocation = dbt.cli(["build"], context=context, raise_on_error=False)
            with dies_with_this_process(invocation.process):  # a killed run leaves no dbt writing
                events = list(invocation.stream())
        keep_parse_state(invocation.target_path, context.log)
        # The column schema of each built model, read once dbt has let go of the DuckDB file
        # (dagster-dbt's fetch_column_metadata would open it while the dbt process still holds it).
        yield from with_column_schemas(events, warehouse, lambda e: _table_of(context.assets_def, e))
        if not invocation.is_successful():
            raise invocation.get_error()

    return models


WINDOW_ENV = {"min_date": "MLOPS_DBT_MIN_DATE", "max_date": "MLOPS_DBT_MAX_DATE"}  # macros/window_bound.sql
PARTIAL_PARSE = "partial_parse.msgpack"


def dbt_window_env(min_date: str, max_date: str) -> dict[str, str]:
    """The variables that give the models their day window [min_date, max_date) (YYYY-MM-DD)."""
    for name, value in (("min_date", min_date), ("max_date", max_date)):
        try:
            dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"dbt window {name} {value!r}: expected a date YYYY-MM-DD") from exc
    return {WINDOW_ENV["min_date"]: min_date, WINDOW_ENV["max_date"]: max_date}


def keep_parse_state(invocation_target: Path, log=None, project_target: Path | None = None) -> bool:
    """Make the parse state of this `dbt build` the one the next build starts from.

    dagster-dbt gives every invocation its own target folder and seeds it with the project's
    target/partial_parse.msgpack; dbt parses the whole project again when that state was made
    with another profile (e.g. `mlops-assets prepare` run with another warehouse path), and then
    leaves the new state in the invocation's folder only, so every later build would parse again.
    Copied back (atomically, only when it differs), only the first build after such a change
    parses. Returns True when it copied."""
    project_target = project_target or (settings.DBT_PROJECT_DIR / "target")
    fresh = Path(invocation_target) / PARTIAL_PARSE
    if not fresh.exists():
        return False
    dest = project_target / PARTIAL_PARSE
    data = fresh.read_bytes()
    if dest.exists() and dest.read_bytes() == data:
        return False
    tmp = dest.with_name(f".{PARTIAL_PARSE}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    if log is not None:
        log.info(f"dbt parse state of this build kept in {dest} for the next builds")
    return True


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
