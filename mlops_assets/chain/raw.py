"""raw/<use case>: landing-zone batch files loaded into DuckDB, one day partition at a time."""
import datetime as dt

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.ingest import labels, landing
from mlops_assets.chain.lineage import RAW, key
from mlops_assets.chain.partitions import daily_partitions, local_window
from mlops_assets.chain.resources import DuckDBWarehouse
from mlops_assets.use_cases.config import UseCase


def build_raw_asset(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, RAW),
        group_name=uc.name,
        kinds={"duckdb", "python"},
        partitions_def=daily_partitions(uc),
        pool=WAREHOUSE_POOL,  # writes the warehouse (mlops_assets/instance/concurrency.py)
        # A backfill of many days is one run that loads the whole range in one transaction.
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Rows of {uc.landing.path()} ({uc.landing.pattern}) in {uc.raw_table}, partitioned by the "
                    f"day of `{uc.timestamp_column}`. A partition is rebuilt from every file holding rows of that "
                    "day; the rows are validated first, then the day is replaced in one transaction.",
        metadata={"landing_folder": dg.MetadataValue.path(str(uc.landing.path())), "table": uc.raw_table,
                  "dagster/table_name": uc.raw_table},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("ingest", uc.name),
        code_version=asset_metadata.source_code_version("ingest/landing.py", "chain/raw.py"),
        check_specs=[dg.AssetCheckSpec(
            "landing_files_readable", asset=key(uc, RAW),
            description="Every file in the landing folder parses, has plain column names and readable "
                        "timestamps, and stays inside the folder. A file that does not is left out of every day "
                        "until it is fixed; if an earlier version of it loaded, those rows are kept meanwhile.")],
    )
    def raw(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        start, end = local_window(context)
        last_key = context.assets_def.partitions_def.get_last_partition_key()
        with warehouse.connect() as con:
            try:
                loaded = landing.load_window(con, uc, start, end, log=context.log.info,
                                             last_day=dt.date.fromisoformat(last_key) if last_key else None)
            except landing.LandingFileError as exc:
                raise dg.Failure(description=str(exc), metadata={"error": str(exc)}) from exc
            # Labelled rows / rows per day, a label file's label counting (labels arrive later).
            counts = labels.labelled_counts(con, uc, start, end)
            coverage = {d: round(n / rows, 6) for d, (n, rows) in counts.items()}
            # No file yet, no table: then there is no schema to show either.
            schema = (asset_metadata.duckdb_column_schema(con, uc.raw_table)
                      if landing.table_exists(con, uc.raw_table) else None)
        if loaded.rows == 0:
            context.log.warning(f"no landing file holds rows for {start:%Y-%m-%d}..{end:%Y-%m-%d}")
        for problem in loaded.unreadable.values():
            context.log.error(f"not loadable until fixed: {problem}")
        for path, n in loaded.outside.items():
            context.log.warning(f"{path}: {n} row(s) dated before {uc.first_day} or after the last partition "
                                f"{last_key}; no partition takes them")
        for note in loaded.notes:
            context.log.warning(note)
        return dg.MaterializeResult(metadata={
            handoffs.ROW_COUNT: loaded.rows,
            "rows_replaced": loaded.replaced_rows,
            # Rows whose target is empty wait for a label file; the retrain sensor counts labelled rows.
            **handoffs.raw_metadata(loaded.rows_per_day, loaded.labelled_per_day, loaded.fingerprints),
            **({"dagster/column_schema": schema} if schema else {}),
            **handoffs.coverage_metadata(coverage, loaded.rows_per_day),
            # The retrain sensor's "new data" count (a label file's label counting).
            **handoffs.labelled_rows_metadata({d: n for d, (n, _) in counts.items()}),
            # Rows the landing files hold that no partition takes (dated before first_day or after the
            # last partition), per file: not loaded, and not lost without a word.
            "rows_outside_partitions": sum(loaded.outside.values()),
            "files_with_rows_outside": dg.MetadataValue.json(
                {p.rsplit("/", 1)[-1]: n for p, n in loaded.outside.items()}),
            "rows_kept_from_unreadable_files": sum(loaded.kept_rows.values()),
            "warnings": dg.MetadataValue.json(list(loaded.notes)),
        }, check_results=[dg.AssetCheckResult(
            check_name="landing_files_readable", passed=not loaded.unreadable,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(loaded.unreadable.values()) or "all landing files readable",
            metadata={"unreadable_files": dg.MetadataValue.json(sorted(loaded.unreadable))})])

    return raw
