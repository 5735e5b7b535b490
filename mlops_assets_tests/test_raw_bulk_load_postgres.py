"""The raw load of a range on the PostgreSQL warehouse: the files are read and checked by one
DuckDB reader in memory and copied over in one COPY; a bad file is named and leaves the table
as it was (the `postgres_url` fixture: a real server)."""
import datetime as dt

import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.warehouse.postgres_store import open_connection

D1 = dt.date(2026, 1, 1)


@pytest.fixture
def pg(postgres_url):
    from mlops_assets_tests import pg_server

    url = pg_server.fresh_database(postgres_url, "bulk")
    con = open_connection(url)
    yield con
    con.close()
    pg_server.drop_database(url)


def _load(con, uc, days: int):
    start = dt.datetime.combine(D1, dt.time())
    return landing.load_window(con, uc, start, start + dt.timedelta(days=days))


def test_mixed_files_load_and_a_bad_one_leaves_the_table_as_it_was(churn, pg):
    folder = churn.landing.path()
    uc = churn.model_copy(update={"landing": churn.landing.model_copy(update={"pattern": "*"})})
    csvs = write_days(folder, day_range(D1, 2), SimulationConfig(rows_per_day=25))
    parquets = write_days(folder, day_range(D1 + dt.timedelta(days=2), 2), SimulationConfig(rows_per_day=15, seed=3),
                          fmt="parquet")
    loaded = _load(pg, uc, days=4)
    assert loaded.rows_per_day == {"2026-01-01": 25, "2026-01-02": 25, "2026-01-03": 15, "2026-01-04": 15}
    assert dict(pg.execute("SELECT _source_file, count(*) FROM raw.churn GROUP BY 1").fetchall()) == \
        {**{str(p): 25 for p in csvs}, **{str(p): 15 for p in parquets}}
    before = pg.execute("SELECT count(*), sum(churned), min(_loaded_at) FROM raw.churn").fetchone()
    bad = folder / "bad_2026-01-02.csv"
    text = csvs[1].read_text().split("\n")
    bad.write_text("\n".join([text[0], text[1].rsplit(",", 1)[0] + ",yes", ""]))
    with pytest.raises(landing.LandingFileError, match=rf"^{bad}: column 'churned' must be 0 or 1; 1 row\(s\) are not "
                                                       r"\(e\.g\. 'true' \(a yes/no or true/false value\)"):
        _load(pg, uc, days=4)
    assert pg.execute("SELECT count(*), sum(churned), min(_loaded_at) FROM raw.churn").fetchone() == before
