"""The landing sensor's run carries the day's whole chain (one run from file to drift report),
and the automation conditions do not launch a second run for the same day: real sensor
evaluations on a real instance and the real definitions (dbt manifest included)."""
import datetime as dt
import os
import time

import dagster as dg
import pytest

from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D0 = dt.date(2026, 1, 1)
K = lambda *names: [dg.AssetKey(["churn", n]) for n in names]  # noqa: E731


@pytest.fixture
def defs(churn, dbt_manifest):
    from mlops_assets.definitions import build_defs

    return build_defs()


def _settled(paths):
    for p in paths:
        t = time.time() - 120
        os.utime(p, (t, t))


def _tick(defs, instance, cursor=None):
    sensor = defs.resolve_sensor_def("churn_landing_sensor")
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
    return result, {r.partition_key or r.tags["mlops/days"]: set(r.asset_selection or ()) for r in result.run_requests}


def _report(instance, name, partition=None):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["churn", name]),
                                                                partition=partition))


def test_a_landed_day_is_one_run_of_its_chain_as_far_as_its_inputs_exist(churn, defs, data_dir):
    instance = dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def("churn_landing_sensor")
    # the sensor may select every day-partitioned step of the chain, nothing of training
    (target,) = sensor.targets
    assert set(target.job_def.selection.resolve(defs.resolve_asset_graph())) == set(
        K("raw", "stg_churn", "features_churn", "batch_predictions", "drift_report", "performance_report",
          "monitoring_summary"))

    _settled(write_days(churn.landing.path(), day_range(D0, 2), SimulationConfig(rows_per_day=30)))
    first, runs = _tick(defs, instance)
    # no training set, no champion yet: load and features only (drift and scoring would fail);
    # the two days are one run over their range
    assert runs == {"2026-01-01..2026-01-02": set(K("raw", "stg_churn", "features_churn"))}
    (request,) = first.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-01-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-01-02"
    assert all(r.tags["mlops/trigger"] == "landing" for r in first.run_requests)

    # a training set and a champion exist, and 2026-01-03 already has its labels
    _report(instance, "training_set")
    _report(instance, "champion_model")
    _report(instance, "labels", partition="2026-01-03")
    _settled(write_days(churn.landing.path(), day_range(D0 + dt.timedelta(days=2), 2),
                        SimulationConfig(rows_per_day=30)))
    _, runs = _tick(defs, instance, first.cursor)
    scored = set(K("raw", "stg_churn", "features_churn", "batch_predictions", "drift_report", "monitoring_summary"))
    # the two days need different steps (only one has labels): two runs, each its own day
    assert runs == {"2026-01-03": scored | set(K("performance_report")), "2026-01-04": scored}


def test_chain_without_dbt_models_loads_raw_alone(churn):
    from mlops_assets.chain.landing_sensor import chain_for_day

    # a dbt use case whose models are not known to the sensor must not skip its features
    assert chain_for_day(churn, [], champion=True, training_set=True, labelled=True) == K("raw")


def test_automation_does_not_request_the_day_the_landing_run_built(churn, defs, data_dir):
    """Before, the landing run loaded raw and the automation sensor then requested the day's
    dbt models in a second run; a run that carries them leaves automation nothing to do."""
    instance = dg.DagsterInstance.get()
    _settled(write_days(churn.landing.path(), [dt.date(2026, 1, 9)], SimulationConfig(rows_per_day=200)))
    now = dt.datetime(2026, 1, 10, 12, tzinfo=dt.timezone.utc)
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    assert before.total_requested == 0

    _, runs = _tick(defs, instance)
    (selection,) = runs.values()
    assert selection == set(K("raw", "stg_churn", "features_churn"))  # no training set, no champion here
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=sorted(selection, key=str),
                                  partition_key="2026-01-09").success

    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor,
                                              evaluation_time=now + dt.timedelta(minutes=1))
    for asset in K("stg_churn", "features_churn", "drift_report", "batch_predictions"):
        assert after.get_num_requested(asset) == 0, asset


def test_a_quiet_tick_reads_no_file(churn, defs, data_dir, monkeypatch):
    """A tick with nothing new is a folder listing: DuckDB is opened only when a file must be read
    (every use case's sensor ticks every few seconds)."""
    import duckdb

    opened = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: opened.append(a) or real_connect(*a, **k))
    instance = dg.DagsterInstance.get()
    _settled(write_days(churn.landing.path(), day_range(D0, 1), SimulationConfig(rows_per_day=30)))
    first, runs = _tick(defs, instance)
    assert list(runs) == ["2026-01-01"] and len(opened) == 1  # the new file was read
    quiet, runs = _tick(defs, instance, first.cursor)
    assert runs == {} and len(opened) == 1  # nothing new: no connection, no file read
    assert "none new or changed" in quiet.skip_reason.skip_message
