"""Use case config loading and landing-file ingestion on a real DuckDB file."""
import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.use_cases.config import UseCaseError, load_use_case, load_use_cases

CHURN_YAML = Path(__file__).resolve().parent.parent / "mlops_assets" / "use_cases" / "churn.yaml"


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
    with pytest.raises(UseCaseError, match="already defined"):
        load_use_cases()


@pytest.fixture
def churn(data_dir):
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    return uc


def _load(con, uc):
    files = landing.list_landing_files(uc.landing.path(), uc.landing.pattern)
    return landing.load_files(con, uc, landing.pending_files(con, uc, files))


def test_load_is_incremental_and_reloads_changed_files(churn, data_dir):
    folder = churn.landing.path()
    write_days(folder, day_range(dt.date(2026, 1, 1), 3), SimulationConfig(rows_per_day=100))
    (folder / ".churn_2026-01-09.csv.tmp").write_text("half a file")  # a writer still at work
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    assert [f.rows for f in _load(con, churn)] == [100, 100, 100]
    assert _load(con, churn) == []  # nothing new
    assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 300

    # a re-delivered file with different content replaces that file's rows
    write_days(folder, [dt.date(2026, 1, 2)], SimulationConfig(rows_per_day=40, seed=9))
    (reloaded,) = _load(con, churn)
    assert reloaded.rows == 40 and reloaded.replaced_rows == 100
    assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 240
    assert con.execute("SELECT count(*) FROM raw._ingested_files").fetchone()[0] == 3


@pytest.mark.parametrize("content,message", [
    ("customer_id,event_ts,churned\nC1,2026-01-05 10:00:00,1\nC2,not-a-time,0\n", "'event_ts' must hold timestamps"),
    ("customer_id,event_ts\nC1,2026-01-05 10:00:00\n", r"missing required column\(s\) \['churned'\]"),
    ("customer_id,churned\nC1,1\n", r"missing required column\(s\) \['event_ts'\]"),
    ("customer_id,event_ts,churned\nC1,2026-01-05 10:00:00,yes\n", "'churned' must be 0 or 1"),
    ('customer_id,event_ts,churned\n"C1,2026-01-05 10:00:00,1\nC2\n', "could not be parsed"),
])
def test_bad_file_is_named_and_nothing_changes(churn, data_dir, content, message):
    folder = churn.landing.path()
    write_days(folder, day_range(dt.date(2026, 1, 1), 2), SimulationConfig(rows_per_day=50))
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    _load(con, churn)
    before = con.execute("SELECT count(*), sum(hash(customer_id)) FROM raw.churn").fetchone()

    write_days(folder, [dt.date(2026, 1, 3)], SimulationConfig(rows_per_day=50))  # a good file in the same batch
    (folder / "churn_2026-01-04.csv").write_text(content)
    with pytest.raises(landing.LandingFileError, match=message) as err:
        _load(con, churn)
    assert "churn_2026-01-04.csv" in str(err.value)
    assert con.execute("SELECT count(*), sum(hash(customer_id)) FROM raw.churn").fetchone() == before
    assert con.execute("SELECT count(*) FROM raw._ingested_files").fetchone()[0] == 2


def test_parquet_files_load(churn, data_dir):
    write_days(churn.landing.path(), [dt.date(2026, 1, 1)], SimulationConfig(rows_per_day=30), fmt="parquet")
    uc = churn.model_copy(update={"landing": churn.landing.model_copy(update={"pattern": "*.parquet"})})
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    assert [f.rows for f in _load(con, uc)] == [30]
    assert os.path.basename(con.execute("SELECT any_value(_source_file) FROM raw.churn").fetchone()[0]).endswith(".parquet")
