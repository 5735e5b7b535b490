"""performance_report: real performance of the predictions served for one day, once its labels
arrived, per model version, against that version's holdout figures."""
import datetime as dt

import dagster as dg

from mlops_assets import settings
from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import per_day
from mlops_assets.chain.lineage import BATCH_PREDICTIONS, LABELS, PERFORMANCE, RAW, day_check_result, key
from mlops_assets.chain.partitions import day_results, day_window, daily_partitions
from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
from mlops_assets.evaluation.gates import LABELS as LABEL_OF_METRIC
from mlops_assets.use_cases.config import UseCase
from mlops_assets.training.triggers import PerformanceDay

def label_key(uc: UseCase) -> dg.AssetKey:
    """Where a day's labels come from: the label files' asset when the use case declares a label
    source, else the raw rows (labels carried in the feature files)."""
    return key(uc, LABELS) if getattr(uc, "labels", None) is not None else key(uc, RAW)


def performance_report_path(uc: UseCase, day: str):
    return settings.reports_dir() / uc.name / "performance" / f"performance_report_{day}.html"


def holdout_roc_auc(client, model_name: str, version: str) -> float | None:
    """The holdout ROC AUC model_evaluation logged on the version's MLflow run (None when the
    version was never evaluated)."""
    return holdout_metric(client, model_name, version, "roc_auc")


def holdout_metric(client, model_name: str, version: str, metric: str) -> float | None:
    """The holdout figure `holdout_<metric>` model_evaluation logged on the version's MLflow run
    (None when the version was never evaluated)."""
    mv = client.get_model_version(model_name, str(version))
    if not mv.run_id:
        return None
    return client.get_run(mv.run_id).data.metrics.get(f"holdout_{metric}")


def monitored_task(uc: UseCase):
    """The task whose figures the performance report computes and the metric its check judges:
    a binary use case is judged on ROC AUC as ever; the others on their primary metric."""
    from mlops_assets.evaluation import tasks

    return tasks.get_task(tasks.BINARY) if uc.task == tasks.BINARY else tasks.task_of(uc)


def monitored_metric(uc: UseCase) -> tuple[str, str]:
    """The metric monitored_task judges and how it reads, from the use case alone: the code
    location calls this, and evaluation.tasks (numpy, pandas) is imported only when a report runs."""
    metric = "roc_auc" if uc.task == "binary" else uc.primary.metric
    return metric, LABEL_OF_METRIC.get(metric, metric)


def build_performance_report(uc: UseCase) -> dg.AssetsDefinition:
    asset_key = key(uc, PERFORMANCE)
    partitions = daily_partitions(uc)
    mon = uc.monitoring
    metric = monitored_metric(uc)[1]
    figures_text = ("ROC AUC, precision, recall, F1, log loss (Evidently ClassificationPreset), Brier and calibration "
                    "error" if uc.task == "binary" else
                    "accuracy, macro-F1, log loss and per-class recall (Evidently ClassificationPreset)"
                    if uc.task == "multiclass" else "MAE, RMSE, R² and MAPE (Evidently RegressionPreset)")

    @dg.asset(
        key=asset_key,
        deps=[key(uc, BATCH_PREDICTIONS), label_key(uc)],
        group_name=uc.name,
        kinds={"evidently", "html", "mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("monitoring", uc.name),
        code_version=asset_metadata.source_code_version("monitoring/performance.py", "chain/performance.py"),
        partitions_def=partitions,
        # A range of days is one run (one report per day inside it).
        backfill_policy=dg.BackfillPolicy.single_run(),
        # Follows each day's predictions and labels (late labels for an old day refresh that day),
        # once the day has closed: an open day's figures are partial.
        automation_condition=per_day(closed_days_only=uc.last_day is None),
        check_specs=[dg.AssetCheckSpec(
            handoffs.PERFORMANCE_CHECK, asset=asset_key, blocking=False, partitions_def=partitions,
            description=f"Each model version that served the day keeps its {metric} within {uc.performance_tolerance} of "
                        f"its holdout {metric}. Days with too few labels pass unevaluated (metadata evaluated=0).")],
        description=f"Served predictions of the day (predictions.{uc.name}) against their labels, once the label "
                    f"coverage reaches {mon.min_label_coverage:.0%} and {mon.min_labelled_rows} rows: {figures_text}, "
                    "per model version vs its holdout figures; target drift of the day's labels.",
    )
    def performance_report(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, mlflow: MlflowResource):
        from mlops_assets.monitoring import outcomes as oc

        days = list(context.partition_keys)
        inputs = {}
        with warehouse.connect(read_only=True) as con:
            try:
                for day in days:
                    start, end = day_window(day)
                    inputs[day] = (oc.served_predictions(con, uc, start, end), oc.outcomes(con, uc, start, end),
                                   oc.rescored_rows(con, uc, start, end),
                                   oc.segments(con, uc, start, end) if uc.segment_column else None)
                reference_labels = oc.training_labels(con, uc)
            except LookupError as exc:
                raise dg.Failure(str(exc)) from exc
        unscored = [d for d in days if inputs[d][0].empty]
        if len(unscored) == len(days):
            raise dg.Failure(f"predictions.{uc.name} has no rows for {', '.join(days)}: materialize "
                             f"{'that day' if len(days) == 1 else 'those days'} of batch predictions first")
        per_day = {day: _performance_of_day(context, mlflow, uc, day, *inputs[day], reference_labels)
                   for day in days}
        return day_results(context, handoffs.PERFORMANCE_CHECK, per_day)

    return performance_report


def _performance_of_day(context, mlflow: MlflowResource, uc: UseCase, day: str, served, labels, rescored: int,
                        segments, reference_labels) -> tuple[dict, dg.AssetCheckResult]:
    """One day's served predictions against its labels: the day's metadata and check result.
    A day of a range that was never scored is reported as not evaluated, saying so."""
    from mlops_assets.evaluation.metrics import calibration_table
    from mlops_assets.monitoring import performance as perf
    from mlops_assets.monitoring.drift import prune_dated_reports, series_drift

    mon = uc.monitoring
    task = monitored_task(uc)
    try:
        joined = perf.join_outcomes(served, labels, uc.entity_column, uc.timestamp_column, task=task)
    except perf.PerformanceInputError as exc:
        raise dg.Failure(f"{uc.name} on {day}: {exc}") from exc
    labelled = joined[joined[perf.LABEL].notna()]
    coverage = perf.label_coverage(len(joined), len(labelled), mon.min_label_coverage, mon.min_labelled_rows)
    versions = sorted(joined[perf.VERSION].unique())
    metadata: dict = {
        handoffs.PERF_COVERAGE: round(coverage.coverage, 4),
        "scored_rows": coverage.scored_rows,
        "labelled_rows": coverage.labelled_rows,
        # Served = made before the row's label arrived (serving/predictions.py); re-scores made
        # later are left out of every figure and counted here.
        "rescored_rows": int(rescored),
        "served_after_label_rows": int(served["scored_after_label"].sum()) if "scored_after_label" in served else 0,
        handoffs.PERF_MODEL_VERSIONS: ",".join(versions),
        "day": day,
        # a multiclass or regression day names the metric it is judged on (binary: ROC AUC)
        **({handoffs.PERF_METRIC: task.primary_metric} if task.name != "binary" else {}),
    }
    if not coverage.enough:
        verdict = perf.tolerance_verdict(day, coverage, [], uc.performance_tolerance, mon.min_labelled_rows)
        context.log.info(verdict.description)
        return _result(metadata, verdict, uc.performance_tolerance)

    if segments is not None:  # each segment's model on its own rows
        metadata.update(_segment_metadata(uc, task, labelled, segments, mlflow.client()))
    client = mlflow.client()
    if task.name != "binary":
        return _task_performance_of_day(context, mlflow, client, uc, task, day, joined, labelled, coverage, versions,
                                        metadata, reference_labels)
    holdout = {v: holdout_roc_auc(client, uc.registered_model_name, v) for v in versions}
    per_version = perf.per_version(joined, holdout)
    verdict = perf.tolerance_verdict(day, coverage, per_version, uc.performance_tolerance, mon.min_labelled_rows)
    html = performance_report_path(uc, day)
    overall = perf.figures(labelled[perf.LABEL], labelled[perf.SCORE]) if labelled[perf.LABEL].nunique() > 1 else None
    if overall is not None:
        # The dated HTML shares Evidently's JavaScript; MLflow keeps the compact snapshot (render
        # it with `python -m mlops_assets.monitoring.drift <snapshot>`), old days are pruned.
        snapshot = html.with_suffix(".json.gz")
        evid = perf.evidently_figures(labelled, html_path=html, snapshot_path=snapshot,
                                      html_lib_dir=settings.evidently_lib_dir())
        prune_dated_reports(html.parent, settings.report_retention_days(), keep=day)
        # The metadata holds the project's exact figures (ROC AUC as the rank statistic);
        # Evidently's HTML must agree with them, which guards against a change in its snapshot
        # layout or defaults. Its ROC AUC differs slightly (1e-4) when scores tie.
        for name in ("roc_auc", "precision", "recall", "f1", "log_loss"):
            if abs(evid[name] - overall[name]) > 1e-3:
                raise RuntimeError(f"Evidently's {name} {evid[name]:.6f} disagrees with the project's "
                                   f"{overall[name]:.6f} on {day}")
        metadata.update({n: round(v, 5) for n, v in overall.items() if n != "rows"})
        metadata["accuracy"] = round(evid["accuracy"], 5)
        metadata["report"] = dg.MetadataValue.path(str(html))
        metadata["calibration"] = dg.MetadataValue.md(_md(calibration_table(labelled[perf.LABEL], labelled[perf.SCORE])))
    target = series_drift(reference_labels.astype(int), labelled[perf.LABEL].astype(int), name=uc.target_column,
                          categorical=True, stattest=mon.drift.prediction_stattest)
    metadata.update({
        "target_drift_score": round(target.score, 5), "target_drifted": target.drifted,
        "target_drift_test": target.stattest,
        "per_version": dg.MetadataValue.md(_versions_md(per_version)),
    })
    judged = [v for v in per_version if v.holdout_roc_auc is not None]
    if judged:
        metadata[handoffs.PERF_HOLDOUT_ROC_AUC] = round(judged[0].holdout_roc_auc, 5)
    if verdict.worst_drop is not None:
        metadata[handoffs.PERF_ROC_AUC_DROP] = round(verdict.worst_drop, 5)
    for v in per_version:  # the served figures beside each version in MLflow
        mv = client.get_model_version(uc.registered_model_name, v.version)
        if overall is not None:
            client.log_artifact(mv.run_id, str(snapshot), artifact_path=f"monitoring/performance/{day}")
        if v.figures is not None:
            ordinal = dt.date.fromisoformat(day).toordinal()
            for name in ("roc_auc", "log_loss", "f1"):
                client.log_metric(mv.run_id, f"served_{name}", v.figures[name], step=ordinal)
    metadata["mlflow_model_version_url"] = dg.MetadataValue.url(
        mlflow.model_version_url(uc.registered_model_name, versions[-1]))
    context.log.info(verdict.description)
    return _result(metadata, verdict, uc.performance_tolerance)


def _task_performance_of_day(context, mlflow: MlflowResource, client, uc: UseCase, task, day: str, joined, labelled,
                             coverage, versions: list[str], metadata: dict, reference_labels
                             ) -> tuple[dict, dg.AssetCheckResult]:
    """A regression or multiclass day, once enough labels arrived: the task's figures (the
    project's, which Evidently's preset must agree with), per model version against its holdout
    figure of the primary metric, and target drift."""
    from mlops_assets.monitoring import performance as perf
    from mlops_assets.monitoring.drift import prune_dated_reports

    mon, metric = uc.monitoring, task.primary_metric
    holdout = {v: holdout_metric(client, uc.registered_model_name, v, metric) for v in versions}
    per_version = perf.per_version(joined, holdout, task)
    verdict = perf.tolerance_verdict(day, coverage, per_version, uc.performance_tolerance, mon.min_labelled_rows)
    why = perf.defined(task, labelled)
    overall = None if why else perf.task_figures(task, labelled)
    html = performance_report_path(uc, day)
    snapshot = html.with_suffix(".json.gz")
    if overall is not None:
        evid = perf.evidently_task_figures(task, labelled, html_path=html, snapshot_path=snapshot,
                                           html_lib_dir=settings.evidently_lib_dir())
        prune_dated_reports(html.parent, settings.report_retention_days(), keep=day)
        disagree = perf.evidently_disagreements(overall, evid)
        if disagree:
            raise RuntimeError(f"Evidently disagrees with the project's figures on {day}: {'; '.join(disagree)}")
        metadata.update({n: round(v, 5) for n, v in overall.items() if n not in ("rows", "classes")})
        metadata["report"] = dg.MetadataValue.path(str(html))
    else:
        metadata["note"] = why
    metadata.update(_primary_metadata(metric, overall, per_version, verdict))
    metadata.update(_target_drift(uc, task, reference_labels, labelled))
    metadata["per_version"] = dg.MetadataValue.md(_versions_md(per_version))
    for v in per_version:  # the served figures beside each version in MLflow
        mv = client.get_model_version(uc.registered_model_name, v.version)
        if overall is not None:
            client.log_artifact(mv.run_id, str(snapshot), artifact_path=f"monitoring/performance/{day}")
        if v.figures is not None:
            ordinal = dt.date.fromisoformat(day).toordinal()
            for name in dict.fromkeys((metric, *task.directions)):
                if name in v.figures:
                    client.log_metric(mv.run_id, f"served_{name}", v.figures[name], step=ordinal)
    metadata["mlflow_model_version_url"] = dg.MetadataValue.url(
        mlflow.model_version_url(uc.registered_model_name, versions[-1]))
    context.log.info(verdict.description)
    return _result(metadata, verdict, uc.performance_tolerance)


def _segment_metadata(uc: UseCase, task, labelled, segments, client) -> dict:
    """The monitored metric per segment of the day (segment_column's value of each row), and
    each segment's verdict: its figure against the holdout figure of the version that served
    most of its rows (a segment's own model: measured on its segment's holdout rows; the global
    model: on the whole holdout), within the performance check's tolerance."""
    import pandas as pd

    from mlops_assets.monitoring import performance as perf

    keys, ts = [uc.entity_column, uc.timestamp_column], uc.timestamp_column
    # one timestamp unit on both sides (DuckDB hands back microseconds)
    segments = segments.assign(**{ts: pd.to_datetime(segments[ts]).astype("datetime64[ns]")})
    labelled = labelled.assign(**{ts: pd.to_datetime(labelled[ts]).astype("datetime64[ns]")})
    rows = labelled.merge(segments.drop_duplicates(keys), on=keys, how="left", validate="many_to_one")
    rows[uc.segment_column] = rows[uc.segment_column].fillna("(no feature row)")
    table = perf.per_segment(rows, uc.segment_column, task, uc.monitoring.min_labelled_rows)
    verdicts = _segment_verdicts(uc, task, rows, table, client)
    for r in table:
        v = verdicts[r["segment"]]
        r.update({"version": v["version"], "model": v["model"], "holdout": v["holdout"], "drop": v["drop"],
                  "passed": v["passed"]})
    failing = sorted(s for s, v in verdicts.items() if v["passed"] is False)
    return {"per_segment": dg.MetadataValue.md(_md(table)),
            "segment_figures": dg.MetadataValue.json({r["segment"]: r["value"] for r in table}),
            "segment_verdicts": dg.MetadataValue.json(verdicts),
            SEGMENTS_FAILING: ",".join(failing)}


SEGMENTS_FAILING = "segments_failing"


def _segment_verdicts(uc: UseCase, task, rows, table: list[dict], client) -> dict[str, dict]:
    """Per segment of the day: the version that served most of its rows, whether it is a
    segment's model (tag mlops.segment) or the global one, and its drop against its holdout
    figure (None when either figure is undefined, e.g. too few labelled rows)."""
    from mlops_assets.governance import registry
    from mlops_assets.monitoring import performance as perf

    tolerance = uc.performance_tolerance
    out: dict[str, dict] = {}
    for r in table:
        served = rows[rows[uc.segment_column].astype(str) == r["segment"]][perf.VERSION]
        version = str(served.value_counts().idxmax()) if len(served) else None
        holdout = None if version is None else holdout_metric(client, uc.registered_model_name, version, r["metric"])
        tags = (registry.version_tags(client, uc.registered_model_name, version) or {}) if version else {}
        drop = (None if holdout is None or r["value"] is None
                else round((holdout - r["value"]) * task.direction(r["metric"]), 5))
        out[r["segment"]] = {"version": version, "model": "segment" if registry.TAG_SEGMENT in tags else "global",
                             "metric": r["metric"], "value": r["value"],
                             "holdout": None if holdout is None else round(holdout, 5), "drop": drop,
                             "tolerance": tolerance, "passed": None if drop is None else bool(drop <= tolerance)}
    return out


def _primary_metadata(metric: str, overall: dict | None, per_version, verdict) -> dict:
    """The primary metric of the day, the holdout figure it is judged against and the worst
    drop, under names every task shares (the summary reads them)."""
    out: dict = {handoffs.PERF_METRIC: metric}
    if overall is not None and metric in overall:
        out[handoffs.PERF_VALUE] = round(overall[metric], 5)
    judged = [v for v in per_version if v.holdout is not None]
    if judged:
        out[handoffs.PERF_HOLDOUT_VALUE] = round(judged[0].holdout, 5)
    if verdict.worst_drop is not None:
        out[handoffs.PERF_DROP] = round(verdict.worst_drop, 5)
    return out


def _target_drift(uc: UseCase, task, reference_labels, labelled) -> dict:
    """Drift of the day's labels against the training target: the distribution of a number
    (regression) or of the classes (classification)."""
    from mlops_assets.monitoring import performance as perf
    from mlops_assets.monitoring.drift import series_drift

    if task.name == "regression":
        reference, current, categorical = reference_labels.astype(float), labelled[perf.LABEL].astype(float), False
    elif task.name == "multiclass":
        reference, current = reference_labels.map(perf.class_label), labelled[perf.LABEL].map(perf.class_label)
        categorical = True
    else:
        reference, current, categorical = reference_labels.astype(int), labelled[perf.LABEL].astype(int), True
    target = series_drift(reference, current, name=uc.target_column, categorical=categorical,
                          stattest=uc.monitoring.drift.prediction_stattest)
    return {"target_drift_score": round(target.score, 5), "target_drifted": target.drifted,
            "target_drift_test": target.stattest}


def _result(metadata: dict, verdict, tolerance: float) -> tuple[dict, dg.AssetCheckResult]:
    metadata = {**metadata, handoffs.PERF_EVALUATED: verdict.evaluated, handoffs.PERF_PASSED: verdict.passed}
    check_meta = handoffs.performance_check_metadata(
        evaluated=verdict.evaluated, coverage=metadata[handoffs.PERF_COVERAGE], roc_auc=metadata.get("roc_auc"),
        holdout_roc_auc=metadata.get(handoffs.PERF_HOLDOUT_ROC_AUC), drop=verdict.worst_drop, tolerance=tolerance,
        metric=metadata.get(handoffs.PERF_METRIC), value=metadata.get(handoffs.PERF_VALUE),
        holdout=metadata.get(handoffs.PERF_HOLDOUT_VALUE))
    if SEGMENTS_FAILING in metadata:  # a use case with a segment column: the segments out of tolerance
        check_meta = {**check_meta, SEGMENTS_FAILING: metadata[SEGMENTS_FAILING] or "none"}
    return metadata, dg.AssetCheckResult(
        check_name=handoffs.PERFORMANCE_CHECK, passed=verdict.passed, severity=dg.AssetCheckSeverity.WARN,
        description=verdict.description[:1000], metadata=check_meta)


def _md(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    head = list(rows[0])
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows])


def _versions_md(versions) -> str:
    """Each version's figure of the metric it is judged on (ROC AUC for a binary use case)."""
    rows = []
    for v in versions:
        name = v.metric
        rows.append({"version": v.version, "labelled_rows": v.labelled_rows,
                     name: f"{v.value:.4f}" if v.value is not None else "-",
                     f"holdout_{name}": f"{v.holdout:.4f}" if v.holdout is not None else "-",
                     "drop": f"{v.drop:+.4f}" if v.drop is not None else "-",
                     "note": v.note or ""})
    return _md(rows)


def recent_performance(instance: dg.DagsterInstance, uc: UseCase, training_storage_id: int | None,
                       limit: int, max_days: int = 60) -> tuple:
    """The `limit` most recent evaluated performance days (newest first) as the retrain trigger
    reads them; days whose check did not evaluate (too few labels) are skipped, at most
    `max_days` reported days are looked at. Fails loudly when a reported day lacks its check."""

    asset_key = key(uc, PERFORMANCE)
    check_key = dg.AssetCheckKey(asset_key, handoffs.PERFORMANCE_CHECK)
    out: list[PerformanceDay] = []
    for day in sorted(instance.get_materialized_partitions(asset_key), reverse=True)[:max_days]:
        if len(out) >= limit:
            break
        check = day_check_result(instance, check_key, day)
        if check.undecided:  # planned, running or skipped: no verdict yet
            continue
        mat, evaluation = check
        verdict = handoffs.read_performance_verdict(
            day, evaluation.passed if evaluation else None, evaluation.metadata if evaluation else None,
            f"the check {check_key.to_user_string()}")
        if not verdict.evaluated:
            continue
        scored = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key(uc, BATCH_PREDICTIONS), asset_partitions=[day]), limit=1).records
        after = bool(scored) and (training_storage_id is None or scored[0].storage_id > training_storage_id)
        out.append(PerformanceDay(day=day, passed=verdict.passed, roc_auc=verdict.roc_auc,
                                  holdout_roc_auc=verdict.holdout_roc_auc, roc_auc_drop=verdict.roc_auc_drop,
                                  storage_id=mat.storage_id, scored_after_training=after, metric=verdict.metric,
                                  value=verdict.value, holdout=verdict.holdout, drop=verdict.drop))
    return tuple(out)
