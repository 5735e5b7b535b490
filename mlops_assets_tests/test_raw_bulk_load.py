"""The raw load of a range reads all of the range's files with one INSERT ... SELECT (one reader
per file layout), and still names each bad file, keeps what was there, and types and names the
columns as file-by-file loading did. On a real DuckDB file; the PostgreSQL warehouse's same
path is in test_raw_bulk_load_postgres.py."""
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.warehouse import portable
from mlops_assets_tests.test_bad_landing_files import FEATURES, HEADER, header, line

D1 = dt.date(2026, 1, 1)


@pytest.fixture
def con(data_dir):
    c = duckdb.connect(str(data_dir / "w.duckdb"))
    yield c
    c.close()


def _load(con, uc, first: dt.date = D1, days: int = 1):
    start = dt.datetime.combine(first, dt.time())
    return landing.load_window(con, uc, start, start + dt.timedelta(days=days))


def _rows(con):
    return con.execute("SELECT * EXCLUDE (_loaded_at) FROM raw.churn ORDER BY ALL").fetchall()


def _per_file(con):
    return dict(con.execute("SELECT _source_file, count(*) FROM raw.churn GROUP BY 1").fetchall())


def _csv(folder: Path, name: str, day: dt.date, n: int, head: str = HEADER, **values) -> Path:
    path = folder / name
    path.write_text("\n".join([head, *(line(f"X{i}", f"{day} 10:{i:02d}:00", i % 2, **values)
                                       for i in range(n))]) + "\n")
    return path


def test_a_range_is_inserted_by_one_statement(churn, con, monkeypatch):
    folder = churn.landing.path()
    paths = write_days(folder, day_range(D1, 5), SimulationConfig(rows_per_day=40))
    calls = []
    real = portable.insert_from
    monkeypatch.setattr(portable, "insert_from", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    loaded = _load(con, churn, days=5)
    assert calls == ["raw.churn"]
    assert loaded.rows == 200 and loaded.rows_per_day == {f"2026-01-0{d}": 40 for d in range(1, 6)}
    assert _per_file(con) == {str(p): 40 for p in paths}
    assert con.execute("SELECT count(*) FROM raw.churn WHERE _loaded_at IS NULL").fetchone()[0] == 0
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw.churn)").fetchall())
    assert (types["event_ts"], types["churned"], types["tenure_months"], types["_source_file"]) == \
        ("TIMESTAMP", "INTEGER", "BIGINT", "VARCHAR")


def test_one_bad_file_among_good_ones_is_named_and_the_table_stays_as_it_was(churn, con):
    folder = churn.landing.path()
    write_days(folder, day_range(D1, 4), SimulationConfig(rows_per_day=30))
    _load(con, churn, days=4)
    before = _rows(con)
    write_days(folder, day_range(D1, 4), SimulationConfig(rows_per_day=50, seed=7))  # new versions of every day
    bad = _csv(folder, "late_2026-01-03.csv", D1 + dt.timedelta(days=2), 3)
    bad.write_text(bad.read_text().replace(",1,", ",2,", 1))  # one target value 2
    with pytest.raises(landing.LandingFileError) as err:
        _load(con, churn, days=4)
    assert str(err.value).startswith(f"{bad}: column 'churned' must be 0 or 1; 1 row(s) are not (e.g. '2')")
    assert "churn_2026" not in str(err.value)  # the good files are not blamed
    assert _rows(con) == before  # none of the new versions was written either
    bad.unlink()
    assert _load(con, churn, days=4).rows == 200


def test_every_bad_file_of_a_range_is_named_once(churn, con):
    folder = churn.landing.path()
    write_days(folder, day_range(D1, 3), SimulationConfig(rows_per_day=20))
    _load(con, churn, days=3)  # raw.churn types tenure_months as an integer
    frac = _csv(folder, "a_2026-01-02.csv", D1 + dt.timedelta(days=1), 2, tenure_months="1.5")
    text = _csv(folder, "b_2026-01-03.csv", D1 + dt.timedelta(days=2), 2, tenure_months="N/A")
    missing = folder / "c_2026-01-03.csv"
    missing.write_text("\n".join([header(drop=("region",)),
                                  *(line(f"M{i}", "2026-01-03 11:00:00", 1, drop=("region",)) for i in range(2))]) + "\n")
    with pytest.raises(landing.LandingFileError) as err:
        _load(con, churn, days=3)
    message = str(err.value)
    assert message.startswith("3 landing file(s) cannot be loaded; nothing was written")
    assert f"{frac}: column 'tenure_months' has 2 non-integer value(s) (e.g. '1.5')" in message
    assert f"{text}: column 'tenure_months' must hold whole numbers" in message and "'N/A'" in message
    assert f"{missing}: missing required column(s) ['region']" in message
    assert message.count("churn_2026") == 0
    assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 60


def test_csv_and_parquet_files_of_one_range_load_together(churn, con, monkeypatch):
    folder = churn.landing.path()
    uc = churn.model_copy(update={"landing": churn.landing.model_copy(update={"pattern": "*"})})
    csvs = write_days(folder, day_range(D1, 2), SimulationConfig(rows_per_day=25))
    parquets = write_days(folder, day_range(D1 + dt.timedelta(days=2), 2), SimulationConfig(rows_per_day=15, seed=3),
                          fmt="parquet")
    calls = []
    real = portable.insert_from
    monkeypatch.setattr(portable, "insert_from", lambda *a, **kw: calls.append(a[3]) or real(*a, **kw))
    loaded = _load(con, uc, days=4)
    assert len(calls) == 1 and "read_csv(" in calls[0] and "read_parquet(" in calls[0]
    assert loaded.rows_per_day == {"2026-01-01": 25, "2026-01-02": 25, "2026-01-03": 15, "2026-01-04": 15}
    assert _per_file(con) == {**{str(p): 25 for p in csvs}, **{str(p): 15 for p in parquets}}
    # The parquet rows are typed as the table (created from the first file, a CSV): same values.
    expected = con.execute(f"SELECT count(*) FROM read_parquet({[str(p) for p in parquets]}) "
                           "WHERE churned IN (0, 1)").fetchone()[0]
    assert con.execute("SELECT count(*) FROM raw.churn WHERE _source_file LIKE '%.parquet' AND churned IN (0, 1)"
                       ).fetchone()[0] == expected == 30


def test_extra_and_differently_cased_columns_in_a_first_load(churn, con):
    folder = churn.landing.path()
    (first,) = write_days(folder, [D1], SimulationConfig(rows_per_day=10))
    upper = ",".join(c.upper() for c in HEADER.split(","))
    up = _csv(folder, "upper_2026-01-02.csv", D1 + dt.timedelta(days=1), 3, upper)
    extra = _csv(folder, "extra_2026-01-02.csv", D1 + dt.timedelta(days=1), 2, HEADER + ",surprise")
    extra.write_text("\n".join([HEADER + ",surprise", *(line(f"E{i}", "2026-01-02 12:00:00", 0) + ",hello"
                                                          for i in range(2))]) + "\n")
    loaded = _load(con, churn, days=2)  # no raw.churn yet: the first file's columns make it
    assert loaded.rows == 15
    assert [n for n in loaded.notes if "surprise" in n] == [
        "extra_2026-01-02.csv: column(s) ['surprise'] are not in raw.churn; ignored"]
    cols = [r[0] for r in con.execute("DESCRIBE raw.churn").fetchall()]
    assert cols == [*first.read_text().split("\n", 1)[0].split(","), "_source_file", "_loaded_at"]
    assert _per_file(con) == {str(first): 10, str(up): 3, str(extra): 2}
    assert con.execute("SELECT count(*) FROM raw.churn WHERE tenure_months = ? AND _source_file <> ?",
                       [int(FEATURES["tenure_months"]), str(first)]).fetchone()[0] == 5  # upper-case columns too


def test_a_fraction_in_a_later_file_of_a_first_load_is_refused(churn, con):
    folder = churn.landing.path()
    write_days(folder, [D1], SimulationConfig(rows_per_day=10))  # tenure_months: integers
    bad = _csv(folder, "z_2026-01-02.csv", D1 + dt.timedelta(days=1), 1, tenure_months="2.5")
    with pytest.raises(landing.LandingFileError, match=rf"^{bad}: column 'tenure_months' has 1 non-integer"):
        _load(con, churn, days=2)
    assert not landing.table_exists(con, "raw.churn")  # the table of the failed load is not left behind


@pytest.mark.parametrize("task,value,expected", [
    ("regression", "abc", r"'churned' of the regression task must hold numbers; 1 row\(s\) do not \(e\.g\. 'abc'\)"),
    ("multiclass", "gold", None),
])
def test_target_checks_per_task_name_the_file(churn, con, task, value, expected):
    folder = churn.landing.path()
    uc = churn.model_copy(update={"task": task})
    write_days(folder, [D1], SimulationConfig(rows_per_day=10))
    odd = folder / "odd_2026-01-01.csv"
    odd.write_text(f"{HEADER}\n{line('O1', '2026-01-01 09:00:00', value)}\n")
    if expected is None:
        assert _load(con, uc).rows == 11
        assert con.execute("SELECT churned FROM raw.churn WHERE customer_id = 'O1'").fetchone()[0] == value
        return
    with pytest.raises(landing.LandingFileError, match=rf"^{odd}: column {expected}"):
        _load(con, uc)
