"""monitoring_summary: one row per day of a use case, what a person scans first."""
import dagster as dg

from mlops_assets import settings
from mlops_assets.chain import handoffs as h
from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT, PERFORMANCE, SUMMARY, key
from mlops_assets.chain.performance import monitored_metric
from mlops_assets.chain.resources import DuckDBWarehouse
from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.monitoring.summary import as_float, as_int, columns, overview_html, table_records, verdict
from mlops_assets.use_cases.config import UseCase


def summary_path(uc: UseCase):
    return settings.reports_dir() / uc.name / "monitoring_summary.html"


def latest_per_day(instance: dg.DagsterInstance, asset_key: dg.AssetKey, batch: int = 100) -> dict[str, dict]:
    """{day: plain metadata values of that day's latest materialization}."""
    days = sorted(instance.get_materialized_partitions(asset_key))
    out: dict[str, dict] = {}
    for start in range(0, len(days), batch):
        records_filter = dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=days[start:start + batch])
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=500, cursor=cursor)
            for rec in page.records:  # newest first: the first record of a day is its latest
                if rec.partition_key not in out:
                    out[rec.partition_key] = {k: getattr(v, "value", v)
                                              for k, v in rec.asset_materialization.metadata.items()}
            if not page.has_more:
                break
            cursor = page.cursor
    return out


def scored_rows_per_day(warehouse: DuckDBWarehouse, uc: UseCase) -> dict[str, int]:
    """{day: rows in the predictions table}, counted in the warehouse."""
    from mlops_assets.monitoring.outcomes import table_exists
    from mlops_assets.serving.predictions import predictions_table

    table = predictions_table(uc)
    ts = ident(uc.timestamp_column)
    with warehouse.connect(read_only=True) as con:
        if not table_exists(con, table):
            return {}
        rows = con.execute(f"SELECT CAST({ts} AS DATE), count(*) FROM {qualified(table)} GROUP BY 1").fetchall()
    return {str(day): int(n) for day, n in rows}


def summary_rows(predictions: dict[str, dict], drift: dict[str, dict], performance: dict[str, dict],
                 scored_rows: dict[str, int] | None = None, metric: str = "roc_auc") -> list[dict]:
    """One row per day that has predictions, a drift report or a performance report, newest
    first. Each argument maps a day to that day's latest materialization metadata (plain
    values) of batch_predictions, drift_report and performance_report; unknown figures are None.
    `scored_rows`: the rows each day has in the predictions table, counted there (a scoring run
    over a range of days records the range's total, not the day's). `metric`: the primary
    metric the performance report judges (ROC AUC for a binary use case), a column of the rows."""
    days = sorted(set(predictions) | set(drift) | set(performance), reverse=True)
    counted = scored_rows or {}
    rows = []
    for day in days:
        p, d, f = predictions.get(day, {}), drift.get(day, {}), performance.get(day, {})
        evaluated = bool(f.get(h.PERF_EVALUATED, False))
        rows.append({
            "day": day,
            "rows": counted.get(day, 0) if scored_rows is not None else as_int(p.get(h.ROW_COUNT, f.get("scored_rows"))),
            "label_coverage": as_float(f.get(h.PERF_COVERAGE)),
            "model_version": str(f.get(h.PERF_MODEL_VERSIONS) or p.get(h.SCORED_MODEL_VERSION) or "") or None,
            "drift_share": as_float(d.get(h.DRIFT_SHARE)),
            "prediction_drift": as_float(d.get(h.PREDICTION_DRIFT_SCORE)),
            metric: as_float(f.get(h.PERF_ROC_AUC if metric == "roc_auc" else h.PERF_VALUE)) if evaluated else None,
            "drift_check": verdict(None if h.DRIFT_FLAGGED not in d else not d[h.DRIFT_FLAGGED]),
            "performance_check": verdict(f.get(h.PERF_PASSED) if f else None, evaluated),
        })
    return rows


def summary_metric(uc: UseCase) -> tuple[str, str]:
    """The metric the summary shows per day, the one the performance report judges, and how it reads."""
    return monitored_metric(uc)


def build_monitoring_summary(uc: UseCase) -> dg.AssetsDefinition:
    metric, metric_label = summary_metric(uc)

    @dg.asset(
        key=key(uc, SUMMARY),
        deps=[key(uc, BATCH_PREDICTIONS), key(uc, DRIFT), key(uc, PERFORMANCE)],
        group_name=uc.name,
        kinds={"html"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("monitoring", uc.name),
        # Refreshed whenever a day's predictions, drift or performance report changes.
        automation_condition=(dg.AutomationCondition.any_deps_updated().since_last_handled()
                              & ~dg.AutomationCondition.any_deps_in_progress()
                              & ~dg.AutomationCondition.in_progress()).with_label("after any monitored day"),
        description=f"One row per day of {uc.name}: rows, label coverage, model version, drift share, prediction "
                    f"drift, {metric_label} when known and the checks' outcomes; plots over the days in "
                    f"{summary_path(uc)}.",
    )
    def monitoring_summary(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        from mlops_assets.monitoring.drift import _write_atomically

        instance = context.instance
        rows = summary_rows(latest_per_day(instance, key(uc, BATCH_PREDICTIONS)),
                            latest_per_day(instance, key(uc, DRIFT)),
                            latest_per_day(instance, key(uc, PERFORMANCE)),
                            scored_rows=scored_rows_per_day(warehouse, uc), metric=metric)
        page = summary_path(uc)
        _write_atomically(page, overview_html(uc.name, rows, drift_threshold=uc.thresholds.drift_share,
                                              min_coverage=uc.monitoring.min_label_coverage, metric=metric,
                                              label=metric_label))
        schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns(metric, metric_label)])
        failing = [r["day"] for r in rows if "FAIL" in (r["drift_check"], r["performance_check"])]
        context.log.info(f"{uc.name}: {len(rows)} day(s); days with a failed check: {failing or 'none'}")
        return dg.MaterializeResult(metadata={
            "days": dg.MetadataValue.table(records=[dg.TableRecord(r) for r in table_records(rows, metric)],
                                           schema=schema),
            "overview": dg.MetadataValue.path(str(page)),
            "dagster/row_count": len(rows),
            "days_with_failed_checks": dg.MetadataValue.json(failing),
            "latest_day": rows[0]["day"] if rows else "none",
        })

    return monitoring_summary
