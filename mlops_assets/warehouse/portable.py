"""What the two warehouses do differently, behind one function each.

Connections are DuckDB connections or `postgres_store.PgConnection`s (same `execute`). Rows
that come out of DuckDB (staged landing files, frames registered in DuckDB) reach PostgreSQL by
`COPY ... FROM STDIN` in CSV, written in memory by Arrow a batch at a time: never row by row.
Every replacement of a table's window is one transaction (delete, then insert), serialized
against other writers of the same table by a transaction-level advisory lock on PostgreSQL.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.warehouse import is_postgres

COPY_BATCH_ROWS = 200_000

# DuckDB type -> PostgreSQL type, for tables created from a DuckDB relation.
PG_TYPES = {
    "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "HUGEINT": "numeric", "UTINYINT": "smallint", "USMALLINT": "integer",
    "UINTEGER": "bigint", "UBIGINT": "numeric", "UHUGEINT": "numeric", "FLOAT": "real", "DOUBLE": "double precision",
    "VARCHAR": "text", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BLOB": "bytea", "UUID": "uuid", "INTERVAL": "interval",
}
# PostgreSQL information_schema data_type -> DuckDB's name, so callers compare one vocabulary.
DUCK_TYPES = {
    "boolean": "BOOLEAN", "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "real": "FLOAT",
    "double precision": "DOUBLE", "numeric": "DECIMAL", "text": "VARCHAR", "character varying": "VARCHAR",
    "character": "VARCHAR", "date": "DATE", "time without time zone": "TIME",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "bytea": "BLOB", "uuid": "UUID", "interval": "INTERVAL",
}


def pg_type(duck_type: str) -> str:
    t = duck_type.upper()
    if t.startswith("DECIMAL"):
        return t.replace("DECIMAL", "numeric")
    if t not in PG_TYPES:
        raise TypeError(f"no PostgreSQL column type for DuckDB's {duck_type}")
    return PG_TYPES[t]


@contextmanager
def files_connection(con) -> Iterator:
    """The DuckDB connection that reads landing files and stages rows: the warehouse connection
    itself on DuckDB; on PostgreSQL a private in-memory DuckDB (the files are parsed and checked
    there exactly as on the embedded profile, then copied over)."""
    if not is_postgres(con):
        yield con
        return
    import duckdb

    mem = duckdb.connect()
    mem.execute("SET TimeZone = 'UTC'")
    try:
        yield mem
    finally:
        mem.close()


@contextmanager
def transaction(con):
    """BEGIN ... COMMIT on either warehouse; ROLLBACK on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def lock_table(con, table: str) -> None:
    """Inside a transaction: wait for other writers of `table` (PostgreSQL; DuckDB admits one
    writer at a time already). Released at COMMIT/ROLLBACK."""
    if is_postgres(con):
        from mlops_assets.warehouse.postgres_store import lock_key

        con.execute("SELECT pg_advisory_xact_lock(?)", [lock_key(table)])


def ensure(con, *statements: str) -> None:
    """Run idempotent DDL (CREATE ... IF NOT EXISTS). On PostgreSQL two sessions creating the
    same schema or table at once can still collide (a unique violation in the catalog), so the
    statements run under one advisory lock, in the caller's transaction or in their own."""
    if not is_postgres(con):
        for sql in statements:
            con.execute(sql)
        return
    from mlops_assets.warehouse.postgres_store import lock_key

    own = not con.in_transaction()
    if own:
        con.execute("BEGIN")
    try:
        con.execute("SELECT pg_advisory_xact_lock(?)", [lock_key("mlops ddl")])
        for sql in statements:
            con.execute(sql)
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise
    if own:
        con.execute("COMMIT")


def table_exists(con, name: str) -> bool:
    schema, _, table = name.rpartition(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema or ("public" if is_postgres(con) else "main"), table]).fetchone()[0])


def columns(con, name: str) -> dict[str, str]:
    """{column: DuckDB type name} of a warehouse table, in column order (empty when missing)."""
    schema, _, table = name.rpartition(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema or ("public" if is_postgres(con) else "main"), table]).fetchall()
    if is_postgres(con):
        return {c: DUCK_TYPES.get(t, t.upper()) for c, t in rows}
    return {c: t for c, t in rows}


def relation_types(files, select_sql: str, params=None) -> dict[str, str]:
    """{column: DuckDB type} of a DuckDB query, without running it."""
    return {r[0]: r[1] for r in files.execute(f"DESCRIBE {select_sql}", params).fetchall()}


def create_table(con, name: str, types: dict[str, str]) -> None:
    """CREATE TABLE IF NOT EXISTS with the given DuckDB types (mapped on PostgreSQL)."""
    schema = name.rpartition(".")[0]
    cols = ", ".join(f"{ident(c)} {pg_type(t) if is_postgres(con) else t}" for c, t in types.items())
    ensure(con, *([f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}"] if schema else []),
           f"CREATE TABLE IF NOT EXISTS {qualified(name)} ({cols})")


def delete_where(con, name: str, where: str, params) -> int:
    """DELETE FROM name WHERE ...; the number of rows deleted."""
    result = con.execute(f"DELETE FROM {qualified(name)} WHERE {where}", params)
    return int(result.rowcount) if is_postgres(con) else int(result.fetchone()[0])


def not_in(con, column_sql: str) -> str:
    """SQL true when column_sql is not in the list bound to its one `?` parameter."""
    return f"NOT ({column_sql} = ANY(?))" if is_postgres(con) else f"NOT list_contains(?, {column_sql})"


def copy_from_duckdb(con, name: str, files, select_sql: str, params=None) -> int:
    """Append the rows of a DuckDB query (run on `files`) to the PostgreSQL table `name`, matching
    columns by name (table columns the query lacks get NULL), by COPY in CSV batches. Returns rows."""
    import pyarrow.csv as pacsv

    reader = files.sql(select_sql, params=params).to_arrow_reader(COPY_BATCH_ROWS)
    cols = ", ".join(ident(f.name) for f in reader.schema)
    statement = f"COPY {qualified(name)} ({cols}) FROM STDIN WITH (FORMAT csv)"
    # Arrow quotes every string and leaves NULL unquoted-empty: PostgreSQL's CSV rule for NULL
    # versus the empty string.
    options, rows = pacsv.WriteOptions(include_header=False), 0
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, options)
            buf.seek(0)
            con.copy_csv(statement, buf)
            rows += batch.num_rows
    finally:
        reader.close()  # DuckDB refuses any other statement while the result is open
    return rows


def insert_from(con, name: str, files, select_sql: str, params=None) -> None:
    """Append a DuckDB query's rows to warehouse table `name` by column name (the table exists)."""
    if is_postgres(con):
        copy_from_duckdb(con, name, files, select_sql, params)
    else:
        con.execute(f"INSERT INTO {qualified(name)} BY NAME {select_sql}", params)


@contextmanager
def frame_in_duckdb(con, frame, name: str):
    """(DuckDB connection, relation name) holding a pandas frame: the warehouse connection on
    DuckDB, a private in-memory DuckDB on PostgreSQL."""
    with files_connection(con) as files:
        files.register(name, frame)
        try:
            yield files
        finally:
            files.unregister(name)


def replace_table(con, name: str, frame) -> None:
    """`name` becomes exactly `frame` (CREATE OR REPLACE), in one transaction."""
    view, schema = "_replace_frame", name.rpartition(".")[0]
    if schema:
        ensure(con, f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    with frame_in_duckdb(con, frame, view) as files:
        if not is_postgres(con):
            con.execute(f"CREATE OR REPLACE TABLE {qualified(name)} AS SELECT * FROM {ident(view)}")
            return
        select = f"SELECT * FROM {ident(view)}"
        types = relation_types(files, select)
        with transaction(con):
            lock_table(con, name)
            con.execute(f"DROP TABLE IF EXISTS {qualified(name)}")
            create_table(con, name, types)
            copy_from_duckdb(con, name, files, select)


def replace_window(con, name: str, frame, where: str, params, before=None, after=None) -> int:
    """Delete the rows of `name` matching `where` and insert `frame`, in one transaction (the
    table is created from the frame's columns when missing). `before(con)` and `after(con)` run
    in the same transaction, under the table's lock, before the delete and after the insert
    (what else the replacement must keep in step). Returns the rows deleted."""
    view, schema = "_window_frame", name.rpartition(".")[0]
    if schema:
        ensure(con, f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    with frame_in_duckdb(con, frame, view) as files:
        select = f"SELECT * FROM {ident(view)}"
        types = relation_types(files, select)
        with transaction(con):
            lock_table(con, name)
            create_table(con, name, types)
            if before is not None:
                before(con)
            deleted = delete_where(con, name, where, params)
            insert_from(con, name, files, select)
            if after is not None:
                after(con)
    return deleted


def pull(con, files, name: str, select_sql: str, params, types: dict[str, str]) -> None:
    """A warehouse query's rows as DuckDB temp table `name` on `files` (with the given DuckDB
    types), so that DuckDB-only SQL can work on them. On DuckDB, files is con: a plain CTAS."""
    cols = ", ".join(f"{ident(c)} {t}" for c, t in types.items())
    files.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} ({cols})")
    if not is_postgres(con):
        files.execute(f"INSERT INTO {ident(name)} BY NAME {select_sql}", params)
        return
    df = con.execute(select_sql, params).df()
    if df.empty:
        return
    files.register("_pulled", df)
    try:
        casts = ", ".join(f"CAST({ident(c)} AS {t}) AS {ident(c)}" for c, t in types.items())
        files.execute(f"INSERT INTO {ident(name)} SELECT {casts} FROM _pulled")
    finally:
        files.unregister("_pulled")
