"""One event, one run: a tick's days become as few range runs as the steps they need allow; a
per-day report over a range stores each day's metadata and check under that day; a first tick on
a big folder stays bounded; days are days in the use case's zone, and an open day is not judged."""
import datetime as dt
import json
import os
import time
import warnings

import dagster as dg
import pytest

from mlops_assets.chain.landing_sensor import chain_for_day, day_is_open, judged, run_groups
from mlops_assets.chain.partitions import contiguous_ranges, day_results
from mlops_assets.simulate.churn import day_range

D0 = dt.date(2026, 1, 1)
K = lambda *names: [dg.AssetKey(["churn", n]) for n in names]  # noqa: E731


def _settled(paths):
    for p in paths:
        t = time.time() - 120
        os.utime(p, (t, t))


def test_consecutive_days_with_the_same_steps_are_one_run():
    a, b = K("raw"), K("raw", "batch_predictions")
    d = [D0 + dt.timedelta(days=i) for i in range(6)]
    chains = {d[0]: a, d[1]: a, d[2]: b, d[3]: b, d[5]: b}
    assert run_groups(chains) == [([d[0], d[1]], a), ([d[2], d[3]], b), ([d[5]], b)]
    assert contiguous_ranges([d[3], d[0], d[1], d[5]]) == [(d[0], d[1]), (d[3], d[3]), (d[5], d[5])]


P = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-10")


@dg.asset(key=["t", "report"], partitions_def=P, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("ok", asset=["t", "report"], partitions_def=P)])
def _report(context: dg.AssetExecutionContext):
    per_day = {day: ({"day": day, "n": int(day[-2:])},
                     dg.AssetCheckResult(check_name="ok", passed=day != "2026-01-03", metadata={"day": day}))
               for day in context.partition_keys}
    return day_results(context, "ok", per_day)


@dg.asset(key=["t", "summary"], deps=[_report])
def _summary():
    return dg.MaterializeResult(metadata={"built": True})


def _check_history(instance, day):
    from dagster._core.event_api import PartitionKeyFilter  # the 1.13 filter of partitioned check history

    return instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(["t", "report"]), "ok"), limit=10, partition_filter=PartitionKeyFilter(key=day))


@pytest.mark.parametrize("days", [("2026-01-02", "2026-01-04"), ("2026-01-03", "2026-01-03")])
def test_a_range_run_stores_each_days_metadata_and_check(days):
    """A range run (as a sensor's or a backfill's) with an unpartitioned asset downstream: each
    day gets its own metadata and its own check evaluation, the roll-up fails when a day failed."""
    job = dg.define_asset_job("j", selection=[_report, _summary])
    defs = dg.Definitions(assets=[_report, _summary], jobs=[job])
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("j").execute_in_process(
        instance=instance, tags={"dagster/asset_partition_range_start": days[0],
                                 "dagster/asset_partition_range_end": days[1]})
    assert result.success
    wanted = P.get_partition_keys_in_range(dg.PartitionKeyRange(*days))
    for day in wanted:
        (rec,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["t", "report"]), asset_partitions=[day]), limit=5).records
        meta = rec.asset_materialization.metadata
        assert meta["day"].value == day and meta["n"].value == int(day[-2:])
        (evaluation,) = [h.evaluation for h in _check_history(instance, day)]
        assert evaluation.passed == (day != "2026-01-03") and evaluation.metadata["day"].value == day
    assert instance.fetch_materializations(dg.AssetKey(["t", "summary"]), limit=1).records


def test_a_single_day_run_stores_its_check_under_the_day():
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([_report], partition_key="2026-01-05", instance=instance,
                          selection=[_report]).success
    (evaluation,) = [h.evaluation for h in _check_history(instance, "2026-01-05")]
    assert evaluation.passed and evaluation.metadata["day"].value == "2026-01-05"


def test_the_daily_chain_has_one_backfill_policy_and_jobs_warn_nothing(churn, dbt_manifest):
    """A UI backfill of the daily chain is one range run (no asset asks for one run per day), and
    no job mixes backfill policies (Dagster warns then)."""
    from mlops_assets.definitions import build_defs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs()
        graph = defs.resolve_asset_graph()
        for job in defs.resolve_all_job_defs():
            job.get_subset  # noqa: B018 - resolving is what warns
    assert not [w for w in caught if "BackfillPolic" in str(w.message)], [str(w.message) for w in caught]
    partitioned = [k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    # Seven daily assets per shipped use case (raw, labels, stg, features, predictions, drift, performance).
    per_use_case = {uc: sum(1 for k in partitioned if k.path[0] == uc) for uc in ("churn", "demand")}
    assert per_use_case == {"churn": 7, "demand": 7} and len(partitioned) == 14, per_use_case
    for k in partitioned:
        assert graph.get(k).backfill_policy == dg.BackfillPolicy.single_run(), k


def test_an_open_day_is_loaded_and_scored_but_not_judged(churn):
    now = dt.datetime(2026, 3, 10, 15, tzinfo=dt.timezone.utc)
    today, yesterday = dt.date(2026, 3, 10), dt.date(2026, 3, 9)
    assert day_is_open(churn, today, now) and not day_is_open(churn, yesterday, now)
    dbt = K("features_churn", "stg_churn")
    open_chain = chain_for_day(churn, dbt, champion=True, training_set=True, labelled=True,
                               judged=judged(churn, today, 10_000, now))
    assert open_chain == K("raw", "features_churn", "stg_churn", "batch_predictions", "monitoring_summary")
    closed_chain = chain_for_day(churn, dbt, champion=True, training_set=True, labelled=True,
                                 judged=judged(churn, yesterday, 5, now))
    assert K("drift_report", "performance_report")[0] in closed_chain and K("performance_report")[0] in closed_chain
    # with a minimum row count, a day still open is judged once it holds that many rows
    busy = churn.model_copy(update={"monitoring": churn.monitoring.model_copy(update={"open_day_min_rows": 100})})
    assert judged(busy, today, 100, now) and not judged(busy, today, 99, now)


def test_days_are_days_in_the_use_cases_zone(churn, tmp_path):
    """23:30 local time in Berlin is that local day, whether the file writes it plainly or with
    an offset; in UTC it would be the next or the previous day."""
    import duckdb

    from mlops_assets.ingest.landing import file_days

    path = tmp_path / "b.csv"
    path.write_text("customer_id,event_ts\n1,2026-03-01 23:30:00\n2,2026-03-01T22:30:00+00:00\n"
                    "3,2026-03-02T00:30:00+01:00\n")
    con = duckdb.connect()
    assert file_days(con, path, "event_ts", "Europe/Berlin") == {dt.date(2026, 3, 1): 2, dt.date(2026, 3, 2): 1}
    assert file_days(con, path, "event_ts", "UTC") == {dt.date(2026, 3, 1): 3}
    berlin = churn.model_copy(update={"timezone": "Europe/Berlin"})
    from mlops_assets.chain.partitions import daily_partitions

    assert daily_partitions(berlin).timezone == "Europe/Berlin"
    # an open day ends at local midnight
    assert day_is_open(berlin, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 22, 59, tzinfo=dt.timezone.utc))
    assert not day_is_open(berlin, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 23, 1, tzinfo=dt.timezone.utc))


def test_a_bad_timezone_names_the_field(churn):
    from pydantic import ValidationError

    from mlops_assets.use_cases.config import UseCase

    data = churn.model_dump()
    data["timezone"] = "Mars/Olympus"
    with pytest.raises(ValidationError, match="timezone 'Mars/Olympus' is not an IANA time zone"):
        UseCase.model_validate(data)


def test_a_first_tick_on_two_thousand_files_is_bounded(churn, dbt_manifest, data_dir):
    """2,000 files in the landing folder: the first tick reads a bounded batch well inside the
    60 s sensor timeout and requests their days; the next ticks take the rest, and in the end
    every file's days were requested exactly once."""
    from mlops_assets.definitions import build_defs

    folder = churn.landing.path()
    folder.mkdir(parents=True, exist_ok=True)
    header = "customer_id,event_ts,plan_type\n"
    for i in range(2000):
        day = D0 + dt.timedelta(days=i % 200)
        (folder / f"part_{i:04d}.csv").write_text(header + f"{i},{day.isoformat()} 10:00:00,basic\n")
    _settled(folder.glob("*.csv"))
    defs = build_defs()
    sensor = defs.resolve_sensor_def("churn_landing_sensor")
    instance = dg.DagsterInstance.get()
    cursor, requested_files, ticks = None, 0, 0
    while True:
        started = time.monotonic()
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        took = time.monotonic() - started
        assert took < 30, f"tick {ticks} took {took:.1f}s"
        new_cursor = result.cursor
        newly = len(json.loads(new_cursor)) - (len(json.loads(cursor)) if cursor else 0)
        ticks += 1
        if not result.run_requests:
            break
        assert newly <= 200
        requested_files += newly
        # no day is in two runs of one tick
        spans = [r.tags["mlops/days"].split("..") for r in result.run_requests]
        days = [d for first, *last in spans for d in day_range(dt.date.fromisoformat(first), (
            dt.date.fromisoformat(last[0]) - dt.date.fromisoformat(first)).days + 1 if last else 1)]
        assert len(days) == len(set(days))
        cursor = new_cursor
    assert requested_files == 2000 and ticks == 11


@dg.asset(key=["t", "sparse"], partitions_def=P, backfill_policy=dg.BackfillPolicy.single_run(),
          check_specs=[dg.AssetCheckSpec("ok", asset=["t", "sparse"], partitions_def=P)])
def _sparse(context: dg.AssetExecutionContext):
    # 2026-01-03 has no rows: metadata, no verdict (drift_report's rule for an empty day of a range)
    return day_results(context, "ok", {
        day: ({"rows": 0}, None) if day == "2026-01-03" else
        ({"rows": 5}, dg.AssetCheckResult(check_name="ok", passed=False, metadata={"day": day}))
        for day in context.partition_keys})


def test_a_day_of_a_range_with_nothing_to_judge_gets_no_verdict():
    from dagster._core.event_api import PartitionKeyFilter

    job = dg.define_asset_job("s", selection=[_sparse])
    defs = dg.Definitions(assets=[_sparse], jobs=[job])
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("s").execute_in_process(
        instance=instance, tags={"dagster/asset_partition_range_start": "2026-01-02",
                                 "dagster/asset_partition_range_end": "2026-01-04"})
    assert result.success
    check = dg.AssetCheckKey(dg.AssetKey(["t", "sparse"]), "ok")
    for day, verdict in (("2026-01-02", False), ("2026-01-03", None), ("2026-01-04", False)):
        history = instance.event_log_storage.get_asset_check_execution_history(
            check, limit=5, partition_filter=PartitionKeyFilter(key=day))
        completed = [h.evaluation.passed for h in history if isinstance(h.evaluation, dg.AssetCheckEvaluation)]
        assert completed == ([] if verdict is None else [verdict]), day
    (rollup,) = [e for e in result.get_asset_check_evaluations() if e.partition is None]
    assert not rollup.passed and "3 day(s), 2 judged" in rollup.description
