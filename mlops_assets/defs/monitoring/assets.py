"""drift_report: Evidently data drift between the training rows and one day of data, per day."""

import dagster as dg

from mlops_assets import handoffs, settings
from mlops_assets.automation import per_day
from mlops_assets.lineage import DRIFT, TRAINING_SET, features_key, key
from mlops_assets.partitions import daily_partitions, utc_window
from mlops_assets.resources import DuckDBWarehouse
from mlops_assets.sql import ident, qualified
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase

# Evidently's statistical tests are already conclusive at this size; more rows only cost time.
MAX_REFERENCE_ROWS = 50_000


def build_drift_report(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, DRIFT)
    partitions = daily_partitions(uc)

    @dg.asset(
        key=asset_key,
        deps=[features_key(uc), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"evidently", "html"},
        partitions_def=partitions,
        # One report per day: a backfill of a range runs day by day.
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        # Every new day is compared with the training rows; a retrain (new training set) does
        # not recompute the history of reports.
        automation_condition=per_day(ignore=dg.AssetSelection.assets(key(uc, TRAINING_SET))),
        # A partitioned check: each day's verdict is stored under that day, so the retrain
        # sensor and the UI read the verdict of a given day, not of whichever run came last.
        check_specs=[dg.AssetCheckSpec(handoffs.DRIFT_CHECK, asset=asset_key, blocking=False, partitions_def=partitions,
                                       description=f"Share of drifted features < {uc.thresholds.drift_share} "
                                                   "(Evidently's dataset-drift rule, the same threshold as the HTML)")],
        description=f"Evidently DataDriftPreset: training rows (reference) vs the partition's day of "
                    f"{uc.features_table} (current). The latest report is also at {settings.drift_report_path(uc.name)}.",
    )
    def drift_report(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse):
        from mlops_assets.monitoring.drift import compute_drift

        cols = ", ".join(ident(c) for c in uc.features.all)
        day = context.partition_key
        start, end = utc_window(context)
        with warehouse.connect(read_only=True) as con:
            reference = data.read_split(con, uc, "train")
            current = con.execute(
                f"SELECT {cols} FROM {qualified(uc.features_table)} "
                f"WHERE {ident(uc.timestamp_column)} >= ? AND {ident(uc.timestamp_column)} < ?",
                [start, end]).df()
        if current.empty:
            raise dg.Failure(f"{uc.features_table} has no rows for {day}: materialize that day's features first")
        if len(reference) > MAX_REFERENCE_ROWS:
            reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
        dated = settings.drift_report_path(uc.name).with_name(f"drift_report_{day}.html")
        result = compute_drift(reference[uc.features.all], current, numeric_columns=uc.features.numeric,
                               categorical_columns=uc.features.categorical, html_path=dated,
                               drift_share_threshold=uc.thresholds.drift_share)
        _publish_latest(dated, settings.drift_report_path(uc.name), context.instance, context.asset_key, day)
        drifted = [c.column for c in result.columns if c.drifted]
        context.log.info(f"{uc.name} on {day}: {result.n_drifted}/{result.n_columns} features drifted "
                         f"(share {result.drift_share:.2f}): {drifted}")
        table = "\n".join(["| column | test | score | threshold | drifted |", "|---|---|---|---|---|"] + [
            f"| {c.column} | {c.stattest} | {c.score:.4g} | {c.threshold:.4g} | {'yes' if c.drifted else 'no'} |"
            for c in result.columns])
        # One rule for the HTML and the check: Evidently's dataset-drift verdict at the use case's
        # threshold (drift when share >= drift_share).
        passed = not result.dataset_drift
        yield dg.MaterializeResult(
            metadata={
                handoffs.DRIFT_SHARE: round(result.drift_share, 4),
                "n_drifted": result.n_drifted,
                "n_columns": result.n_columns,
                "drifted_columns": dg.MetadataValue.json(drifted),
                "per_column": dg.MetadataValue.md(table),
                "current_day": str(day),
                handoffs.DRIFT_FLAGGED: not passed,
                handoffs.DRIFT_THRESHOLD: uc.thresholds.drift_share,
                "current_rows": len(current),
                "reference_rows": len(reference),
                "report": dg.MetadataValue.path(str(dated)),
            },
            check_results=[dg.AssetCheckResult(
                check_name=handoffs.DRIFT_CHECK, passed=passed, severity=dg.AssetCheckSeverity.WARN,
                description=f"{day}: drift share {result.drift_share:.2f} "
                            f"{'>=' if not passed else '<'} threshold {uc.thresholds.drift_share}",
                metadata=handoffs.drift_check_metadata(result.drift_share, uc.thresholds.drift_share),
            )],
        )

    return drift_report


def _publish_latest(dated, stable, instance, asset_key, day: str) -> None:
    """Copy the report to the stable path when its day is the newest reported so far, so a
    backfill of old days does not replace the report of the latest one."""
    import os
    import shutil

    newest = max(instance.get_materialized_partitions(asset_key) | {day})
    if day >= newest:
        tmp = stable.with_name(f".{stable.name}.tmp")
        shutil.copyfile(dated, tmp)
        os.replace(tmp, stable)
