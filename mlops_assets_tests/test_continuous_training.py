"""Continuous training on a real DagsterInstance and real files: the landing sensor, the
automation conditions, and the retraining triggers."""
import datetime as dt
import os
import time

import dagster as dg
import pytest

from mlops_assets.chain import handoffs
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.training.triggers import DriftState, RetrainState, decide
from mlops_assets.use_cases.config import RetrainConfig

D0 = dt.date(2026, 1, 1)


def _age(paths, seconds=120):
    for p in paths:
        t = time.time() - seconds
        os.utime(p, (t, t))


def _tick(sensor, instance, cursor):
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    return result, [r.tags["mlops/days"] for r in result.run_requests]


def test_landing_sensor_requests_each_new_day_once(churn, data_dir):
    from mlops_assets.chain.landing_sensor import build_landing_sensor

    instance = dg.DagsterInstance.get()
    folder = churn.landing.path()
    _age(write_days(folder, day_range(D0, 2), SimulationConfig(rows_per_day=40)))
    sensor = build_landing_sensor(churn)

    first, days = _tick(sensor, instance, None)
    assert days == ["2026-01-01..2026-01-02"]  # one run over both days
    assert all(r.run_key and r.run_key.startswith("churn:2026-01-0") for r in first.run_requests)

    # the same files again: nothing
    again, days = _tick(sensor, instance, first.cursor)
    assert days == [] and "none new or changed" in again.skip_reason.skip_message

    # a restarted daemon gets the stored cursor and a freshly built sensor: still nothing
    restarted, days = _tick(build_landing_sensor(churn), instance, first.cursor)
    assert days == []

    # without any cursor the same files give the same run keys, which Dagster runs only once
    lost, _ = _tick(build_landing_sensor(churn), instance, None)
    assert [r.run_key for r in lost.run_requests] == [r.run_key for r in first.run_requests]

    # a file still being written is skipped until it has settled
    (fresh,) = write_days(folder, [D0 + dt.timedelta(days=2)], SimulationConfig(rows_per_day=40))
    waiting, days = _tick(sensor, instance, first.cursor)
    assert days == [] and "may still be being written" in waiting.skip_reason.skip_message
    _age([fresh])
    settled, days = _tick(sensor, instance, waiting.cursor)
    assert days == ["2026-01-03"]

    # a loaded file that changes is requested again, under a new run key
    (changed,) = write_days(folder, [D0], SimulationConfig(rows_per_day=55, seed=7))
    _age([changed], 60)
    reloaded, days = _tick(sensor, instance, settled.cursor)
    assert days == ["2026-01-01"]
    assert reloaded.run_requests[0].run_key != first.run_requests[0].run_key


def test_landing_sensor_survives_bad_and_out_of_range_files(churn, data_dir):
    from mlops_assets.chain.landing_sensor import build_landing_sensor

    instance = dg.DagsterInstance.get()
    folder = churn.landing.path()
    folder.mkdir(parents=True)
    (folder / "broken.csv").write_text("customer_id,churned\nC1,1\n")
    (folder / "early.csv").write_text("customer_id,event_ts,churned\nC1,2024-06-01 10:00:00,1\nC2,2026-01-05 09:00:00,0\n")
    _age([folder / "broken.csv", folder / "early.csv"])
    result, days = _tick(build_landing_sensor(churn), instance, None)
    assert days == ["2026-01-05"]
    # the broken file is remembered (not re-read every tick) until it changes
    again, _ = _tick(build_landing_sensor(churn), instance, result.cursor)
    assert "broken.csv" not in (again.skip_reason.skip_message if again.skip_reason else "")


def _retrain_state(**kw):
    base = dict(now=1_000_000.0, training_storage_id=10, last_retrain_end=1_000_000.0 - 7200,
                new_labelled_rows=0, latest_drift=None, retrain_in_progress=None)
    return RetrainState(**{**base, **kw})


def test_retrain_decision_rules():
    cfg = RetrainConfig(min_new_rows=1000, cooldown_minutes=30)
    assert decide("churn", cfg, _retrain_state()).trigger is None
    drift = DriftState(day="2026-01-22", flagged=True, drift_share=0.7, storage_id=50, timestamp=0)
    d = decide("churn", cfg, _retrain_state(latest_drift=drift))
    assert (d.trigger, d.run_key) == ("drift", "drift:churn:50")
    # a drift already older than the current training set has been handled
    assert decide("churn", cfg, _retrain_state(latest_drift=drift, training_storage_id=60)).trigger is None
    assert decide("churn", cfg, _retrain_state(latest_drift=DriftState("2026-01-22", False, 0.1, 50, 0))).trigger is None
    rows = decide("churn", cfg, _retrain_state(new_labelled_rows=1500))
    assert (rows.trigger, rows.run_key) == ("new_rows", "rows:churn:10")
    assert decide("churn", cfg, _retrain_state(new_labelled_rows=1500, retrain_in_progress="abc")).trigger is None
    cooling = decide("churn", cfg, _retrain_state(new_labelled_rows=1500, last_retrain_end=1_000_000.0 - 60))
    assert cooling.trigger is None and "cool-down" in cooling.reason
    assert decide("churn", cfg.model_copy(update={"on_drift": False}), _retrain_state(latest_drift=drift)).trigger is None
    assert decide("churn", cfg, _retrain_state(training_storage_id=None, last_retrain_end=None,
                                               new_labelled_rows=1000)).run_key == "rows:churn:0"


def _report(instance, *key, partition=None, metadata=None):
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(list(key)), partition=partition, metadata=metadata or {}))


def _training_set(instance, holdout_end="2026-01-19"):
    """A training set whose data ends on `holdout_end`, with the metadata the real asset writes."""
    end = dt.date.fromisoformat(holdout_end)
    _report(instance, "churn", "training_set", metadata={
        handoffs.TRAIN_START: str(end - dt.timedelta(days=30)), handoffs.TRAIN_END: str(end - dt.timedelta(days=7)),
        handoffs.HOLDOUT_START: str(end - dt.timedelta(days=6)), handoffs.HOLDOUT_END: holdout_end,
        handoffs.TRAINING_DIGEST: "d"})


def _drift(instance, day, passed, share):
    """A day's drift report and its partitioned check result, as the real asset records them."""
    asset_key = dg.AssetKey(["churn", "drift_report"])
    _report(instance, "churn", "drift_report", partition=day)
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=asset_key, check_name=handoffs.DRIFT_CHECK, passed=passed, partition=day,
        metadata=handoffs.drift_check_metadata(share, 0.3)))


def test_retrain_sensor_reads_drift_and_new_rows_from_the_event_log(churn, data_dir):
    from mlops_assets.chain.retrain import build_retrain_sensor, training_chain

    instance = dg.DagsterInstance.get()
    uc = churn.model_copy(update={"retrain": RetrainConfig(min_new_rows=1000, cooldown_minutes=0)})
    sensor = build_retrain_sensor(uc)
    _training_set(instance)
    for day in ("2026-01-20", "2026-01-21"):
        _report(instance, "churn", "raw", partition=day, metadata={"labelled_rows": 300})
    _report(instance, "churn", "raw", partition="2026-01-21", metadata={"labelled_rows": 310})  # reloaded day
    _drift(instance, "2026-01-21", passed=True, share=0.1)
    quiet = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(quiet, dg.SkipReason) and "610/1000 new labelled rows" in quiet.skip_message

    _drift(instance, "2026-01-22", passed=True, share=0.2)
    _drift(instance, "2026-01-20", passed=False, share=0.74)  # a flagged older day does not decide
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
    _drift(instance, "2026-01-23", passed=False, share=0.74)
    fired = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(fired, dg.RunRequest) and fired.tags["mlops/trigger"] == "drift"
    assert fired.run_key.startswith("drift:churn:")
    assert fired.asset_selection is None  # i.e. the sensor's target: the whole training chain
    assert [k.path[1] for k in training_chain(uc)] == ["training_set", "candidate_model", "model_evaluation",
                                                        "champion_model"]

    # once a new training set exists, the same drift does not fire again
    _training_set(instance, "2026-01-23")
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)


def test_automation_follows_a_new_day_and_the_weekly_cron(churn, data_dir, dbt_manifest):
    from mlops_assets.definitions import build_defs

    defs = build_defs()
    instance = dg.DagsterInstance.get()
    daily = defs.resolve_job_def("churn_daily")
    raw, stg, features = (dg.AssetKey(["churn", n]) for n in ("raw", "stg_churn", "features_churn"))
    drift, training = dg.AssetKey(["churn", "drift_report"]), dg.AssetKey(["churn", "training_set"])
    write_days(churn.landing.path(), [dt.date(2026, 1, 9)], SimulationConfig(rows_per_day=200))

    start = dt.datetime(2026, 1, 10, 12, tzinfo=dt.timezone.utc)  # a Saturday
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=start)
    assert first.total_requested == 0  # nothing has data yet: nothing is requested

    # the landing sensor's run loads the day; the dbt models of that day follow
    assert daily.execute_in_process(instance=instance, asset_selection=[raw], partition_key="2026-01-09").success
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                               evaluation_time=start + dt.timedelta(minutes=1))
    assert second.get_requested_partitions(stg) == {"2026-01-09"}
    assert second.get_requested_partitions(features) == {"2026-01-09"}
    assert second.get_num_requested(drift) == 0  # no training set yet to compare with
    assert second.get_num_requested(training) == 0

    # once that day's features (with passing dbt tests) and a training set exist, its drift report follows
    assert daily.execute_in_process(instance=instance, asset_selection=[stg, features], partition_key="2026-01-09").success
    _report(instance, "churn", "training_set")
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor,
                                              evaluation_time=start + dt.timedelta(minutes=2))
    assert third.get_requested_partitions(drift) == {"2026-01-09"}
    assert third.get_num_requested(stg) == 0  # already handled

    # a retrain (new training set) does not fan out to every day's drift report
    _report(instance, "churn", "drift_report", partition="2026-01-09", metadata={"drift_flagged": False, "drift_share": 0.0})
    _report(instance, "churn", "training_set")
    fourth = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor,
                                               evaluation_time=start + dt.timedelta(minutes=3))
    assert fourth.get_num_requested(drift) == 0

    # the weekly retrain is a schedule on the whole chain (with the cool-down), not an automation condition
    monday = dt.datetime(2026, 1, 12, 3, 5, tzinfo=dt.timezone.utc)
    weekly = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=fourth.cursor, evaluation_time=monday)
    assert weekly.get_num_requested(training) == 0
    schedule = defs.resolve_schedule_def("churn_retrain_schedule")
    assert schedule.cron_schedule == churn.retrain.cron


def test_landing_sensor_skips_days_already_loaded_from_the_same_files(churn, data_dir):
    """After the Quickstart (or a backfill) loaded the history, a sensor starting with no
    cursor must not load it all again; a changed file is still requested."""
    from mlops_assets import settings
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.landing_sensor import build_landing_sensor
    from mlops_assets.chain.resources import DuckDBWarehouse

    instance = dg.DagsterInstance.get()
    files = write_days(churn.landing.path(), day_range(D0, 2), SimulationConfig(rows_per_day=30))
    _age(files)
    raw = build_raw_asset(churn)
    for day in ("2026-01-01", "2026-01-02"):
        assert dg.materialize([raw], instance=instance, partition_key=day,
                              resources={"warehouse": DuckDBWarehouse(database=str(settings.duckdb_path()))}).success
    result, days = _tick(build_landing_sensor(churn), instance, None)
    assert days == []
    _age(write_days(churn.landing.path(), [D0], SimulationConfig(rows_per_day=31, seed=5)), 60)
    _, days = _tick(build_landing_sensor(churn), instance, result.cursor)
    assert days == ["2026-01-01"]


def _plan(files_days, cursor, last_day=dt.date(2026, 1, 31)):
    """plan_landing over fake file versions: {name: (mtime_s, {day: rows})}."""
    from pathlib import Path

    from mlops_assets.ingest.landing import LandingFile
    from mlops_assets.ingest.watch import plan_landing

    files = [LandingFile(Path(f"/l/{n}"), 10, int(m * 1e9)) for n, (m, _) in sorted(files_days.items())]
    read = lambda f: files_days[f.path.name][1]  # noqa: E731
    return plan_landing(files, cursor, dt.datetime.fromtimestamp(10_000, dt.timezone.utc), 5.0, read,
                        dt.date(2026, 1, 1), last_day)


def test_landing_plan_rebuilds_days_a_changed_or_removed_file_left():
    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    first = _plan({"a.csv": (100, {d1: 5})}, {})
    assert list(first.days) == [d1]
    # the corrected file moved its rows to day 2: day 1 must be rebuilt without them
    moved = _plan({"a.csv": (200, {d2: 5})}, first.cursor)
    assert sorted(moved.days) == [d1, d2]
    # the file is deleted: its day is rebuilt without it, and it leaves the cursor
    removed = _plan({}, moved.cursor)
    assert list(removed.days) == [d2] and removed.cursor == {}


def test_landing_plan_requests_future_days_once_they_exist():
    today, tomorrow = dt.date(2026, 1, 10), dt.date(2026, 1, 11)
    early = _plan({"b.csv": (100, {today: 3, tomorrow: 4})}, {}, last_day=today)
    assert list(early.days) == [today] and "/l/b.csv" not in early.cursor
    assert any("after the last partition" in s for s in early.skipped)
    later = _plan({"b.csv": (100, {today: 3, tomorrow: 4})}, early.cursor, last_day=tomorrow)
    assert sorted(later.days) == [today, tomorrow]  # today again has the same run key: Dagster runs it once
    assert later.run_key("churn", [today]) == early.run_key("churn", [today])
    assert "/l/b.csv" in later.cursor


def test_new_rows_from_a_range_load_count_each_day_once(churn, data_dir):
    """A range run records the whole range's metadata on every day; the count must not multiply."""
    from mlops_assets.chain.retrain import retrain_state

    instance = dg.DagsterInstance.get()
    _training_set(instance, "2026-01-22")
    per_day = {"2026-01-23": 100, "2026-01-24": 200}
    for day in per_day:
        _report(instance, "churn", "raw", partition=day,
                metadata={"labelled_rows": 300, "rows_per_day": dg.MetadataValue.json(per_day)})
    assert retrain_state(instance, churn, time.time()).new_labelled_rows == 300


def test_reloaded_days_the_model_saw_do_not_trigger_a_retrain(churn, data_dir):
    """Issue 7 #10: only labelled rows of days after the training set's window count, each day
    once at its latest load; backfills and re-deliveries of older days count nothing."""
    from mlops_assets.chain.retrain import build_retrain_sensor, retrain_state

    instance = dg.DagsterInstance.get()
    uc = churn.model_copy(update={"retrain": RetrainConfig(min_new_rows=1000, cooldown_minutes=0, on_drift=False)})
    sensor = build_retrain_sensor(uc)
    _training_set(instance, holdout_end="2026-01-19")
    old_days = [str(dt.date(2026, 1, 1) + dt.timedelta(days=i)) for i in range(19)]
    for reload in range(2):  # the whole history re-delivered twice
        for day in old_days:
            _report(instance, "churn", "raw", partition=day, metadata={"labelled_rows": 400})
    assert retrain_state(instance, uc, time.time()).new_labelled_rows == 0
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)

    _report(instance, "churn", "raw", partition="2026-01-20", metadata={"labelled_rows": 400})
    _report(instance, "churn", "raw", partition="2026-01-20", metadata={"labelled_rows": 450})  # corrected file
    assert retrain_state(instance, uc, time.time()).new_labelled_rows == 450
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
    _report(instance, "churn", "raw", partition="2026-01-21", metadata={"labelled_rows": 600})
    fired = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(fired, dg.RunRequest) and fired.tags["mlops/trigger"] == "new_rows"
    assert "1050 new labelled rows" in fired.tags["mlops/trigger_reason"]


def test_a_missing_drift_check_result_is_a_loud_error(churn, data_dir):
    from mlops_assets.chain.retrain import build_retrain_sensor

    instance = dg.DagsterInstance.get()
    _training_set(instance)
    _report(instance, "churn", "drift_report", partition="2026-01-21")  # a report without its check
    with pytest.raises(Exception, match="drift_below_threshold has no result for 2026-01-21"):
        build_retrain_sensor(churn)(dg.build_sensor_context(instance=instance))


def _chain_asset(name, fail=False):
    @dg.asset(key=["churn", name])
    def _asset():
        if fail:
            raise RuntimeError("gate failed")

    return _asset


def test_cool_down_runs_from_the_end_of_the_training_chain(churn, data_dir):
    """Issue 7 #20: the cool-down counts from when the last chain run ended (here a failed
    promotion run well after the training set), and the cron retrain obeys it too."""
    from mlops_assets.chain.retrain import build_retrain_schedule, retrain_state, schedule_decision
    from mlops_assets.chain.history import last_retrain_end

    instance = dg.DagsterInstance.get()
    uc = churn.model_copy(update={"retrain": RetrainConfig(min_new_rows=100, cooldown_minutes=0.05)})  # 3 s
    _training_set(instance)
    built = instance.fetch_materializations(dg.AssetKey(["churn", "training_set"]), limit=1).records[0].timestamp
    time.sleep(3.5)  # the training set alone is now older than the cool-down
    assert dg.materialize([_chain_asset("candidate_model")], instance=instance).success
    assert not dg.materialize([_chain_asset("champion_model", fail=True)], instance=instance,
                              raise_on_error=False).success
    ended = last_retrain_end(instance, uc)
    (failed,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert ended == instance.get_run_record_by_id(failed.run_id).end_time and ended > built + 3

    _report(instance, "churn", "raw", partition="2026-01-25", metadata={"labelled_rows": 500})
    now = ended + 1
    cooling = decide("churn", uc.retrain, retrain_state(instance, uc, now))
    assert cooling.trigger is None and "cool-down" in cooling.reason
    skipped = schedule_decision(uc, instance, "2026-01-26T03:00:00+00:00", now)
    assert skipped.trigger is None and "cool-down" in skipped.reason
    later = ended + 4
    assert decide("churn", uc.retrain, retrain_state(instance, uc, later)).trigger == "new_rows"
    due = schedule_decision(uc, instance, "2026-01-26T03:00:00+00:00", later)
    assert (due.trigger, due.run_key) == ("schedule", "schedule:churn:2026-01-26T03:00:00+00:00")

    # the schedule itself, evaluated at a tick after the cool-down
    tick = dt.datetime(2026, 1, 26, 3, tzinfo=dt.timezone.utc)
    request = build_retrain_schedule(uc.model_copy(update={"retrain": RetrainConfig(cooldown_minutes=0)}))(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(request, dg.RunRequest) and request.tags["mlops/trigger"] == "schedule"
