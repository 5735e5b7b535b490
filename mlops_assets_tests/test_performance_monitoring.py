"""The performance loop on real DuckDB, dbt, MLflow and Evidently: the performance report of a
labelled day carries the figures recomputed here from the stored predictions and labels; concept
drift from the simulator fails the performance check on consecutive days, the retrain trigger
requests the training chain and the alert sensors send each failing day to the alert file and to
a webhook receiver on 127.0.0.1; late labels re-request a day's report; the summary shows it all."""
import datetime as dt
import time
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest

from mlops_assets import settings
from mlops_assets.chain import handoffs
from mlops_assets.alerts import sink
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets_tests.webhook_receiver import Receiver, read_alerts

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)
DRIFT_FROM = D0 + dt.timedelta(days=20)  # 2026-01-21


def _keys(*names):
    return [dg.AssetKey(["churn", n]) for n in names]


def _latest(instance, name, day=None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["churn", name]), asset_partitions=[day] if day else None),
        limit=1).records
    assert records, f"churn/{name} {day or ''} was not materialized"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _check_record(instance, day):
    from dagster._core.event_api import PartitionKeyFilter

    check_key = dg.AssetCheckKey(dg.AssetKey(["churn", "performance_report"]), handoffs.PERFORMANCE_CHECK)
    (record,) = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, partition_filter=PartitionKeyFilter(key=day))
    return record


def _check(instance, day):
    return _check_record(instance, day).evaluation


def _tick(defs, instance, name, cursor):
    """One tick of a sensor of the code location, as the daemon would run it."""
    from mlops_assets.chain.alerts import ALERT_RESOURCE

    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      resources={ALERT_RESOURCE: defs.resources[ALERT_RESOURCE]})
    return defs.get_repository_def().get_sensor_def(name).evaluate_tick(context)


@pytest.fixture(scope="module")
def receiver(module_data_dir):
    """A webhook receiver on 127.0.0.1 the code location's alert sink posts to (its env vars)."""
    with pytest.MonkeyPatch.context() as mp, Receiver() as r:
        for env in (sink.FILE_ENV, sink.UI_URL_ENV, sink.RETRIES_ENV):
            mp.delenv(env, raising=False)
        mp.setenv(sink.WEBHOOK_ENV, r.url)
        yield r


def _recompute(day: str) -> dict:
    """The day's figures straight from predictions.churn and the labels: a label file's label
    (labels.churn) where there is one, else the target the row carried (raw.churn)."""
    from sklearn import metrics as sk

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        df = con.execute(
            "SELECT p.score, coalesce(l.churned, r.churned) AS churned FROM predictions.churn p "
            "JOIN (SELECT DISTINCT customer_id, event_ts, churned FROM raw.churn) r USING (customer_id, event_ts) "
            "LEFT JOIN labels.churn l USING (customer_id, event_ts) "
            "WHERE CAST(p.event_ts AS DATE) = ? AND coalesce(l.churned, r.churned) IS NOT NULL", [day]).df()
    pred = (df.score >= 0.5).astype(int)
    return {"rows": len(df), "roc_auc": sk.roc_auc_score(df.churned, df.score),
            "precision": sk.precision_score(df.churned, pred), "recall": sk.recall_score(df.churned, pred),
            "f1": sk.f1_score(df.churned, pred), "log_loss": sk.log_loss(df.churned, df.score),
            "brier": sk.brier_score_loss(df.churned, df.score)}


# The scenario in stages: `calm` (the demo path on 20 calm days) and `drifted` (4 days of
# concept drift landed, scored, labelled and reported) are built once for the module; each test
# checks one concern on that state, in file order where a stage adds to it (the drift report,
# the alert ticks, the late labels).

@pytest.fixture(scope="module")
def calm(module_data_dir, dbt_manifest, receiver):
    from mlops_assets.orchestrate import run_pipeline

    write_days(module_data_dir / "landing" / "churn", day_range(D0, 20), SimulationConfig(rows_per_day=300))
    # the demo path: load, train, promote, then score, drift-check and performance-report the latest day
    assert run_pipeline(only=["churn"])
    return "2026-01-20"


@pytest.fixture(scope="module")
def drifted(calm, module_data_dir, receiver):
    """Four days of concept drift (the inputs look the same, the feature -> label relation
    changes), landing as production does: rows without their target, labels in label files;
    scored, reported before their labels came (kept here: later runs replace it), labelled,
    reported again. The alert sensors' first tick comes before: it marks where alerting starts."""
    from mlops_assets.chain.alerts import CHECK_SENSOR, RUN_FAILURE_SENSOR
    from mlops_assets.chain.performance import label_key
    from mlops_assets.definitions import build_defs
    from mlops_assets.orchestrate import execute
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    write_days(module_data_dir / "landing" / "churn", day_range(DRIFT_FROM, 4),
               SimulationConfig(rows_per_day=300, concept_drift_from=DRIFT_FROM),
               label_folder=uc.labels.path(), label_delay_days=0)
    instance = dg.DagsterInstance.get()
    defs = build_defs()
    days = [d.isoformat() for d in day_range(DRIFT_FROM, 4)]
    check_tick, failure_tick = _tick(defs, instance, CHECK_SENSOR, None), _tick(defs, instance, RUN_FAILURE_SENSOR, None)
    bodies_after_first_tick = list(receiver.bodies)
    rng = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    assert execute(defs, instance, "churn_daily", _keys("raw", "stg_churn", "features_churn", "batch_predictions"),
                   tags=rng)
    assert execute(defs, instance, "churn_daily", _keys("performance_report"), partition_key=days[0])
    pending = _latest(instance, "performance_report", days[0])
    pending_check_passed = _check(instance, days[0]).passed
    assert execute(defs, instance, "churn_daily", [label_key(uc)], tags=rng)  # the label files load
    for day in days:
        assert execute(defs, instance, "churn_daily", _keys("performance_report"), partition_key=day)
    return SimpleNamespace(uc=uc, defs=defs, days=days, rng=rng, check_tick=check_tick, failure_tick=failure_tick,
                           bodies_after_first_tick=bodies_after_first_tick, pending=pending,
                           pending_check_passed=pending_check_passed)


def test_a_labelled_days_report_carries_the_figures_of_its_predictions_and_labels(calm):
    instance = dg.DagsterInstance.get()
    md = _latest(instance, "performance_report", calm)
    expected = _recompute(calm)
    assert md["evaluated"] is True and md["label_coverage"] == 1.0 and md["labelled_rows"] == expected["rows"] == 300
    for name in ("roc_auc", "precision", "recall", "f1", "log_loss", "brier"):
        assert md[name] == pytest.approx(expected[name], abs=1e-4), name
    evaluation = _latest(instance, "model_evaluation")
    assert md["holdout_roc_auc"] == pytest.approx(evaluation["holdout_roc_auc"], abs=1e-4)
    assert _check(instance, calm).passed  # a holdout day: served as well as evaluated
    html = md["report"]
    assert "RocAuc" in open(html, encoding="utf-8").read() or "ROC AUC" in open(html, encoding="utf-8").read()


def test_the_report_is_logged_beside_the_model_version_in_mlflow(calm):
    import mlflow

    md = _latest(dg.DagsterInstance.get(), "performance_report", calm)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    client = mlflow.MlflowClient()
    version = client.get_model_version("churn_model", md["model_versions"])
    logged = [a.path for a in client.list_artifacts(version.run_id, f"monitoring/performance/{calm}")]
    assert logged == [f"monitoring/performance/{calm}/performance_report_{calm}.json.gz"]  # the compact snapshot
    assert [m.step for m in client.get_metric_history(version.run_id, "served_roc_auc")] == [dt.date(2026, 1, 20).toordinal()]


def test_the_alert_sensors_first_tick_announces_nothing_of_the_calm_history(drifted):
    assert drifted.check_tick.cursor and not drifted.bodies_after_first_tick


def test_a_scored_day_without_labels_is_reported_unevaluated_and_its_check_passes(drifted):
    pending = drifted.pending
    assert (pending["evaluated"], pending["label_coverage"], pending["labelled_rows"]) == (False, 0.0, 0)
    assert "roc_auc" not in pending and drifted.pending_check_passed


def test_concept_drift_fails_the_performance_check_on_each_labelled_day(drifted):
    instance, days = dg.DagsterInstance.get(), drifted.days
    for day in days:
        evaluation_of_day = _check(instance, day)
        assert not evaluation_of_day.passed, evaluation_of_day.description
        assert _latest(instance, "performance_report", day)["roc_auc"] == pytest.approx(_recompute(day)["roc_auc"], abs=1e-4)
    assert _latest(instance, "performance_report", days[-1])["roc_auc_drop"] > 0.05


def test_concept_drift_leaves_the_drift_report_calm(drifted):
    from mlops_assets.orchestrate import execute

    # concept drift leaves the inputs alone: the drift report (data and prediction drift) stays calm
    instance, days = dg.DagsterInstance.get(), drifted.days
    assert execute(drifted.defs, instance, "churn_daily", _keys("drift_report"), partition_key=days[-1])
    drift_md = _latest(instance, "drift_report", days[-1])
    assert drift_md["drift_share"] < 0.3, drift_md["drift_share"]
    assert drift_md[handoffs.PREDICTION_DRIFTED] is False, drift_md[handoffs.PREDICTION_DRIFT_SCORE]


def test_each_failing_day_is_alerted_once_to_the_file_and_the_webhook(drifted, receiver, module_data_dir):
    from mlops_assets.chain.alerts import CHECK_SENSOR, RUN_FAILURE_SENSOR

    # one alert per failing day, in the JSON-lines file and at the webhook, naming use case,
    # check, day and the run that evaluated it; no run failed, so the run-failure sensor sends nothing
    instance, defs, days = dg.DagsterInstance.get(), drifted.defs, drifted.days
    started = time.monotonic()
    check_tick = _tick(defs, instance, CHECK_SENSOR, drifted.check_tick.cursor)
    failure_tick = _tick(defs, instance, RUN_FAILURE_SENSOR, drifted.failure_tick.cursor)
    print(f"alert sensor ticks after the drifted days: {time.monotonic() - started:.1f}s")
    assert check_tick.skip_message.startswith(f"{len(days)} failed check(s) alerted"), check_tick.skip_message
    assert "webhook failed" not in check_tick.skip_message and not failure_tick.run_requests
    alerts = read_alerts(module_data_dir / "alerts" / "alerts.jsonl")
    assert [(a["kind"], a["use_case"], a["asset"], a["check"]) for a in alerts] == \
        [(sink.CHECK_FAILED, "churn", "churn/performance_report", handoffs.PERFORMANCE_CHECK)] * len(days)
    assert sorted(a["partition"] for a in alerts) == days
    texts = [b["text"] for b in receiver.bodies]
    assert len(texts) == len(days) and all(set(b) == {"text"} for b in receiver.bodies)
    for alert in alerts:
        day, record = alert["partition"], _check_record(instance, alert["partition"])
        assert alert["run_id"] == record.run_id and instance.get_run_by_id(record.run_id).tags["dagster/partition"] == day
        assert alert["run_url"].endswith(f"/runs/{record.run_id}") and alert["severity"] == "WARN"
        assert alert["message"] == record.evaluation.description
        assert alert["details"]["roc_auc"] == pytest.approx(_recompute(day)["roc_auc"], abs=1e-4)
        assert alert["details"]["roc_auc_drop"] > alert["details"]["tolerance"]
        (text,) = [t for t in texts if f"day {day}" in t]
        assert all(s in text for s in ("churn", handoffs.PERFORMANCE_CHECK, record.run_id)), text


def test_three_failing_labelled_days_in_a_row_request_the_training_chain(drifted):
    from mlops_assets.chain.retrain import build_retrain_sensor, retrain_state
    from mlops_assets.training.triggers import decide
    from mlops_assets.use_cases.config import RetrainConfig

    instance, days = dg.DagsterInstance.get(), drifted.days
    uc = drifted.uc.model_copy(update={"retrain": RetrainConfig(min_new_rows=None, cooldown_minutes=0)})
    state = retrain_state(instance, uc, time.time())
    assert [d.day for d in state.performance] == days[::-1][:3]
    decision = decide(uc.name, uc.retrain, state, uc.monitoring.performance_retrain_days)
    assert decision.trigger == "performance", decision.reason
    assert all(d in decision.reason for d in days[-3:]) and days[0] not in decision.reason
    fired = build_retrain_sensor(uc)(dg.build_sensor_context(instance=instance))
    assert isinstance(fired, dg.RunRequest) and fired.tags["mlops/trigger"] == "performance"
    assert fired.run_key == decision.run_key and fired.run_key.startswith("performance:churn:")
    assert fired.asset_selection is None  # the sensor's target: the whole training chain


def test_late_labels_re_request_that_days_report(drifted):
    from mlops_assets.chain.performance import label_key
    from mlops_assets.orchestrate import execute

    # late labels for 2026-01-21 (its label source's day is updated): the automation re-requests that day's report
    instance, defs, days = dg.DagsterInstance.get(), drifted.defs, drifted.days
    start = dt.datetime(2026, 1, 25, 12, tzinfo=dt.timezone.utc)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=start)
    assert execute(defs, instance, "churn_daily", [label_key(drifted.uc)], partition_key=days[0])
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                               evaluation_time=start + dt.timedelta(minutes=1))
    assert second.get_requested_partitions(dg.AssetKey(["churn", "performance_report"])) == {days[0]}


def test_the_summary_shows_each_day_and_marks_the_failing_ones(drifted, calm):
    from mlops_assets.orchestrate import execute

    # one row per day, the failing days marked, and the overview page
    instance, days = dg.DagsterInstance.get(), drifted.days
    assert execute(drifted.defs, instance, "churn_monitoring_summary", _keys("monitoring_summary"))
    summary = _latest(instance, "monitoring_summary")
    rows = {r.data["day"]: r.data for r in summary["days"].records}
    assert set(rows) == {calm, *days}
    assert rows[calm]["performance_check"] == "pass" and rows[days[-1]]["performance_check"] == "FAIL"
    assert rows[days[-1]]["roc_auc"] == pytest.approx(_recompute(days[-1])["roc_auc"], abs=1e-3)
    assert rows[calm]["drift_check"] == "pass" and "drift_share" in rows[calm]
    assert [c.name for c in summary["days"].schema.columns][:4] == ["day", "rows", "label_coverage", "model_version"]
    page = open(summary["overview"], encoding="utf-8").read()
    assert page.count("<svg") == 5 and days[-1] in page
