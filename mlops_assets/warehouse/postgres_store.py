"""The warehouse on PostgreSQL: a Dagster resource with DuckDBWarehouse's interface, and a
connection adapter speaking DuckDB's calling convention (`?` placeholders, `.df()`).

Locking: PostgreSQL does it. Readers and writers run concurrently (MVCC); a partition is
replaced in one transaction; writers of the same table are serialized for the length of their
transaction by an advisory lock (`portable.lock_table`). `write_lock()` (held around a whole
`dbt build`) is a session advisory lock on the warehouse: dbt's incremental models delete and
insert a window and create their tables on the first run, and two builds doing that at once
would race on the CREATE; it waits up to `lock_timeout_s`, naming for whom.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

DBT_LOCK = "mlops dbt build"
NUMBER_OIDS = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TIMESTAMP_OIDS = {1114}  # timestamp without time zone (the warehouse's timestamps are naive UTC)


def lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key for a name (Python's hash() varies per process)."""
    return zlib.crc32(name.encode())


def to_pyformat(sql: str) -> str:
    """DuckDB's `?` placeholders as psycopg2's `%s`, and literal `%` doubled. Text inside quotes
    (string literals, quoted identifiers) and comments is left alone."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote inside
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1].replace("%", "%%"))
            i = j + 1
        elif sql.startswith("--", i) or sql.startswith("/*", i):  # a comment: its `?` is text
            end = sql.find("\n", i) if c == "-" else sql.find("*/", i + 2)
            j = n if end < 0 else (end if c == "-" else end + 2)
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class PgResult:
    """A finished statement, read like a DuckDB result."""

    def __init__(self, cursor):
        self._cur = cursor

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def description(self):
        return self._cur.description

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self):
        return self._cur.fetchall()

    def df(self):
        """The rows as a pandas DataFrame with DuckDB's dtypes for our columns: numbers as
        int64/float64 (NULL -> NaN), timestamps as datetime64."""
        import pandas as pd

        desc = self._cur.description
        df = pd.DataFrame.from_records(self._cur.fetchall(), columns=[d.name for d in desc], coerce_float=True)
        for i, d in enumerate(desc):  # by the column's type, so an all-NULL column is typed too
            col = df.iloc[:, i]
            if d.type_code in NUMBER_OIDS and col.dtype == object:
                df.isetitem(i, pd.to_numeric(col).astype("float64"))
            elif d.type_code in TIMESTAMP_OIDS and col.dtype == object:
                df.isetitem(i, pd.to_datetime(col))
        return df


class PgConnection:
    """A psycopg2 connection in autocommit mode, used like a DuckDB connection: statements run
    on their own unless the caller opens a transaction (`BEGIN TRANSACTION` ... `COMMIT`)."""

    dialect = "postgres"

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, params=None) -> PgResult:
        cur = self.raw.cursor()
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(to_pyformat(sql), list(params))
        return PgResult(cur)

    def executemany(self, sql: str, rows) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(to_pyformat(sql), [list(r) for r in rows])

    def in_transaction(self) -> bool:
        import psycopg2.extensions as ext

        return self.raw.get_transaction_status() != ext.TRANSACTION_STATUS_IDLE

    def copy_csv(self, statement: str, stream) -> None:
        """`COPY ... FROM STDIN` with the CSV bytes of `stream`."""
        with self.raw.cursor() as cur:
            cur.copy_expert(statement, stream)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_connection(url: str, read_only: bool = False) -> PgConnection:
    """A session in UTC (now() and timestamp casts as on DuckDB), NUMERIC read as float (pandas
    and scikit-learn want numbers, not Decimals), read-only when asked (enforced by the server)."""
    import psycopg2
    import psycopg2.extensions as ext

    options = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    raw = psycopg2.connect(url, options=options, application_name="mlops_assets")
    raw.autocommit = True
    as_float = ext.new_type(ext.DECIMAL.values, "MLOPS_DEC2FLOAT", lambda v, cur: None if v is None else float(v))
    ext.register_type(as_float, raw)
    return PgConnection(raw)


def display(url: str) -> str:
    from mlops_assets import settings

    return settings.display_uri(url)


class PostgresWarehouse(dg.ConfigurableResource):
    """The warehouse in a PostgreSQL database (`url`: postgresql://user:password@host:port/db).
    Same methods as DuckDBWarehouse: `connect(read_only=...)` and `write_lock(holder)`."""

    url: str = Field(description="postgresql:// URL of the warehouse database (MLOPS_WAREHOUSE_URL).")
    lock_timeout_s: float = Field(default=900.0, description="How long write_lock() waits for another dbt build.")

    @property
    def path(self) -> str:
        """Where the warehouse is, for messages (the password hidden)."""
        return display(self.url)

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's `postgres` target reads (dbt_project/profiles.yml)."""
        from mlops_assets import settings

        return settings.warehouse_pg_env(self.url)

    @contextmanager
    def connect(self, read_only: bool = False, holder: str | None = None) -> Iterator[PgConnection]:
        import psycopg2

        try:
            con = open_connection(self.url, read_only=read_only)
        except psycopg2.OperationalError as exc:
            raise ConnectionError(f"cannot connect to the warehouse {self.path}: "
                                  f"{str(exc).strip().splitlines()[0]}") from exc
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def get_connection(self):
        with self.connect() as con:
            yield con

    @contextmanager
    def write_lock(self, holder: str | None = None):
        """Session advisory lock for a whole `dbt build` (see the module docstring)."""
        log = dg.get_dagster_logger().info
        with self.connect() as con:
            key = lock_key(DBT_LOCK)
            deadline, said, delay = time.monotonic() + self.lock_timeout_s, False, 0.1
            while not con.execute("SELECT pg_try_advisory_lock(?)", [key]).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another dbt build held the warehouse {self.path} for more than "
                                       f"{self.lock_timeout_s:.0f}s; {holder or 'this build'} gave up")
                if not said:
                    log(f"waiting for another dbt build on {self.path} to finish ({holder or 'this build'})")
                    said = True
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            try:
                yield
            finally:
                con.execute("SELECT pg_advisory_unlock(?)", [key])
