"""drift_report: Evidently data drift between the training rows and the latest day of data."""

import dagster as dg

from mlops_assets import settings
from mlops_assets.lineage import DRIFT, TRAINING_SET, features_key, key
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase, load_use_cases

# Evidently's statistical tests are already conclusive at this size; more rows only cost time.
MAX_REFERENCE_ROWS = 50_000


def build_drift_report(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, DRIFT)

    @dg.asset(
        key=asset_key,
        deps=[features_key(uc), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"evidently", "html"},
        check_specs=[dg.AssetCheckSpec("drift_below_threshold", asset=asset_key, blocking=False,
                                       description=f"Share of drifted features <= {uc.thresholds.drift_share}")],
        description=f"Evidently DataDriftPreset: training rows (reference) vs the latest day of "
                    f"{uc.features_table} (current). HTML at {settings.drift_report_path(uc.name)}.",
    )
    def drift_report(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse):
        from mlops_assets.monitoring.drift import compute_drift

        ts = uc.timestamp_column
        cols = ", ".join(f'"{c}"' for c in uc.features.all)
        with warehouse.connect(read_only=True) as con:
            reference = data.read_split(con, uc, "train")
            latest_day = con.execute(f'SELECT max(CAST("{ts}" AS DATE)) FROM {uc.features_table}').fetchone()[0]
            current = con.execute(
                f'SELECT {cols} FROM {uc.features_table} WHERE CAST("{ts}" AS DATE) = ?', [latest_day]
            ).df()
        if len(reference) > MAX_REFERENCE_ROWS:
            reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
        result = compute_drift(reference[uc.features.all], current, numeric_columns=uc.features.numeric,
                               categorical_columns=uc.features.categorical, html_path=settings.drift_report_path(uc.name))
        drifted = [c.column for c in result.columns if c.drifted]
        context.log.info(f"{uc.name} on {latest_day}: {result.n_drifted}/{result.n_columns} features drifted "
                         f"(share {result.drift_share:.2f}): {drifted}")
        table = "\n".join(["| column | test | score | threshold | drifted |", "|---|---|---|---|---|"] + [
            f"| {c.column} | {c.stattest} | {c.score:.4g} | {c.threshold:.4g} | {'yes' if c.drifted else 'no'} |"
            for c in result.columns])
        passed = result.drift_share <= uc.thresholds.drift_share
        yield dg.MaterializeResult(
            metadata={
                "drift_share": round(result.drift_share, 4),
                "n_drifted": result.n_drifted,
                "n_columns": result.n_columns,
                "drifted_columns": dg.MetadataValue.json(drifted),
                "per_column": dg.MetadataValue.md(table),
                "current_day": str(latest_day),
                "current_rows": len(current),
                "reference_rows": len(reference),
                "report": dg.MetadataValue.path(str(settings.drift_report_path(uc.name))),
            },
            check_results=[dg.AssetCheckResult(
                check_name="drift_below_threshold", passed=passed, severity=dg.AssetCheckSeverity.WARN,
                description=f"drift share {result.drift_share:.2f} vs threshold {uc.thresholds.drift_share}",
                metadata={"drift_share": result.drift_share, "threshold": uc.thresholds.drift_share},
            )],
        )

    return drift_report


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_drift_report(uc) for uc in load_use_cases()])
