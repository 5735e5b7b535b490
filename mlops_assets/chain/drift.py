"""drift_report: Evidently data drift between the training rows and one day of data, per day."""

import os
import shutil
import tempfile

import dagster as dg

from mlops_assets import settings
from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import per_day
from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT, TRAINING_SET, features_key, key
from mlops_assets.chain.partitions import daily_partitions, day_results, day_window, local_window
from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.training import data
from mlops_assets.use_cases.config import UseCase
from mlops_assets.governance import registry

# Evidently's statistical tests are already conclusive at this size; more rows only cost time.
MAX_REFERENCE_ROWS = 50_000


def build_drift_report(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, DRIFT)
    partitions = daily_partitions(uc)

    @dg.asset(
        key=asset_key,
        # No dependency on the day's predictions (a day is checked the moment its features land);
        # prediction drift is reported when the day is already scored (see _prediction_drift).
        deps=[features_key(uc), key(uc, TRAINING_SET)],
        group_name=uc.name,
        kinds={"evidently", "html", "mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("monitoring", uc.name),
        code_version=asset_metadata.source_code_version("monitoring/drift.py", "chain/drift.py"),
        partitions_def=partitions,
        # A range of days is one run (one report per day inside it): an event run or a backfill
        # of many days is not one run per day.
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Each day gets its report once its window has closed (an open day is partial); a retrain
        # (new training set) or labels arriving later do not recompute the history of reports.
        automation_condition=per_day(ignore=dg.AssetSelection.assets(key(uc, TRAINING_SET)),
                                     first_time_only=True, closed_days_only=uc.last_day is None),
        # A partitioned check: each day's verdict is stored under that day, so the retrain
        # sensor and the UI read the verdict of a given day, not of whichever run came last.
        check_specs=[dg.AssetCheckSpec(handoffs.DRIFT_CHECK, asset=asset_key, blocking=False, partitions_def=partitions,
                                       description=f"Share of drifted features < {uc.thresholds.drift_share} "
                                                   "(Evidently's dataset-drift rule, the same threshold as the HTML)")],
        description=f"Evidently DataDriftPreset: training rows (reference) vs the partition's day of "
                    f"{uc.features_table} (current). Each day's HTML is logged to MLflow in a run tagged with the model "
                    f"version that scored that day (`report_url`); the latest is also at "
                    f"{settings.drift_report_path(uc.name)}.",
    )
    def drift_report(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, mlflow: MlflowResource):
        from mlops_assets.monitoring.drift import drift_columns

        days = list(context.partition_keys)
        cols = ", ".join(ident(c) for c in uc.features.all)
        start, end = local_window(context)
        ts = ident(uc.timestamp_column)
        # One read of the reference and of the run's days; one Evidently report per day.
        with warehouse.connect(read_only=True) as con:
            reference = data.read_split(con, uc, "train")
            current_all = con.execute(
                f"SELECT {cols}, CAST({ts} AS DATE) AS __day FROM {qualified(uc.features_table)} "
                f"WHERE {ts} >= ? AND {ts} < ?", [start, end]).df()
        # The run's rows split by day once (a range run may cover a year).
        keys = current_all.pop("__day").astype(str)
        by_day = {day: frame for day, frame in current_all.groupby(keys)}
        empty = [d for d in days if d not in by_day]
        if len(empty) == len(days):
            raise dg.Failure(f"{uc.features_table} has no rows for {', '.join(empty)}: materialize "
                             f"{'that day' + chr(39) + 's' if len(empty) == 1 else 'those days' + chr(39)} features first")
        if len(reference) > MAX_REFERENCE_ROWS:
            reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
        numeric, categorical = drift_columns(uc.features.numeric, uc.features.categorical,
                                             uc.monitoring.drift.exclude_columns)
        per_day = {}
        for day in days:
            if day in empty:
                # A day of a range without rows (e.g. today's, before its file lands) is not
                # judged: no verdict rather than failing every other day of the backfill.
                context.log.warning(f"{uc.features_table} has no rows for {day}: no drift report for that day")
                per_day[day] = ({"current_day": day, "current_rows": 0, "note": "no rows: not judged"}, None)
                continue
            per_day[day] = _drift_of_day(context, warehouse, mlflow, uc, day, reference, by_day[day], numeric, categorical)
        # The stable path gets the run's newest report (one look at the event log, not one a day).
        newest = max(d for d in days if d not in empty)
        _publish_latest(dated_report_path(uc, newest), settings.drift_report_path(uc.name), context.instance,
                        context.asset_key, newest)
        return day_results(context, handoffs.DRIFT_CHECK, per_day)

    return drift_report


def dated_report_path(uc: UseCase, day: str):
    """The day's local HTML report, beside the stable path of the newest one."""
    return settings.drift_report_path(uc.name).with_name(f"drift_report_{day}.html")


def _drift_of_day(context, warehouse, mlflow, uc: UseCase, day: str, reference, current, numeric, categorical
                  ) -> tuple[dict, dg.AssetCheckResult]:
    """One day's Evidently report, logged to MLflow: the day's metadata and check result."""
    from pathlib import Path

    from mlops_assets.monitoring.drift import compute_drift, prune_dated_reports, sample_aware_stattests

    settings_ = uc.monitoring.drift
    dated = dated_report_path(uc, day)
    checked = numeric + categorical
    version, version_source = _model_version_of_day(context, mlflow, uc, day)
    with tempfile.TemporaryDirectory(prefix="drift-") as tmp:
        # The day's HTML holds the report's data only (Evidently's JavaScript is shared from
        # reports/_evidently/); MLflow keeps Evidently's snapshot, ~0.2 MB compressed, which
        # `python -m mlops_assets.monitoring.drift <file>` renders as HTML.
        snapshot = Path(tmp) / f"drift_report_{day}.json.gz"
        result = compute_drift(reference[checked], current[checked], numeric_columns=numeric,
                               categorical_columns=categorical, html_path=dated, snapshot_path=snapshot,
                               html_lib_dir=settings.evidently_lib_dir(),
                               drift_share_threshold=uc.thresholds.drift_share,
                               column_stattests=sample_aware_stattests(
                               numeric, categorical, len(current),
                               {c: t for c, t in settings_.column_stattests.items() if c in checked}))
        report_url = _log_report(mlflow, uc, day, snapshot, result.drift_share, version)
    removed = prune_dated_reports(dated.parent, settings.report_retention_days(), keep=day)
    if removed:
        context.log.info(f"{len(removed)} dated report(s) older than {settings.report_retention_days()} days removed "
                         f"from {dated.parent} ({settings.REPORT_RETENTION_DAYS_ENV})")
    drifted = [c.column for c in result.columns if c.drifted]
    context.log.info(f"{uc.name} on {day}: {result.n_drifted}/{result.n_columns} features drifted "
                     f"(share {result.drift_share:.2f}): {drifted}")
    start, end = day_window(day)
    prediction, shares = _prediction_drift(warehouse, mlflow, uc, version, start, end)
    if prediction is None:
        context.log.info(f"no prediction drift for {day}: the day is not scored yet (or no model)")
    else:
        context.log.info(f"prediction drift on {day}: {prediction.stattest} {prediction.score:.4g} "
                         f"(threshold {prediction.threshold:.4g}){' DRIFTED' if prediction.drifted else ''}")
    context.log.info(f"drift report of {day} logged to MLflow ({version_source}): {report_url}")
    # One rule for the HTML and the check: Evidently's dataset-drift verdict at the use case's
    # threshold (drift when share >= drift_share).
    passed = not result.dataset_drift
    metadata = {
        handoffs.DRIFT_SHARE: round(result.drift_share, 4),
        "n_drifted": result.n_drifted,
        "n_columns": result.n_columns,
        "drifted_columns": dg.MetadataValue.json(drifted),
        "per_column": per_column_table(result.columns),
        "current_day": str(day),
        handoffs.DRIFT_FLAGGED: not passed,
        handoffs.DRIFT_THRESHOLD: uc.thresholds.drift_share,
        "current_rows": len(current),
        "excluded_columns": dg.MetadataValue.json(list(settings_.exclude_columns)),
        **({handoffs.PREDICTION_DRIFT_SCORE: round(float(prediction.score), 6),
            handoffs.PREDICTION_DRIFTED: bool(prediction.drifted),
            "prediction_drift_test": prediction.stattest} if prediction is not None else {}),
        **({"predicted_class_shares": dg.MetadataValue.json(shares)} if shares is not None else {}),
        "reference_rows": len(reference),
        "report": dg.MetadataValue.path(str(dated)),
        "report_url": dg.MetadataValue.url(report_url),
        "model_version": version or "none",
        "model_version_source": version_source,
        **({"mlflow_model_version_url": dg.MetadataValue.url(
            mlflow.model_version_url(uc.registered_model_name, version))} if version else {}),
    }
    check = dg.AssetCheckResult(
        check_name=handoffs.DRIFT_CHECK, passed=passed, severity=dg.AssetCheckSeverity.WARN,
        description=f"{day}: drift share {result.drift_share:.2f} "
                    f"{'>=' if not passed else '<'} threshold {uc.thresholds.drift_share}",
        metadata=handoffs.drift_check_metadata(result.drift_share, uc.thresholds.drift_share))
    return metadata, check


PER_COLUMN_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("column", "string", description="feature"),
    dg.TableColumn("test", "string", description="Evidently's statistical test"),
    dg.TableColumn("score", "float", description="p-value or distance, as the test defines it"),
    dg.TableColumn("threshold", "float", description="the test's threshold"),
    dg.TableColumn("drifted", "bool", description="the test flags this column"),
])


def per_column_table(columns) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(schema=PER_COLUMN_SCHEMA, records=[
        dg.TableRecord({"column": c.column, "test": c.stattest, "score": round(float(c.score), 6),
                        "threshold": round(float(c.threshold), 6), "drifted": bool(c.drifted)})
        for c in columns])


def _prediction_drift(warehouse: DuckDBWarehouse, mlflow: MlflowResource, uc: UseCase, version: str | None,
                      start, end):
    """Drift of the day's served predictions against the predictions the same model version
    gives the training set's holdout rows (scores for binary and regression, predicted classes
    for multiclass, then also each class's share), or (None, None) when the day is not scored
    yet or no model exists. The
    holdout, not the training rows: a model's scores of the rows it was fitted on are more
    confident than on any new day, which would read as prediction drift every day."""
    from mlops_assets.monitoring.outcomes import latest_predictions, table_exists
    from mlops_assets.monitoring.prediction_drift import prediction_drift
    from mlops_assets.serving.predictions import predictions_table

    if version is None:
        return None, None
    with warehouse.connect(read_only=True) as con:
        if not table_exists(con, predictions_table(uc)):
            return None, None
        # the day's current scores (a re-score after the labels is the version the report names)
        served = latest_predictions(con, uc, start, end)
        served = served[served["model_version"] == str(version)]
        if served.empty:
            return None, None
        reference = data.read_split(con, uc, "holdout")
    if len(reference) > MAX_REFERENCE_ROWS:
        reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
    model = mlflow.load_model(uc.registered_model_name, version)
    from mlops_assets.evaluation.tasks import predict, task_of

    reference_scores = predict(task_of(uc), model, reference[uc.features.all])  # the task's form
    # binary and regression: the distribution of the scores; multiclass: of the predicted classes
    drift = prediction_drift(uc.task, reference_scores, served, stattest=uc.monitoring.drift.prediction_stattest)
    return drift, _class_shares(uc, reference_scores, served)


def _class_shares(uc: UseCase, reference_prediction, served) -> dict | None:
    """A multiclass day's share of each predicted class beside the holdout's (None otherwise)."""
    if uc.task != "multiclass":
        return None
    from mlops_assets.monitoring.prediction_drift import class_shares, predicted_classes, served_classes

    return {"day": class_shares(served_classes(served)),
            "reference": class_shares(predicted_classes(reference_prediction))}


def _model_version_of_day(context, mlflow: MlflowResource, uc: UseCase, day: str) -> tuple[str | None, str]:
    """The model version a day's report belongs to: the one that scored that day's batch
    predictions, else the current champion (the day is not scored yet), else none."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key(uc, BATCH_PREDICTIONS), asset_partitions=[day]), limit=1).records
    if records:
        what = f"{key(uc, BATCH_PREDICTIONS).to_user_string()} for {day}"
        return handoffs.read_scored_version(records[0].asset_materialization.metadata, what), f"scored {day}"
    champion = registry.champion_version(mlflow.client(), uc.registered_model_name)
    if champion is not None:
        return champion, "champion when the report was made"
    return None, "no model registered yet"


def _log_report(mlflow: MlflowResource, uc: UseCase, day: str, snapshot, drift_share: float, version: str | None) -> str:
    """Log the report's Evidently snapshot (gzip-compressed JSON; its HTML is rendered on demand
    by mlops_assets.monitoring.drift.render_report) as an artifact of an MLflow run tagged with
    the model name, version and day; returns the link to the artifact in the MLflow UI."""
    import mlflow as mlflow_lib

    tags = {"mlops.use_case": uc.name, "mlops.kind": "drift_report", "mlops.drift_day": day,
            "mlops.model_name": uc.registered_model_name, "mlops.model_version": version or ""}
    with mlflow.start_run(f"{uc.name}-drift-{day}", tags=tags) as run:
        mlflow_lib.log_metric("drift_share", float(drift_share))
        mlflow_lib.log_artifact(str(snapshot), artifact_path="drift")
    return mlflow.artifact_url(run.info.experiment_id, run.info.run_id, f"drift/{snapshot.name}")


def _publish_latest(dated, stable, instance, asset_key, day: str) -> None:
    """Copy the report to the stable path when its day is the newest reported so far, so a
    backfill of old days does not replace the report of the latest one."""
    newest = max(instance.get_materialized_partitions(asset_key) | {day})
    if day >= newest:
        tmp = stable.with_name(f".{stable.name}.tmp")
        shutil.copyfile(dated, tmp)
        os.replace(tmp, stable)
