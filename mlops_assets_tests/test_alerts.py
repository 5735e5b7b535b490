"""Alerts: a failed check and a failed run reach the alert file and a real webhook receiver
(http.server on 127.0.0.1, started by the test) with use case, asset/check, day, run id and
run link; an unreachable webhook is retried a bounded number of times, logged, and the sensor
tick still succeeds with the alert in the file."""
import time

import dagster as dg

from mlops_assets.alerts import sink
from mlops_assets.alerts.sink import AlertSink
from mlops_assets.chain.alerts import ALERT_RESOURCE, build_check_alert_sensor, build_run_failure_alert_sensor
from mlops_assets_tests.webhook_receiver import Receiver, closed_port_url, read_alerts

DAY = "2026-01-05"
UI = "http://dagster.example:3000"


# --- the pieces ----------------------------------------------------------------------------

def test_partition_and_use_case_from_run_tags_and_keys():
    assert sink.partition_of({"dagster/partition": DAY}) == DAY
    assert sink.partition_of({"dagster/asset_partition_range_start": "2026-01-01",
                              "dagster/asset_partition_range_end": DAY}) == f"2026-01-01...{DAY}"
    assert sink.partition_of({}) is None
    assert sink.use_case_of(["churn", "drift_report"]) == "churn" and sink.use_case_of(["lonely"]) is None
    assert sink.run_url(UI + "/", "abc") == f"{UI}/runs/abc"


def test_webhook_retries_then_delivers():
    logged = []
    with Receiver(fail_first=2) as receiver:
        d = sink.post_webhook(receiver.url, {"text": "hi"}, retries=3, backoff_s=0.01, timeout_s=5, log=logged.append)
    assert d.delivered and d.attempts == 3 and receiver.bodies == [{"text": "hi"}]
    assert len(logged) == 2 and "HTTP Error 500" in logged[0]


def test_unreachable_webhook_is_retried_with_backoff_then_logged_without_its_secret():
    logged, waits = [], []
    url = closed_port_url()
    d = sink.post_webhook(url, {"text": "hi"}, retries=4, backoff_s=0.5, timeout_s=2, log=logged.append,
                          sleep=waits.append)
    assert not d.delivered and d.attempts == 4 and "refused" in d.error.lower()
    assert waits == [0.5, 1.0, 2.0]  # bounded: retries - 1 waits, doubling
    assert [m.split(": attempt ")[1][:3] for m in logged[:4]] == ["1/4", "2/4", "3/4", "4/4"]
    assert "unreachable after 4 attempts" in logged[-1]
    assert all("/hook" not in m for m in logged)  # a webhook's path is its secret


def test_sink_writes_the_file_even_when_the_webhook_is_down_and_posts_once_per_batch(tmp_path):
    alerts = [sink.Alert(kind=sink.CHECK_FAILED, use_case="churn", message=f"m{i}", run_id="r", run_url=None,
                         asset="churn/drift_report", check="drift_below_threshold", partition=DAY) for i in range(3)]
    logged = []
    resource = AlertSink(file_path=str(tmp_path / "a.jsonl"), webhook_url=closed_port_url(), retries=2, backoff_s=0)
    deliveries = resource.send(alerts, log=logged.append)
    assert [r["message"] for r in read_alerts(tmp_path / "a.jsonl")] == ["m0", "m1", "m2"]
    assert [d.attempts for d in deliveries] == [2, 0, 0]  # one bounded retry sequence, not one per alert
    assert sum(": attempt " in m for m in logged) == 2 and sum("not posting" in m for m in logged) == 2


def test_default_file_is_under_the_data_folder(data_dir):
    assert AlertSink().alert_file() == data_dir / "alerts" / "alerts.jsonl"
    assert AlertSink().dagster_ui_url() == "http://127.0.0.1:3000"


def test_env_vars_configure_the_sink(monkeypatch, tmp_path):
    monkeypatch.setenv(sink.FILE_ENV, str(tmp_path / "x.jsonl"))
    monkeypatch.setenv(sink.WEBHOOK_ENV, "http://127.0.0.1:9/hook")
    monkeypatch.setenv(sink.RETRIES_ENV, "5")
    resource = sink.alert_sink_from_env()
    # the UI shows the variable's name, not the secret URL
    assert resource.webhook_url == dg.EnvVar(sink.WEBHOOK_ENV)
    with dg.build_resources({"alerts": resource}) as resources:
        resolved = resources.alerts
        assert resolved.webhook_url == "http://127.0.0.1:9/hook" and resolved.retries == 5
        assert resolved.alert_file() == tmp_path / "x.jsonl"


# --- the sensors against a real instance, real runs and a real receiver ---------------------

days = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@dg.asset(key=["churn", "drift_report"], partitions_def=days,
          check_specs=[dg.AssetCheckSpec("drift_below_threshold", asset=["churn", "drift_report"])])
def drift_report():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="drift_below_threshold", passed=False, severity=dg.AssetCheckSeverity.WARN,
                              description="drift share 0.60 >= threshold 0.30", metadata={"drift_share": 0.6})


@dg.asset(key=["churn", "raw"], partitions_def=days)
def raw():
    raise ValueError("landing file churn_2026-01-05.csv: column 'tenure' expected int")


def _defs(resource):
    return dg.Definitions(assets=[drift_report, raw], sensors=[build_check_alert_sensor(),
                                                             build_run_failure_alert_sensor()],
                          resources={ALERT_RESOURCE: resource})


def _tick(defs, name, instance, cursor):
    sensor_def = defs.get_repository_def().get_sensor_def(name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      resources={ALERT_RESOURCE: defs.resources[ALERT_RESOURCE]})
    started = time.monotonic()
    result = sensor_def.evaluate_tick(context)
    return result, time.monotonic() - started


def test_failed_check_and_failed_run_reach_the_file_and_the_webhook(tmp_path):
    with Receiver() as receiver, dg.instance_for_test() as instance:
        resource = AlertSink(file_path=str(tmp_path / "alerts.jsonl"), webhook_url=receiver.url, ui_url=UI)
        defs = _defs(resource)
        first, _ = _tick(defs, "alert_on_failed_checks", instance, None)
        run_first, _ = _tick(defs, "alert_on_run_failure", instance, None)

        check_run = dg.materialize([drift_report], instance=instance, partition_key=DAY)
        assert check_run.success  # a non-blocking check: the pipeline goes on
        failed_run = dg.materialize([raw], instance=instance, partition_key=DAY, raise_on_error=False)
        assert not failed_run.success

        checks, _ = _tick(defs, "alert_on_failed_checks", instance, first.cursor)
        runs, _ = _tick(defs, "alert_on_run_failure", instance, run_first.cursor)
        again, _ = _tick(defs, "alert_on_failed_checks", instance, checks.cursor)

    assert "1 failed check(s) alerted" in checks.skip_message
    assert again.skip_message.startswith("no new failed checks")  # the cursor moved: no repeat
    records = read_alerts(tmp_path / "alerts.jsonl")
    assert len(records) == 2, records
    by_kind = {r["kind"]: r for r in records}
    check = by_kind["check_failed"]
    assert (check["use_case"], check["asset"], check["check"], check["partition"]) == \
        ("churn", "churn/drift_report", "drift_below_threshold", DAY)
    assert check["run_id"] == check_run.run_id and check["run_url"] == f"{UI}/runs/{check_run.run_id}"
    assert check["severity"] == "WARN" and check["details"] == {"drift_share": 0.6}
    assert "drift share 0.60" in check["message"]
    run = by_kind["run_failed"]
    assert (run["use_case"], run["asset"], run["partition"], run["run_id"]) == \
        ("churn", "churn/raw", DAY, failed_run.run_id)
    assert run["run_url"] == f"{UI}/runs/{failed_run.run_id}" and "churn__raw" in run["details"]["failed_steps"]
    texts = [b["text"] for b in receiver.bodies]
    assert len(texts) == 2 and set(receiver.bodies[0]) == {"text"}
    assert any("drift_below_threshold" in t and DAY in t and check_run.run_id in t for t in texts)
    assert any("run of" in t and failed_run.run_id in t and "churn" in t for t in texts)


def test_unreachable_webhook_never_fails_the_tick(tmp_path):
    with dg.instance_for_test() as instance:
        resource = AlertSink(file_path=str(tmp_path / "alerts.jsonl"), webhook_url=closed_port_url(),
                             retries=3, backoff_s=0.05, timeout_s=2)
        defs = _defs(resource)
        first, _ = _tick(defs, "alert_on_failed_checks", instance, None)
        run_first, _ = _tick(defs, "alert_on_run_failure", instance, None)
        dg.materialize([drift_report], instance=instance, partition_key=DAY)
        dg.materialize([raw], instance=instance, partition_key=DAY, raise_on_error=False)
        checks, took = _tick(defs, "alert_on_failed_checks", instance, first.cursor)
        runs, run_took = _tick(defs, "alert_on_run_failure", instance, run_first.cursor)

    assert "webhook failed for 1" in checks.skip_message
    assert took < 10 and run_took < 10  # bounded: 3 refused attempts and 0.05 + 0.1 s of backoff
    assert [r["kind"] for r in read_alerts(tmp_path / "alerts.jsonl")] == ["check_failed", "run_failed"]


class _Outcome(dg.Config):
    passed: bool


@dg.asset(key=["churn", "drift_report"], partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("drift_below_threshold", asset=["churn", "drift_report"], partitions_def=days)])
def day_drift(context: dg.AssetExecutionContext, config: _Outcome):
    from mlops_assets.chain.partitions import day_results

    return day_results(context, "drift_below_threshold", {
        day: ({}, dg.AssetCheckResult(check_name="drift_below_threshold", passed=config.passed,
                                      description=f"{day}: {'ok' if config.passed else 'drifted'}"))
        for day in context.partition_keys})


def test_a_days_check_is_alerted_once_and_again_only_after_its_outcome_changed(tmp_path):
    """Re-runs of a day (automation, backfills) repeat its verdict; only a change is news. A range
    run alerts each failed day, never its roll-up."""
    job = dg.define_asset_job("drift", selection=[day_drift])
    defs = dg.Definitions(assets=[day_drift], jobs=[job], sensors=[build_check_alert_sensor()],
                          resources={ALERT_RESOURCE: AlertSink(file_path=str(tmp_path / "alerts.jsonl"), ui_url=UI)})

    def run(passed, **partition):
        config = {"ops": {"churn__drift_report": {"config": {"passed": passed}}}}
        assert defs.resolve_job_def("drift").execute_in_process(instance=instance, run_config=config,
                                                                **partition).success

    def alerted():
        return [(r["partition"], r["check"]) for r in read_alerts(tmp_path / "alerts.jsonl")] \
            if (tmp_path / "alerts.jsonl").exists() else []

    with dg.instance_for_test() as instance:
        cursor = _tick(defs, "alert_on_failed_checks", instance, None)[0].cursor
        run(False, partition_key=DAY)
        run(False, partition_key=DAY)  # a re-run of the day, same verdict
        tick, _ = _tick(defs, "alert_on_failed_checks", instance, cursor)
        assert alerted() == [(DAY, "drift_below_threshold")]
        assert "1 failure(s) of a day already alerted" in tick.skip_message
        run(False, partition_key=DAY)
        tick, _ = _tick(defs, "alert_on_failed_checks", instance, tick.cursor)
        assert len(alerted()) == 1 and tick.skip_message.startswith("no new failed checks")
        run(True, partition_key=DAY)  # recovered, then drifted again: news
        run(False, partition_key=DAY)
        tick, _ = _tick(defs, "alert_on_failed_checks", instance, tick.cursor)
        assert len(alerted()) == 2
        run(False, tags={"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": "2026-01-07"})
        tick, _ = _tick(defs, "alert_on_failed_checks", instance, tick.cursor)
    assert alerted()[2:] == [("2026-01-06", "drift_below_threshold"), ("2026-01-07", "drift_below_threshold")]


def test_an_older_cursor_is_read():
    from mlops_assets.chain.alerts import _read_cursor

    assert _read_cursor("42") == {"after": 42, "last": {}}
