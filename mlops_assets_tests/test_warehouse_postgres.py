"""The warehouse's PostgreSQL adapter against a real server (the `postgres_url` fixture): COPY
writes exactly what DuckDB staged (NULL vs empty text, quotes, commas, newlines, odd names),
a window replacement that fails leaves the table as it was, and landing files and label files
load into PostgreSQL with the same results as into DuckDB."""
import datetime as dt

import duckdb
import pandas as pd
import pytest

from mlops_assets.ingest import labels, landing
from mlops_assets.warehouse.sql import qualified
from mlops_assets.warehouse import portable
from mlops_assets.warehouse.postgres_store import PostgresWarehouse, open_connection, to_pyformat
from mlops_assets_tests.test_labels import _write

D1 = dt.date(2026, 1, 1)
HEADER = "customer_id,event_ts,churned"


def test_placeholders_become_pyformat_outside_quotes():
    assert to_pyformat("SELECT ? WHERE a = ?") == "SELECT %s WHERE a = %s"
    # a ? inside a literal or a quoted identifier is text; % is doubled for psycopg2 everywhere
    assert to_pyformat("""SELECT '?%', "we""ird?" FROM t WHERE x LIKE 'a%' AND y = ?""") == \
        """SELECT '?%%', "we""ird?" FROM t WHERE x LIKE 'a%%' AND y = %s"""
    assert to_pyformat("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"


def test_placeholders_in_comments_stay_text():
    # psycopg2 would count a converted `?` in a comment as a parameter ("not all arguments converted")
    assert to_pyformat("SELECT ? -- why? 5%\nFROM t /* or ? */ WHERE b = ?") == \
        "SELECT %s -- why? 5%%\nFROM t /* or ? */ WHERE b = %s"
    assert to_pyformat("SELECT ? -- trailing ?") == "SELECT %s -- trailing ?"
    assert to_pyformat("SELECT 1 - ?, 2 / ?") == "SELECT 1 - %s, 2 / %s"  # not comments


@pytest.fixture
def pg_db(postgres_url):
    from mlops_assets_tests import pg_server

    url = pg_server.fresh_database(postgres_url, "wh")
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def pg(pg_db):
    con = open_connection(pg_db)
    yield con
    con.close()


def test_copy_writes_exactly_the_rows_duckdb_staged_under_an_odd_table_name(pg):
    mem = duckdb.connect()
    select = """SELECT * FROM (VALUES
        (1, 'plain', 1.5, TIMESTAMP '2026-01-01 10:00:00.123456', true),
        (2, '', NULL, TIMESTAMP '2026-01-01 11:00:00', false),
        (3, NULL, -0.25, NULL, NULL),
        (4, 'comma, "quote" and
newline ünïcode \\N', 1e-300, TIMESTAMP '2026-01-02 00:00:00', true)) AS t(id, txt, x, ts, flag)"""
    table = 'odd schema.we"ird table'
    portable.create_table(pg, table, portable.relation_types(mem, select))
    assert portable.copy_from_duckdb(pg, table, mem, select) == 4
    got = pg.execute(f"SELECT id, txt, x, ts, flag FROM {qualified(table)} ORDER BY id").fetchall()
    assert got == mem.execute(f"{select} ORDER BY id").fetchall()
    assert got[1][1] == "" and got[2][1] is None  # the empty string stays apart from NULL
    assert portable.columns(pg, table) == {"id": "INTEGER", "txt": "VARCHAR", "x": "DOUBLE", "ts": "TIMESTAMP",
                                           "flag": "BOOLEAN"}


def test_a_failed_window_replacement_leaves_the_table_as_it_was(pg):
    table, day = "predictions.t", dt.datetime(2026, 1, 1)
    good = pd.DataFrame({"id": [1, 2], "ts": [day, day + dt.timedelta(hours=1)], "score": [0.1, 0.2]})
    where, window = "ts >= ? AND ts < ?", [day, day + dt.timedelta(days=1)]
    assert portable.replace_window(pg, table, good, where, window) == 0
    assert portable.replace_window(pg, table, good, where, window) == 2  # replaced, not doubled
    before = pg.execute(f"SELECT * FROM {qualified(table)} ORDER BY id").fetchall()
    bad = good.assign(score=["0.3", "not a number"])  # COPY fails after the DELETE ran
    with pytest.raises(Exception, match="not a number"):
        portable.replace_window(pg, table, bad, where, window)
    assert pg.execute(f"SELECT * FROM {qualified(table)} ORDER BY id").fetchall() == before


def test_read_only_connections_are_refused_writes(pg_db):
    wh = PostgresWarehouse(url=pg_db)
    with wh.connect(read_only=True) as con:
        with pytest.raises(Exception, match="read-only"):
            con.execute("CREATE TABLE t (a int)")
    assert wh.dbt_env()["MLOPS_WAREHOUSE_PG_DBNAME"] == pg_db.rsplit("/", 1)[1]


def test_df_has_duckdbs_dtypes(pg):
    df = pg.execute("SELECT 1::bigint AS i, NULL::int AS n, 2.5::numeric AS d, "
                    "TIMESTAMP '2026-01-01 10:00:00' AS ts, 'x' AS s").df()
    assert [str(t) for t in df.dtypes] == ["int64", "float64", "float64", "datetime64[ns]", "object"]


# --- landing and label files: the same results on both warehouses ---------------------------------


@pytest.fixture
def both(data_dir, pg):
    duck = duckdb.connect(str(data_dir / "w.duckdb"))
    yield {"duckdb": duck, "postgres": pg}
    duck.close()


def _window(day=D1, days=1):
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=days)


def test_landing_and_label_loads_agree_between_duckdb_and_postgres(churn, both):
    _write(churn.landing.path() / "rows.csv", HEADER + "\n" + "\n".join([
        "C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,", "C3,2026-01-01T23:30:00+02:00,",
        "C4,2026-01-01 13:00:00,0", "C5,2026-01-02 09:00:00,1"]) + "\n")
    _write(churn.labels.path() / "l1.csv", HEADER + "\n" + "\n".join([
        "C2,2026-01-01 11:00:00,1", "C4,2026-01-01 13:00:00,1", "C9,2026-01-01 09:00:00,0"]) + "\n")
    results = {}
    for name, con in both.items():
        first = landing.load_window(con, churn, *_window(days=2))
        again = landing.load_window(con, churn, *_window(days=2))  # re-loading replaces, never doubles
        load = labels.load_labels_window(con, churn, *_window(days=2))
        raw = con.execute("SELECT customer_id, event_ts, churned, _source_file FROM raw.churn "
                          "ORDER BY event_ts").fetchall()
        out = labels.outcomes(con, churn, D1, D1 + dt.timedelta(days=2))
        results[name] = (first.rows_per_day, first.labelled_per_day, again.replaced_rows, raw,
                         (load.rows, load.new, load.changed, load.without_rows, load.overriding_raw,
                          load.without_rows_examples, load.coverage),
                         sorted((r.customer_id, r.label, r.label_source) for r in out.itertuples()))
    assert results["postgres"] == results["duckdb"]
    assert results["postgres"][0] == {"2026-01-01": 4, "2026-01-02": 1}  # 23:30+02:00 is 21:30 UTC on the 1st
    assert results["postgres"][2] == 5


def test_a_bad_file_is_named_the_same_way_and_nothing_is_written_to_postgres(churn, pg):
    _write(churn.landing.path() / "rows.csv", HEADER + "\nC1,2026-01-01 10:00:00,1\n")
    landing.load_window(pg, churn, *_window())
    _write(churn.landing.path() / "more.csv", HEADER + "\nC2,2026-01-01 11:00:00,yes\n")
    with pytest.raises(landing.LandingFileError, match="more.csv: column 'churned' must be 0 or 1"):
        landing.load_window(pg, churn, *_window())
    assert pg.execute("SELECT customer_id FROM raw.churn").fetchall() == [("C1",)]


def test_concurrent_loads_of_different_days_both_succeed_on_postgres(churn, pg_db):
    """No single-writer queue on PostgreSQL: two runs loading different days at once (both
    indexing the same new files, both creating the raw tables) succeed, nothing lost or doubled."""
    from concurrent.futures import ThreadPoolExecutor

    lines = [f"C{i},2026-01-0{1 + i % 2} {10 + i % 10}:00:00,{i % 2}" for i in range(40)]
    _write(churn.landing.path() / "a.csv", HEADER + "\n" + "\n".join(lines[:20]) + "\n")
    _write(churn.landing.path() / "b.csv", HEADER + "\n" + "\n".join(lines[20:]) + "\n")

    def load(day):
        con = open_connection(pg_db)
        try:
            return landing.load_window(con, churn, *_window(day)).rows_per_day
        finally:
            con.close()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(load, [D1, D1 + dt.timedelta(days=1)]))
    assert results == [{"2026-01-01": 20}, {"2026-01-02": 20}]
    con = open_connection(pg_db)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT customer_id) FROM raw.churn").fetchone() == (40, 40)
        assert con.execute("SELECT count(*) FROM raw._file_days").fetchone()[0] == 4  # 2 files x 2 days
    finally:
        con.close()


def test_the_profile_selects_the_warehouse(data_dir, monkeypatch):
    from mlops_assets import settings
    from mlops_assets.chain.resources import DuckDBWarehouse, shared_resources

    monkeypatch.delenv(settings.PROFILE_ENV, raising=False)
    assert type(shared_resources()["warehouse"]) is DuckDBWarehouse
    monkeypatch.setenv(settings.PROFILE_ENV, "shared")
    monkeypatch.setenv(settings.POSTGRES_URL_ENV, "postgresql://team:secret@db.example:5432")
    wh = shared_resources()["warehouse"]
    assert type(wh) is PostgresWarehouse
    assert "secret" not in repr(wh)  # the URL is read from its variable when a run starts


def test_dbt_builds_queue_on_the_advisory_write_lock(pg_db):
    holder = PostgresWarehouse(url=pg_db)
    waiter = PostgresWarehouse(url=pg_db, lock_timeout_s=0.5)
    with holder.write_lock("first build"):
        with pytest.raises(TimeoutError, match="another dbt build held the warehouse .* second build gave up"):
            with waiter.write_lock("second build"):
                pass
    with waiter.write_lock("second build"):  # free again once the first build is over
        pass
