"""Loading landing-zone batch files into DuckDB, one time window (day partition) at a time.

A partition holds the rows whose own timestamp falls on that day, whichever file brought them.
The file index (raw._file_days) records, per file fingerprint, how many rows it holds for each
day, so loading a day reads only the files that hold that day: the cost of a new day does not
grow with the history. Only files that are new or changed since they were indexed are read.

Before anything is written, the window's rows are validated (timestamp parses, binary target,
required columns). The window is then replaced in one transaction: re-loading a day replaces
it, never duplicates it, and a bad file leaves the warehouse exactly as it was.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_assets.use_cases.config import UseCase

INDEX = "raw._file_days"
TMP_PREFIXES = (".", "_", "~")
TMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


class LandingFileError(ValueError):
    """A batch file that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WindowLoad:
    rows: int
    replaced_rows: int
    files: tuple[str, ...]
    rows_per_day: dict[str, int]
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> problem, files no day can use
    fingerprints: tuple[str, ...] = ()  # "path@size:mtime_ns" of the files read, as the sensor sees them


def fingerprint(f: LandingFile) -> str:
    """Identity of a file version: path, size and modification time."""
    return f"{f.path}@{f.size}:{f.mtime_ns}"


def in_utc(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Partitions are UTC days: casting an offset-bearing timestamp to a plain one must give UTC,
    not the machine's local time (DuckDB uses the session time zone)."""
    con.execute("SET TimeZone = 'UTC'")
    return con


def is_candidate_name(name: str) -> bool:
    """Hidden and temporary names are skipped: writers are expected to write under such a name
    and rename the file when it is complete."""
    return not name.startswith(TMP_PREFIXES) and not name.endswith(TMP_SUFFIXES)


def list_landing_files(folder: Path, pattern: str) -> list[LandingFile]:
    if not folder.is_dir():
        return []
    files = []
    for p in sorted(folder.glob(pattern)):
        if not is_candidate_name(p.name):
            continue
        try:
            st = p.stat()
        except FileNotFoundError:  # removed or renamed since the listing: the next look sees it
            continue
        if p.is_file():
            files.append(LandingFile(p.resolve(), st.st_size, st.st_mtime_ns))
    return files


def reader_sql(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # Explicit delimiter and quote: auto-detection would "succeed" on a broken file by
        # guessing another dialect and reading one wide column.
        return f"read_csv('{quoted}', header = true, delim = ',', quote = '\"', auto_detect = true, sample_size = -1)"
    if suffix == ".parquet":
        return f"read_parquet('{quoted}')"
    raise LandingFileError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")


def file_days(con: duckdb.DuckDBPyConnection, path: Path, ts_col: str) -> dict[dt.date, int]:
    """Rows per calendar day of the file's timestamp column. Raises LandingFileError when the
    file does not parse, lacks the column, or has timestamps that are empty or do not parse:
    such rows could not be placed in any day and would otherwise be lost silently."""
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader_sql(path)}").fetchall()]
    except duckdb.Error as exc:
        raise LandingFileError(f"{path}: could not be parsed: {str(exc).splitlines()[0]}") from exc
    if ts_col not in cols:
        raise LandingFileError(f"{path}: missing required column(s) [{ts_col!r}]; the file has {cols}")
    try:
        rows = con.execute(
            f"""SELECT CAST(TRY_CAST("{ts_col}" AS TIMESTAMP) AS DATE) AS day, count(*),
                       min(CASE WHEN TRY_CAST("{ts_col}" AS TIMESTAMP) IS NULL THEN coalesce(CAST("{ts_col}" AS VARCHAR), '<empty>') END)
                FROM {reader_sql(path)} GROUP BY 1"""
        ).fetchall()
    except duckdb.Error as exc:
        raise LandingFileError(f"{path}: could not be parsed: {str(exc).splitlines()[0]}") from exc
    bad = [(n, example) for day, n, example in rows if day is None]
    if bad:
        n, example = bad[0]
        raise LandingFileError(f"{path}: column {ts_col!r} must hold timestamps; {n} value(s) are empty or "
                               f"do not parse (e.g. {example!r})")
    return {day: int(n) for day, n, _ in rows}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {INDEX} (
            use_case VARCHAR, path VARCHAR, size BIGINT, mtime_ns BIGINT, day DATE, rows BIGINT,
            indexed_at TIMESTAMP, PRIMARY KEY (use_case, path, day))"""
    )


def refresh_index(con: duckdb.DuckDBPyConnection, uc: UseCase, files: list[LandingFile],
                  log=None) -> dict[str, str]:
    """Bring the file index up to date: read new and changed files (by size and mtime), forget
    vanished ones. A file that cannot be read is left out of the index (and so out of every
    day) and returned with its problem, so that one bad file does not stop other days loading;
    the caller reports it. Returns {path: problem} of unreadable files."""
    ensure_tables(con)
    known = {(p, s, m) for p, s, m in con.execute(
        f"SELECT DISTINCT path, size, mtime_ns FROM {INDEX} WHERE use_case = ?", [uc.name]).fetchall()}
    present = {str(f.path) for f in files}
    changed = [f for f in files if (str(f.path), f.size, f.mtime_ns) not in known]
    days_by_file, unreadable = {}, {}
    for f in changed:  # all are read before anything is written
        try:
            days_by_file[f] = file_days(con, f.path, uc.timestamp_column)
        except LandingFileError as exc:
            unreadable[str(f.path)] = str(exc)
    con.execute("BEGIN TRANSACTION")
    try:
        for path in {p for p, _, _ in known} - present:
            con.execute(f"DELETE FROM {INDEX} WHERE use_case = ? AND path = ?", [uc.name, path])
        for path in unreadable:  # an older readable version of it must not stay in the index
            con.execute(f"DELETE FROM {INDEX} WHERE use_case = ? AND path = ?", [uc.name, path])
        for f, days in days_by_file.items():
            con.execute(f"DELETE FROM {INDEX} WHERE use_case = ? AND path = ?", [uc.name, str(f.path)])
            if days:
                con.executemany(
                    f"INSERT INTO {INDEX} VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [[uc.name, str(f.path), f.size, f.mtime_ns, day, n] for day, n in days.items()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if log and days_by_file:
        log(f"indexed {len(days_by_file)} new or changed file(s): {[f.path.name for f in days_by_file]}")
    return unreadable


def files_for_window(con: duckdb.DuckDBPyConnection, uc: UseCase, start: dt.datetime, end: dt.datetime) -> list[Path]:
    rows = con.execute(
        f"SELECT DISTINCT path FROM {INDEX} WHERE use_case = ? AND day >= CAST(? AS DATE) AND day < CAST(? AS DATE) ORDER BY path",
        [uc.name, start, end]).fetchall()
    return [Path(r[0]) for r in rows]


def required_raw_columns(uc: UseCase) -> list[str]:
    """Columns every raw file must carry: the keys and the target, and, when no dbt model sits
    in between, the features too (a dbt model may derive features in SQL)."""
    keys = [uc.entity_column, uc.timestamp_column, uc.target_column]
    return keys if uc.features.dbt_model else keys + uc.features.all


def stage_window(con: duckdb.DuckDBPyConnection, uc: UseCase, path: Path, staging: str,
                 start: dt.datetime, end: dt.datetime) -> int:
    """The file's rows inside [start, end) in a temp table, validated. Raises LandingFileError
    naming the file and what is wrong; writes nothing outside the temp table."""
    ts, target = uc.timestamp_column, uc.target_column
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {staging} AS SELECT * FROM {reader_sql(path)}
                WHERE TRY_CAST("{ts}" AS TIMESTAMP) >= ? AND TRY_CAST("{ts}" AS TIMESTAMP) < ?""", [start, end])
    except duckdb.Error as exc:
        raise LandingFileError(f"{path}: could not be parsed: {str(exc).splitlines()[0]}") from exc
    cols = [r[0] for r in con.execute(f"DESCRIBE {staging}").fetchall()]
    missing = [c for c in required_raw_columns(uc) if c not in cols]
    if missing:
        raise LandingFileError(f"{path}: missing required column(s) {missing}; the file has {cols}")
    # Through VARCHAR so that booleans ("yes", "true") and fractions are not quietly coerced.
    bad_target = con.execute(
        f"""SELECT count(*), min(CAST("{target}" AS VARCHAR)) FROM {staging}
            WHERE coalesce(TRY_CAST(CAST("{target}" AS VARCHAR) AS DOUBLE) NOT IN (0, 1), true)"""
    ).fetchone()
    if bad_target[0]:
        raise LandingFileError(
            f"{path}: column {target!r} must be 0 or 1; {bad_target[0]} row(s) are not (e.g. {bad_target[1]!r})")
    return int(con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0])


def load_window(con: duckdb.DuckDBPyConnection, uc: UseCase, start: dt.datetime, end: dt.datetime,
                log=None) -> WindowLoad:
    """Replace the rows of [start, end) in raw.<use case> with what the landing files hold for it."""
    files = list_landing_files(uc.landing.path(), uc.landing.pattern)
    unreadable = refresh_index(con, uc, files, log)
    paths = files_for_window(con, uc, start, end)
    staged = []
    for i, path in enumerate(paths):
        name = f"_stage_{i}"
        staged.append((path, name, stage_window(con, uc, path, name, start, end)))
    ts = uc.timestamp_column
    con.execute("BEGIN TRANSACTION")
    try:
        replaced = 0
        if table_exists(con, uc.raw_table):
            replaced = con.execute(f'DELETE FROM {uc.raw_table} WHERE "{ts}" >= ? AND "{ts}" < ?', [start, end]).fetchone()[0]
        for path, name, _ in staged:
            select = (f"""SELECT * REPLACE (CAST("{ts}" AS TIMESTAMP) AS "{ts}", CAST("{uc.target_column}" AS INTEGER) AS "{uc.target_column}"),
                          CAST(? AS VARCHAR) AS _source_file, now()::TIMESTAMP AS _loaded_at FROM {name}""")
            if not table_exists(con, uc.raw_table):
                con.execute(f"CREATE TABLE {uc.raw_table} AS {select} LIMIT 0", [str(path)])
            _refuse_rounding(con, uc, path, name)
            try:
                con.execute(f"INSERT INTO {uc.raw_table} BY NAME {select}", [str(path)])
            except duckdb.Error as exc:
                raise LandingFileError(
                    f"{path}: does not fit the existing table {uc.raw_table}: {str(exc).splitlines()[0]}") from exc
        per_day = {}
        if table_exists(con, uc.raw_table):
            per_day = {str(d): int(n) for d, n in con.execute(
                f'SELECT CAST("{ts}" AS DATE), count(*) FROM {uc.raw_table} WHERE "{ts}" >= ? AND "{ts}" < ? GROUP BY 1 ORDER BY 1',
                [start, end]).fetchall()}
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for _, name, _ in staged:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    if log:
        log(f"{uc.raw_table} [{start:%Y-%m-%d}, {end:%Y-%m-%d}): {sum(per_day.values())} rows from "
            f"{len(paths)} file(s), {replaced} replaced")
    by_path = {str(f.path): f for f in files}
    return WindowLoad(rows=sum(per_day.values()), replaced_rows=int(replaced),
                      files=tuple(str(p) for p in paths), rows_per_day=per_day,
                      fingerprints=tuple(fingerprint(by_path[str(p)]) for p in paths if str(p) in by_path),
                      unreadable=unreadable)


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT"}


def _refuse_rounding(con: duckdb.DuckDBPyConnection, uc: UseCase, path: Path, staging: str) -> None:
    """The raw table's column types come from its first file; inserting 1.5 into an integer
    column would silently store 2. Refuse instead, naming the column."""
    table_types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {uc.raw_table})").fetchall())
    staged_types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {staging})").fetchall())
    for col, staged in staged_types.items():
        if table_types.get(col) in INTEGER_TYPES and staged not in INTEGER_TYPES and col != uc.target_column:
            n, example = con.execute(
                f"""SELECT count(*), min(CAST("{col}" AS VARCHAR)) FROM {staging} WHERE "{col}" IS NOT NULL AND
                    coalesce(TRY_CAST("{col}" AS DOUBLE) <> round(TRY_CAST("{col}" AS DOUBLE)), true)""").fetchone()
            if n:
                raise LandingFileError(
                    f"{path}: column {col!r} has {n} non-integer value(s) (e.g. {example!r}) but {uc.raw_table} stores "
                    f"it as {table_types[col]} (from the first file loaded); fix the file, or widen the column with "
                    f"ALTER TABLE {uc.raw_table} ALTER \"{col}\" TYPE DOUBLE")


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, _, table = qualified.rpartition(".")
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema or "main", table]).fetchone()[0])
