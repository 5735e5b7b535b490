"""raw/<use case>: landing-zone batch files loaded into DuckDB."""

import dagster as dg

from mlops_assets.ingest import landing
from mlops_assets.lineage import RAW, key
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.use_cases.config import UseCase, load_use_cases


def build_raw_asset(uc: UseCase) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(uc, RAW),
        group_name=uc.name,
        kinds={"duckdb", "python"},
        description=f"Batch files from {uc.landing.path()} ({uc.landing.pattern}) loaded into {uc.raw_table}. "
                    "New and changed files are validated, then written in one transaction.",
        metadata={"landing_folder": dg.MetadataValue.path(str(uc.landing.path())), "table": uc.raw_table},
    )
    def raw(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        files = landing.list_landing_files(uc.landing.path(), uc.landing.pattern)
        with warehouse.connect() as con:
            pending = landing.pending_files(con, uc, files)
            context.log.info(f"{len(files)} file(s) in {uc.landing.path()}, {len(pending)} new or changed")
            try:
                loaded = landing.load_files(con, uc, pending, log=context.log.info)
            except landing.LandingFileError as exc:
                raise dg.Failure(description=str(exc), metadata={"error": str(exc)}) from exc
            if not landing.table_exists(con, uc.raw_table):
                raise dg.Failure(f"no batch files matching {uc.landing.pattern} in {uc.landing.path()}: nothing to load")
            summary = landing.raw_summary(con, uc)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary["rows"],
            "files_loaded": len(loaded),
            "files_in_landing": len(files),
            "rows_loaded": sum(f.rows for f in loaded),
            "rows_replaced": sum(f.replaced_rows for f in loaded),
            "loaded_files": dg.MetadataValue.json([f.__dict__ for f in loaded]),
            "days": summary["days"],
            "min_ts": summary["min_ts"],
            "max_ts": summary["max_ts"],
            "positive_rate": summary["positive_rate"],
        })

    return raw


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_raw_asset(uc) for uc in load_use_cases()])
