"""Regression tests for the landing defects of issue 7 (items 1, 2, 5, 6, 7, 8, 21), each on a
real DuckDB file with files written the way users (or attackers) would write them."""
import datetime as dt
import os
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets_tests.test_bad_landing_files import HEADER, line  # rows with every raw feature column

D1 = dt.date(2026, 1, 1)
HOSTILE = ("x\" AS VARCHAR)) FROM (SELECT 1 AS x); COPY (SELECT 'owned' AS v) TO '/tmp/owned.csv'; "
           "SELECT 0, 'a', --")


@pytest.fixture
def con(data_dir):
    c = duckdb.connect(str(data_dir / "w.duckdb"))
    yield c
    c.close()


def _load(con, uc, first: dt.date, days: int = 1, **kw):
    start = dt.datetime.combine(first, dt.time())
    return landing.load_window(con, uc, start, start + dt.timedelta(days=days), **kw)


def _count(con, where="true"):
    return con.execute(f"SELECT count(*) FROM raw.churn WHERE {where}").fetchone()[0]


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# 1. SQL from a landing file's header
def test_hostile_header_is_refused_and_runs_nothing(churn, con):
    owned = Path("/tmp/owned.csv")
    owned.unlink(missing_ok=True)
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=50))
    # The column first arrives as integers (so the raw table would type it INTEGER), then as a
    # fraction, which is where the old rounding refusal pasted the name into SQL.
    (folder / "a_2026-01-02.csv").write_text(f"customer_id,event_ts,churned,{_csv_field(HOSTILE)}\n"
                                             "C1,2026-01-02 10:00:00,1,1\n")
    (folder / "b_2026-01-03.csv").write_text(f"customer_id,event_ts,churned,{_csv_field(HOSTILE)}\n"
                                             "C2,2026-01-03 10:00:00,1,1.5\n")
    loaded = _load(con, churn, D1, days=3)
    assert not owned.exists()
    assert loaded.rows == 50 and _count(con) == 50  # the good file loads
    assert sorted(Path(p).name for p in loaded.unreadable) == ["a_2026-01-02.csv", "b_2026-01-03.csv"]
    for problem in loaded.unreadable.values():
        assert "is not a plain identifier" in problem and "COPY (SELECT" in problem
    with pytest.raises(landing.LandingFileError, match=r"b_2026-01-03\.csv: column name .* not a plain identifier"):
        landing.file_days(con, folder / "b_2026-01-03.csv", "event_ts")
    assert not owned.exists()


# 2. Symlinks out of the landing folder
def test_symlink_out_of_the_folder_is_refused_and_named(churn, con, tmp_path):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=50))
    elsewhere = write_days(tmp_path / "elsewhere", [D1 + dt.timedelta(days=1)], SimulationConfig(rows_per_day=20))[0]
    (folder / "stolen.csv").symlink_to(elsewhere)
    (folder / "alias.csv").symlink_to(folder / "churn_2026-01-01.csv")  # inside: read once, not twice
    scan = landing.scan_landing(folder, "*.csv")
    assert [f.path.name for f in scan.files] == ["churn_2026-01-01.csv"]
    assert "outside the landing folder" in scan.refused[str(folder / "stolen.csv")]
    loaded = _load(con, churn, D1, days=2)
    assert "stolen.csv" in " ".join(loaded.unreadable) and _count(con) == 50
    assert any("alias.csv" in n for n in loaded.notes)


# 5. File names read as globs
def test_glob_characters_in_file_names_read_only_that_file(churn, con):
    folder = churn.landing.path()
    write_days(folder, day_range(D1, 3), SimulationConfig(rows_per_day=40))
    star = write_days(folder, [dt.date(2026, 1, 4)], SimulationConfig(rows_per_day=10, seed=2), use_case="t")[0]
    star.rename(folder / "churn_*.csv")
    for name, n, seed in (("x[1].csv", 7, 3), ("x1.csv", 5, 4)):
        write_days(folder, [dt.date(2026, 1, 5)], SimulationConfig(rows_per_day=n, seed=seed), use_case="t")[0] \
            .rename(folder / name)
    loaded = _load(con, churn, D1, days=5)
    assert loaded.rows_per_day == {"2026-01-01": 40, "2026-01-02": 40, "2026-01-03": 40, "2026-01-04": 10,
                                   "2026-01-05": 12}
    assert con.execute("SELECT _source_file, count(*) FROM raw.churn WHERE _source_file LIKE '%x%' GROUP BY 1 "
                       "ORDER BY 1").fetchall() == [(str(folder / "x1.csv"), 5), (str(folder / "x[1].csv"), 7)]


# 6. A file still being written
def test_file_changing_while_the_window_is_read_fails_the_load(churn, con, monkeypatch):
    folder = churn.landing.path()
    (path,) = write_days(folder, [D1], SimulationConfig(rows_per_day=30))
    _load(con, churn, D1)
    write_days(folder, [D1], SimulationConfig(rows_per_day=60, seed=4))  # a new version, indexed below
    real_insert = landing.portable.insert_from

    def writer_appends_meanwhile(*a, **kw):
        real_insert(*a, **kw)
        with open(path, "a") as f:  # the writer is still at work after the load read the file
            f.write("C999,2026-01-01 23:00:00,1\n")

    monkeypatch.setattr(landing.portable, "insert_from", writer_appends_meanwhile)
    with pytest.raises(landing.LandingFileError, match=r"churn_2026-01-01\.csv: changed while being read.*nothing "
                                                       r"was written"):
        _load(con, churn, D1)
    assert _count(con) == 30  # the day as it was


def test_file_changing_while_it_is_indexed_is_named_and_not_loaded(churn, con, monkeypatch):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=30))
    real_days = landing.file_days
    growing = folder / "churn_2026-01-02.csv"
    write_days(folder, [D1 + dt.timedelta(days=1)], SimulationConfig(rows_per_day=20))

    def grows_while_read(con_, p, ts, *args):
        days = real_days(con_, p, ts, *args)
        if p.name == growing.name:
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
        return days

    monkeypatch.setattr(landing, "file_days", grows_while_read)
    loaded = _load(con, churn, D1, days=2)
    assert "changed while being read" in loaded.unreadable[str(growing)]
    assert loaded.rows == 30
    monkeypatch.setattr(landing, "file_days", real_days)
    assert _load(con, churn, D1, days=2).rows == 50  # read whole on the next load


# 7. A loaded file rewritten unreadable
def test_rewritten_unreadable_file_keeps_its_last_good_rows(churn, con, data_dir):
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.resources import DuckDBWarehouse

    folder = churn.landing.path()
    (path,) = write_days(folder, [D1], SimulationConfig(rows_per_day=40))
    write_days(folder, [D1], SimulationConfig(rows_per_day=10, seed=2), use_case="other")
    assert _load(con, churn, D1).rows == 50
    path.write_bytes(b"customer_id,event_ts,churned\n\xff\xfe garbage \x00\n")
    again = _load(con, churn, D1)
    assert again.rows == 50 and again.kept_rows == {str(path): 40}
    assert "not UTF-8" in again.unreadable[str(path)] and "kept the 40 row(s)" in again.unreadable[str(path)]
    assert _count(con, f"_source_file = '{path}'") == 40
    con.close()

    # The raw asset's check fails naming the file, and the rows stay.
    result = dg.materialize([build_raw_asset(churn)], partition_key=D1.isoformat(), raise_on_error=False,
                            instance=dg.DagsterInstance.ephemeral(),
                            resources={"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))})
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "churn_2026-01-01.csv" in check.description
    mat = result.get_asset_materialization_events()[0].materialization
    assert mat.metadata["dagster/row_count"].value == 50
    assert mat.metadata["rows_kept_from_unreadable_files"].value == 40

    with duckdb.connect(str(data_dir / "w.duckdb")) as c2:
        write_days(folder, [D1], SimulationConfig(rows_per_day=25, seed=3))  # fixed: the new version replaces it
        fixed = _load(c2, churn, D1)
        assert (fixed.rows, fixed.unreadable, fixed.kept_rows) == (35, {}, {})
        path.unlink()  # removed: its rows leave the day
        assert _load(c2, churn, D1).rows == 10


# 8. Rows outside the window
def test_rows_outside_the_partitions_are_counted_per_file(churn, con, data_dir):
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.resources import DuckDBWarehouse

    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    assert churn.first_day > dt.date(2024, 6, 1)
    (folder / "odd.csv").write_text("\n".join([
        HEADER, line("C1", "2024-06-01 10:00:00", 1), line("C2", "2099-01-01 10:00:00", 0),
        line("C3", "2099-02-01 10:00:00", 0), line("C4", "2026-01-01 12:00:00", 1)]))
    loaded = _load(con, churn, D1, last_day=dt.date(2026, 1, 31))
    assert loaded.rows == 21 and loaded.outside == {str(folder / "odd.csv"): 3}
    con.close()
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([build_raw_asset(churn)], partition_key=D1.isoformat(), instance=instance,
                            resources={"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))})
    md = result.get_asset_materialization_events()[0].materialization.metadata
    assert md["rows_outside_partitions"].value == 3 and md["files_with_rows_outside"].value == {"odd.csv": 3}
    warnings = [r.user_message for r in instance.all_logs(result.run_id) if r.level == 30]
    said = f"odd.csv: 3 row(s) dated before {churn.first_day} or after the last partition"
    assert any(said in m for m in warnings), warnings


def test_offset_timestamps_land_on_their_utc_day_in_a_range(churn, data_dir, monkeypatch):
    """Text timestamps with offsets (a column DuckDB keeps as text, e.g. mixed formats) near
    midnight: each row is on its UTC day, and a range over the file's days loads every row,
    whatever the machine's time zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    folder = churn.landing.path()
    folder.mkdir(parents=True)
    (folder / "late.csv").write_text("customer_id,event_ts,churned\n"
                                     "C1,2026-01-01 10:00:00,1\n"
                                     "C2,2026-01-01T23:30:00-05:00,0\n"   # 2026-01-02 04:30 UTC
                                     "C3,2026-01-02T00:30:00+02:00,1\n"   # 2026-01-01 22:30 UTC
                                     "C4,2026-01-02T23:59:00-01:00,1\n")  # 2026-01-03 00:59 UTC
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        days = landing.file_days(con, folder / "late.csv", "event_ts")
        assert days == {dt.date(2026, 1, 1): 2, dt.date(2026, 1, 2): 1, dt.date(2026, 1, 3): 1}
        loaded = _load(con, churn, D1, days=3)
        assert loaded.rows == 4
        assert loaded.rows_per_day == {"2026-01-01": 2, "2026-01-02": 1, "2026-01-03": 1}
        assert con.execute("SELECT customer_id FROM raw.churn WHERE event_ts = '2026-01-03 00:59:00'").fetchall() \
            == [("C4",)]


# 21. Clear errors
@pytest.mark.parametrize("content,expected", [
    (b"customer_id,event_ts,churned\nC\xe9,2026-01-02 10:00:00,1\n", r"bad\.csv: not UTF-8 \(byte 0xe9"),
    (b"", r"bad\.csv: empty file \(0 bytes\)"),
])
def test_encoding_and_empty_files_are_said_plainly(churn, con, content, expected):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    (folder / "bad.csv").write_bytes(content)
    loaded = _load(con, churn, D1, days=2)
    assert loaded.rows == 20
    ((_, problem),) = loaded.unreadable.items()
    assert re.search(expected, problem), problem


def test_text_in_an_integer_column_does_not_suggest_alter_table(churn, con):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    _load(con, churn, D1)
    (folder / "extra.csv").write_text(f"{HEADER}\n{line('C1', '2026-01-02 10:00:00', 1, tenure_months='N/A')}\n")
    with pytest.raises(landing.LandingFileError, match=r"extra\.csv: column 'tenure_months' must hold whole numbers"
                                                       r".*1 value\(s\) are not numbers \(e\.g\. 'N/A'\)") as err:
        _load(con, churn, D1 + dt.timedelta(days=1))
    assert "ALTER" not in str(err.value)


def test_extra_column_is_ignored_and_said(churn, con):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    _load(con, churn, D1)
    (folder / "extra.csv").write_text(f"{HEADER},surprise\n{line('C1', '2026-01-02 10:00:00', 1)},hello\n")
    loaded = _load(con, churn, D1 + dt.timedelta(days=1))
    assert loaded.rows == 1
    assert any("extra.csv" in n and "surprise" in n and "ignored" in n for n in loaded.notes)
    assert "surprise" not in [r[0] for r in con.execute("DESCRIBE raw.churn").fetchall()]


def test_data_files_the_pattern_leaves_out_are_reported(churn, con):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    write_days(folder, [D1 + dt.timedelta(days=1)], SimulationConfig(rows_per_day=20), fmt="parquet")
    loaded = _load(con, churn, D1, days=2)
    assert loaded.rows == 20
    assert any("churn_2026-01-02.parquet: not matched by the landing pattern '*.csv'" in n for n in loaded.notes)


def test_sensor_tick_names_refused_links_left_out_files_and_rows_outside(churn, data_dir, tmp_path):
    """Items 2, 8, 21 on the sensor path: the tick says what it did not request, and why."""
    import time

    from mlops_assets.chain.landing_sensor import build_landing_sensor

    folder = churn.landing.path()
    paths = write_days(folder, [D1], SimulationConfig(rows_per_day=20))
    paths += write_days(folder, [D1], SimulationConfig(rows_per_day=5), fmt="parquet")
    outside = write_days(tmp_path / "elsewhere", [D1], SimulationConfig(rows_per_day=5))[0]
    (folder / "stolen.csv").symlink_to(outside)
    (folder / "early.csv").write_text("customer_id,event_ts,churned\nC1,2020-01-01 10:00:00,1\n"
                                      "C2,2020-01-02 10:00:00,0\n")
    paths.append(folder / "early.csv")
    for p in paths:  # settled
        t = time.time() - 120
        os.utime(p, (t, t))
    instance = dg.DagsterInstance.ephemeral()
    result = build_landing_sensor(churn)(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in result.run_requests] == ["2026-01-01"]
    context = dg.build_sensor_context(instance=instance)
    with pytest.MonkeyPatch.context() as mp:
        warnings = []
        mp.setattr(context.log, "warning", lambda msg, *a, **k: warnings.append(msg))
        build_landing_sensor(churn)(context)
    said = " | ".join(warnings)
    assert "stolen.csv: a symbolic link to" in said and "outside the landing folder" in said
    assert "churn_2026-01-01.parquet: not matched by the landing pattern" in said
    assert "early.csv: 2 row(s) on 2 day(s) before the first partition" in said
