"""Use case config loading and landing-file ingestion on a real DuckDB file."""
import datetime as dt
import os
import re
from pathlib import Path

import duckdb
import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.use_cases.config import UseCaseError
from mlops_assets.use_cases.loader import load as load_use_case
from mlops_assets.use_cases.loader import load_use_cases
from mlops_assets_tests.test_bad_landing_files import FEATURES, HEADER, header, line  # rows with every raw feature column

CHURN_YAML = Path(__file__).resolve().parent.parent / "mlops_assets" / "defs" / "churn" / "defs.yaml"


def test_builtin_use_case_loads():
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert uc.features.dbt_model == "features_churn"
    assert len(uc.features.all) >= 12 and uc.features.categorical
    assert uc.features_table == "main.features_churn"


def test_bad_use_case_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CHURN_YAML.read_text().replace("name: churn", "name: Bad-Name"))
    with pytest.raises(UseCaseError, match=r"bad\.yaml.*lower-case"):
        load_use_case(bad)
    clash = tmp_path / "clash.yaml"
    clash.write_text(CHURN_YAML.read_text().replace("slice_columns: [plan_type, contract]", "slice_columns: [age]"))
    with pytest.raises(UseCaseError, match=r"clash\.yaml.*slice_columns"):
        load_use_case(clash)


def test_duplicate_use_case_name_is_refused(tmp_path, monkeypatch):
    (tmp_path / "again.yaml").write_text(CHURN_YAML.read_text())
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(tmp_path))
    with pytest.raises(UseCaseError, match=r"again\.yaml: use case name 'churn' is already defined in .*churn/defs\.yaml"):
        load_use_cases(strict=True)
    # the first definition stays in use; the duplicate is reported, not silently merged
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert uc.source_file == str(CHURN_YAML)


def _load(con, uc, first: dt.date, days: int = 1):
    start = dt.datetime.combine(first, dt.time())
    return landing.load_window(con, uc, start, start + dt.timedelta(days=days))


def _count(con):
    return con.execute("SELECT count(*) FROM raw.churn").fetchone()[0]


def test_window_load_replaces_its_days_and_reads_only_their_files(churn, data_dir):
    folder = churn.landing.path()
    write_days(folder, day_range(dt.date(2026, 1, 1), 3), SimulationConfig(rows_per_day=100))
    (folder / ".churn_2026-01-09.csv.tmp").write_text("half a file")  # a writer still at work
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    loaded = _load(con, churn, dt.date(2026, 1, 1), days=3)
    assert loaded.rows_per_day == {"2026-01-01": 100, "2026-01-02": 100, "2026-01-03": 100}
    assert _count(con) == 300

    again = _load(con, churn, dt.date(2026, 1, 2))  # re-loading a day replaces it
    assert (again.rows, again.replaced_rows, len(again.files)) == (100, 100, 1)
    assert _count(con) == 300

    # a re-delivered file with different content replaces that day's rows
    write_days(folder, [dt.date(2026, 1, 2)], SimulationConfig(rows_per_day=40, seed=9))
    assert _load(con, churn, dt.date(2026, 1, 2)).rows == 40
    assert _count(con) == 240
    assert con.execute("SELECT count(DISTINCT path) FROM raw._file_days").fetchone()[0] == 3

    # a day that spans two files is assembled from both
    extra = folder / "late_arrivals.csv"
    simulate = write_days(folder, [dt.date(2026, 1, 3)], SimulationConfig(rows_per_day=10, seed=3), use_case="late")
    simulate[0].rename(extra)
    assert _load(con, churn, dt.date(2026, 1, 3)).rows == 110
    assert _load(con, churn, dt.date(2026, 1, 4)).rows == 0  # no file holds that day


@pytest.mark.parametrize("content,message,day", [
    (f"{header(drop=('churned',))}\nC1,2026-01-03 10:00:00,{','.join(FEATURES.values())}\n",
     r"missing required column\(s\) \['churned'\]", 3),
    (f"{HEADER}\n{line('C1', '2026-01-03 10:00:00', 'yes')}\n", "'churned' must be 0 or 1", 3),
])
def test_bad_rows_for_the_window_fail_it_and_nothing_changes(churn, data_dir, content, message, day):
    folder = churn.landing.path()
    write_days(folder, day_range(dt.date(2026, 1, 1), 3), SimulationConfig(rows_per_day=50))
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    _load(con, churn, dt.date(2026, 1, 1), days=3)
    before = con.execute("SELECT count(*), sum(hash(customer_id)) FROM raw.churn").fetchone()

    (folder / "churn_2026-01-03_extra.csv").write_text(content)
    with pytest.raises(landing.LandingFileError, match=message) as err:
        _load(con, churn, dt.date(2026, 1, day))
    assert "churn_2026-01-03_extra.csv" in str(err.value)
    assert con.execute("SELECT count(*), sum(hash(customer_id)) FROM raw.churn").fetchone() == before
    # another day is not held up by it
    assert _load(con, churn, dt.date(2026, 1, 1)).rows == 50


@pytest.mark.parametrize("content,message", [
    ("customer_id,event_ts,churned\nC1,2026-01-05 10:00:00,1\nC2,not-a-time,0\n", "'event_ts' must hold timestamps"),
    ("customer_id,churned\nC1,1\n", r"missing required column\(s\) \['event_ts'\]"),
    ('customer_id,event_ts,churned\n"C1,2026-01-05 10:00:00,1\nC2\n', "could not be parsed"),
])
def test_unreadable_file_is_reported_and_does_not_block_other_days(churn, data_dir, content, message):
    """A file whose days cannot be known is in no day: every load names it (the raw asset's
    landing_files_readable check fails), and the days of the other files still load."""
    folder = churn.landing.path()
    write_days(folder, day_range(dt.date(2026, 1, 1), 2), SimulationConfig(rows_per_day=50))
    (folder / "churn_2026-01-05.csv").write_text(content)
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    loaded = _load(con, churn, dt.date(2026, 1, 1), days=2)
    assert loaded.rows == 100
    ((path, problem),) = loaded.unreadable.items()
    assert path.endswith("churn_2026-01-05.csv") and re.search(message, problem)
    assert _load(con, churn, dt.date(2026, 1, 5)).rows == 0


def test_parquet_files_load(churn, data_dir):
    write_days(churn.landing.path(), [dt.date(2026, 1, 1)], SimulationConfig(rows_per_day=30), fmt="parquet")
    uc = churn.model_copy(update={"landing": churn.landing.model_copy(update={"pattern": "*.parquet"})})
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    assert _load(con, uc, dt.date(2026, 1, 1)).rows == 30
    assert os.path.basename(con.execute("SELECT any_value(_source_file) FROM raw.churn").fetchone()[0]).endswith(".parquet")


def test_fractional_values_into_an_integer_column_are_refused(churn, data_dir):
    folder = churn.landing.path()
    write_days(folder, [dt.date(2026, 1, 1)], SimulationConfig(rows_per_day=20))  # tenure_months is integer
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    _load(con, churn, dt.date(2026, 1, 1))
    (folder / "extra.csv").write_text(f"{HEADER}\n{line('C1', '2026-01-02 10:00:00', 1, tenure_months='1.5')}\n")
    with pytest.raises(landing.LandingFileError, match=r"extra\.csv: column 'tenure_months' has 1 non-integer"):
        _load(con, churn, dt.date(2026, 1, 2))
    (folder / "extra.csv").write_text(f"{HEADER}\n{line('C1', '2026-01-02 10:00:00', 1, tenure_months='2.0')}\n")
    assert _load(con, churn, dt.date(2026, 1, 2)).rows == 1  # whole numbers written as 2.0 are fine
