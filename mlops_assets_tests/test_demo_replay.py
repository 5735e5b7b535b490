"""`mlops-assets demo` tells the story (issue 15 #9): after the history it replays the last days
as events through the sensors the daemon evaluates (a day lands and is scored, labels arrive 7
days later, performance appears, a retrain fires), and the terminal shows one line per step and
day, not Dagster's DEBUG stream."""
import datetime as dt

import dagster as dg
import pytest

from mlops_assets import cli, orchestrate

pytestmark = pytest.mark.integration


def test_demo_plan_ends_the_replay_yesterday():
    start, days, replayed = cli.demo_plan(dt.date(2026, 1, 1), dt.date(2026, 12, 5), 14)
    assert replayed[0] == dt.date(2026, 11, 21) and replayed[-1] == dt.date(2026, 12, 4) and len(replayed) == 14
    assert start == dt.date(2026, 1, 1) and start + dt.timedelta(days=days) == replayed[0]
    start, days, replayed = cli.demo_plan(dt.date(2026, 1, 1), dt.date(2026, 12, 5), 4, days=30)
    assert days == 30 and start + dt.timedelta(days=30) == replayed[0] and len(replayed) == 4


def test_request_days_reads_a_key_or_a_range():
    assert orchestrate.request_days(dg.RunRequest(partition_key="2026-01-02")) == [dt.date(2026, 1, 2)]
    ranged = dg.RunRequest(tags={orchestrate.RANGE_START: "2026-01-02", orchestrate.RANGE_END: "2026-01-04"})
    assert orchestrate.request_days(ranged) == [dt.date(2026, 1, d) for d in (2, 3, 4)]


def _days_of(run) -> set[str]:
    if run.tags.get("dagster/partition"):
        return {run.tags["dagster/partition"]}
    lo, hi = run.tags.get(orchestrate.RANGE_START), run.tags.get(orchestrate.RANGE_END)
    if not lo:
        return set()
    lo_d, hi_d = dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)
    return {(lo_d + dt.timedelta(days=i)).isoformat() for i in range((hi_d - lo_d).days + 1)}


def test_demo_replays_days_through_the_sensors(data_dir, dbt_manifest, capfd):
    from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT, PERFORMANCE, SUMMARY, key
    from mlops_assets.use_cases.loader import get_use_case

    n = 4
    _, _, replayed = cli.demo_plan(dt.date(2026, 1, 1), cli.utc_today(), n, days=30)
    # The relation changes on the first history day scored for the replay: the labels arriving
    # on the replay's first three days are all of drifted days, so performance falls at once.
    concept = replayed[0] - dt.timedelta(days=7)
    code = cli.main(["demo", "--use-case", "churn", "--days", "30", "--rows-per-day", "150", "--replay-days", str(n),
                     "--concept-drift-from", concept.isoformat(),
                     # full strength: in 4 replayed days of 150 rows, half strength's noisier
                     # performance need not fail 3 days in a row (the full demo has 14 days)
                     "--concept-drift-strength", "1"])
    out = capfd.readouterr()
    terminal = out.out + out.err
    assert code == 0, terminal[-3000:]
    assert "DEBUG" not in terminal and " - dagster - " not in terminal  # Dagster's stream is in the log file
    days = [d.isoformat() for d in replayed]
    for d in days:
        assert f"[demo] {d} landed 150 rows -> scored by v" in terminal, terminal[-3000:]
    label_days = [(r - dt.timedelta(days=7)).isoformat() for r in replayed]
    for d in label_days:
        assert f"[demo] labels for {d} -> " in terminal, terminal[-3000:]
    assert "[demo] retrain fired (" in terminal, terminal[-3000:]
    log = cli.demo_log_path()
    assert str(log) in terminal and "DEBUG" in log.read_text()

    uc = get_use_case("churn")
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    landing = [r for r in runs if r.tags.get("dagster/sensor_name") == "churn_landing_sensor"]
    assert set().union(*(_days_of(r) for r in landing)) == set(days)
    labels = [r for r in runs if r.tags.get("dagster/sensor_name") == "churn_label_sensor"]
    assert set().union(*(_days_of(r) for r in labels)) >= set(label_days)
    retrains = [r for r in runs if r.tags.get("dagster/sensor_name") == "churn_retrain_sensor"]
    assert retrains and all(r.tags.get("mlops/trigger") in ("drift", "performance", "new_rows") for r in retrains)
    assert all(r.job_name == "churn_training" for r in retrains)

    for asset in (BATCH_PREDICTIONS, DRIFT):
        assert set(days) <= set(instance.get_materialized_partitions(key(uc, asset))), asset
    perf = set(instance.get_materialized_partitions(key(uc, PERFORMANCE)))
    assert set(label_days) <= perf
    summary = instance.fetch_materializations(key(uc, SUMMARY), limit=1).records[0]
    table = summary.asset_materialization.metadata["days"]
    summarised = {r.data["day"] for r in table.records}
    assert set(days) | set(label_days) <= summarised
