"""`mlops-assets demo`'s pipeline (orchestrate.run_pipeline): the days it plans, what it reports,
and an honest result."""
import datetime as dt
import os

import dagster as dg
import duckdb
import pytest

from mlops_assets import orchestrate, settings
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D0 = dt.date(2026, 1, 1)
HEADER = "customer_id,event_ts,churned\n"


def _churn():
    from mlops_assets.use_cases.loader import load_use_cases

    return next(uc for uc in load_use_cases() if uc.name == "churn")


def _landing(data_dir):
    folder = data_dir / "landing" / "churn"
    write_days(folder, day_range(D0, 3), SimulationConfig(rows_per_day=20))
    (folder / "churn_far.csv").write_text(HEADER + "C1,2026-01-02 10:00:00,0\nC2,2026-01-02 11:00:00,1\n"
                                          + "".join(f"C{i},2099-03-0{1 + i % 2} 00:00:00,0\n" for i in range(5)))
    (folder / "churn_early.csv").write_text(HEADER + "".join(f"C{i},2025-06-01 08:00:00,1\n" for i in range(3)))
    (folder / "churn_no_ts.csv").write_text("customer_id,churned\nC1,1\n")
    (folder / "churn_empty.csv").write_bytes(b"")
    return folder


def test_day_listing_is_bounded_to_the_partitions_and_names_every_problem(data_dir):
    """Issue 7 #12, #14, #8: a 2099 timestamp made the plan run to 2099; one unreadable file
    stopped the listing; rows outside the partitions vanished without a word."""
    folder = _landing(data_dir)
    last = D0 + dt.timedelta(days=9)
    listing = orchestrate.data_days(_churn(), D0, last, settle_s=0)
    assert listing.days == [D0, D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=2)]
    assert listing.rows == 3 * 20 + 2
    assert set(listing.unreadable) == {str(folder / "churn_no_ts.csv"), str(folder / "churn_empty.csv")}
    assert listing.late == {str(folder / "churn_far.csv"): (5, dt.date(2099, 3, 1), dt.date(2099, 3, 2))}
    assert listing.early == {str(folder / "churn_early.csv"): (3, dt.date(2025, 6, 1), dt.date(2025, 6, 1))}

    problems = listing.problems(open_ended=True)
    assert len(problems) == 3
    assert any("churn_no_ts.csv" in p and "event_ts" in p for p in problems)
    assert any("churn_empty.csv" in p and "empty" in p for p in problems)
    assert any("churn_early.csv: 3 row(s) dated 2025-06-01..2025-06-01, before the first partition 2026-01-01" in p
               for p in problems)
    # open-ended partitions: 2099 is a day still to come, reported with its count, not an error...
    (pending,) = listing.pending(open_ended=True)
    assert "churn_far.csv: 5 row(s) dated 2099-03-01..2099-03-02, after the last partition" in pending
    # ...and an error once the use case declares its last day
    assert any("churn_far.csv: 5 row(s)" in p and "not loaded" in p for p in listing.problems(open_ended=False))


def test_partition_bounds_follow_the_use_case(data_dir):
    first, last = orchestrate.partition_bounds(_churn())
    assert first == _churn().first_day
    assert last == dt.datetime.now(dt.timezone.utc).date()  # end_offset=1: today is addressable


def test_a_file_still_being_written_is_waited_for(data_dir):
    """Issue 7 #6: the CLI path loaded 62 of 400 rows of a file being written. It now waits
    until no file changed for the settle time, and leaves out a file that keeps changing."""
    folder = data_dir / "landing" / "churn"
    (path,) = write_days(folder, [D0], SimulationConfig(rows_per_day=10))
    clock = {"t": path.stat().st_mtime + 1.0}  # the file was modified 1 s ago
    lines, slept = [], []

    def sleep(s):
        slept.append(s)
        clock["t"] += s

    scan, unsettled = orchestrate.settled_files(_churn(), 5.0, lines.append, max_wait_s=60,
                                                sleep=sleep, now=lambda: clock["t"])
    assert [f.path for f in scan.files] == [path] and unsettled == {}
    assert sum(slept) == pytest.approx(4.0, abs=0.1)
    assert "waiting for 1 file(s) modified less than 5s ago" in lines[0]

    def sleep_while_written(s):  # the writer appends every time we look away
        clock["t"] += s
        with open(path, "a") as f:
            f.write(f"C9,2026-01-01 23:00:00,{'0'}\n")
        os.utime(path, (clock["t"], clock["t"]))

    os.utime(path, (clock["t"], clock["t"]))  # the writer starts again
    scan, unsettled = orchestrate.settled_files(_churn(), 5.0, lines.append, max_wait_s=20,
                                                sleep=sleep_while_written, now=lambda: clock["t"])
    assert list(unsettled) == [str(path)]
    assert "still being modified after 20s" in unsettled[str(path)]


def test_a_file_that_changes_while_it_is_read_is_named(data_dir, monkeypatch):
    from mlops_assets.ingest import landing

    folder = data_dir / "landing" / "churn"
    good, growing = write_days(folder, [D0, D0 + dt.timedelta(days=1)], SimulationConfig(rows_per_day=10))
    read = landing.file_days

    def read_then_append(con, path, ts_col, tz="UTC"):
        days = read(con, path, ts_col, tz)
        if path == growing:  # the writer was not done: more rows arrive after we counted
            with open(path, "a") as f:
                f.write("C9,2026-01-02 23:00:00," + ",".join(["1"] * 12) + ",basic,monthly,north,card,mobile,0\n")
        return days

    monkeypatch.setattr(landing, "file_days", read_then_append)
    listing = orchestrate.data_days(_churn(), D0, D0 + dt.timedelta(days=5), settle_s=0)
    assert listing.days == [D0]
    assert "changed while being read" in listing.unreadable[str(growing)]


def _check_defs(blocking: bool):
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition("2026-01-01", end_date="2026-01-05"),
              check_specs=[dg.AssetCheckSpec("rows_positive", asset="thing", blocking=blocking)])
    def thing():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="rows_positive", passed=False, description="0 rows\nmore detail",
                                  severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN)

    return dg.Definitions(assets=[thing], jobs=[dg.define_asset_job("thing_job", selection=[thing])])


@pytest.mark.parametrize("blocking", [False, True])
def test_failed_checks_are_listed_per_day_and_a_blocking_one_fails_the_result(blocking):
    """Issue 7 #18: the main job printed "succeeded" while a check failed."""
    lines = []
    outcome = orchestrate.execute(_check_defs(blocking), dg.DagsterInstance.ephemeral(), "thing_job",
                                  log=lines.append, partition_key="2026-01-02")
    (check_line,) = outcome.failed_checks
    assert check_line.startswith("check thing:rows_positive FAILED for 2026-01-02")
    assert check_line.endswith(": 0 rows")
    assert ("ERROR, blocking" in check_line) == blocking
    assert bool(outcome) is (not blocking) and outcome.blocking_failed is blocking
    assert "succeeded" not in lines[0] or "but 1 check(s) failed" in lines[0]
    assert any(line.strip() == check_line for line in lines)


def test_default_simulation_start_ends_the_history_today():
    """Issue 7 #23: the demo's history started on a fixed 2026-01-01 whatever the date."""
    from mlops_assets.cli import default_start

    today = dt.date(2026, 11, 29)
    assert default_start(45, [], dt.date(2026, 1, 1), today) == dt.date(2026, 10, 16)  # 45 days ending today
    assert default_start(400, [], dt.date(2026, 1, 1), today) == dt.date(2026, 1, 1)  # not before the first day
    assert default_start(7, [dt.date(2026, 3, 1), dt.date(2026, 3, 4)], dt.date(2026, 1, 1), today) == dt.date(2026, 3, 5)


def test_simulate_into_an_empty_folder_ends_today(data_dir):
    from mlops_assets.cli import simulate, utc_today

    written = simulate(3, 5, None, 42, None, None)
    today = utc_today()
    assert [p.name for p in written] == [f"churn_{today - dt.timedelta(days=i)}.csv" for i in (2, 1, 0)]


@pytest.mark.integration
def test_pipeline_loads_the_good_days_names_every_bad_file_and_fails_at_the_end(data_dir, dbt_manifest):
    """Issue 7 #14 and #12 on the real path: the good days are loaded and featurized, every bad
    file is named, the 2099 rows are counted and do not stretch the range, the result is False."""
    _landing(data_dir)
    lines = []
    assert orchestrate.run_pipeline(only=["churn"], log=lines.append) is False
    text = "\n".join(lines)
    assert "churn_no_ts.csv" in text and "churn_empty.csv" in text
    assert "churn_far.csv: 5 row(s) dated 2099-03-01..2099-03-02" in text
    assert "churn_early.csv: 3 row(s)" in text
    assert "3 day(s), 2026-01-01..2026-01-03 (62 rows)" in text
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 62
        assert con.execute("SELECT count(*) FROM main.features_churn").fetchone()[0] == 62
    daily = dg.DagsterInstance.get().get_runs(dg.RunsFilter(job_name="churn_daily"))[-1]
    assert daily.tags["dagster/asset_partition_range_end"] == "2026-01-03"
    assert any(line.startswith("summary: NOT everything succeeded") for line in lines)


@pytest.mark.integration
def test_a_bad_use_case_file_is_named_and_fails_the_result(data_dir, dbt_manifest, tmp_path, monkeypatch):
    """A use-case file that does not load used to be skipped with only a log line."""
    extra = tmp_path / "use_cases"
    extra.mkdir()
    (extra / "broken.yaml").write_text("name: broken\nfirst_day: not-a-date\n")
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(extra))
    lines = []
    assert orchestrate.run_pipeline(only=[], log=lines.append) is False
    assert any(line.startswith("use case file not loaded:") and "broken.yaml" in line for line in lines), lines
    assert any("broken.yaml: NOT LOADED" in line for line in lines)


def test_rollback_of_an_unknown_use_case_names_the_files_that_failed(data_dir, tmp_path, monkeypatch):
    from mlops_assets.cli import rollback_champion

    extra = tmp_path / "use_cases"
    extra.mkdir()
    (extra / "broken.yaml").write_text("name: broken\nfirst_day: not-a-date\n")
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(extra))
    with pytest.raises(SystemExit, match=r"unknown use case 'broken'.*broken\.yaml"):
        rollback_champion("broken", None)


def test_fields_command_prints_every_field(capsys, data_dir):
    from mlops_assets.cli import main

    assert main(["fields"]) == 0
    out = capsys.readouterr().out
    assert "first_day" in out and "last_day" in out and "settle_seconds" in out


def test_the_demo_history_fills_its_partitions_from_the_first_day_to_today():
    """Issue 7 #23: 45 days ending today under partitions from 2026-01-01 left ~290 empty days
    in the UI; the demo now writes every day from the use case's first day to today."""
    from mlops_assets.cli import default_start, demo_days

    first, today = dt.date(2026, 1, 1), dt.date(2026, 11, 29)
    days = demo_days(first, None, today)
    assert days == 333
    assert default_start(days, [], first, today) == first  # starts on the first partition, ends today
    assert demo_days(first, dt.date(2026, 11, 20), today) == 10  # an explicit --start
    assert demo_days(first, None, first) == 1
