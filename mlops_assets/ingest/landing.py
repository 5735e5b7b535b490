"""Loading landing-zone batch files into the warehouse, one time window (day partition) at a time.

A partition holds the rows whose own timestamp falls on that day, whichever file brought them.
The file index (raw._file_days) records, per file fingerprint, how many rows it holds for each
day, so loading a day reads only the files that hold that day: the cost of a new day does not
grow with the history. Only files that are new or changed since they were indexed are read.

Before anything is written, the window's rows are validated (timestamp parses, binary target
or empty for a row whose outcome is not known yet, required columns: the keys, the target and
every feature column the raw table has). Column names match whatever their case, as in DuckDB
and dbt: a file's TENURE_MONTHS is stored as the table's (or the use case's) tenure_months,
never as a column of its own. Every file that fails a window is named. The window is then
replaced in one transaction: re-loading a day replaces it, never duplicates it, and a bad file
leaves the warehouse exactly as it was.

Files are always read and validated by DuckDB: on the embedded profile in the warehouse
connection itself, on PostgreSQL in a private in-memory DuckDB whose validated rows are then
copied over with COPY (warehouse/portable.py), so the error messages are the same on both.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_assets.warehouse.sql import ident, is_plain, literal, qualified
from mlops_assets.use_cases.config import UseCase
from mlops_assets.warehouse import is_postgres, portable

INDEX = "raw._file_days"
TMP_PREFIXES = (".", "_", "~")
TMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
DATA_SUFFIXES = (".csv", ".parquet")
GLOB_CHARS = "*?["
HEADER_LIMIT = 1 << 20  # a header line longer than this is not a header


class LandingFileError(ValueError):
    """A batch file that cannot be loaded; the message names the file and the problem."""

    @classmethod
    def of_files(cls, errors: list[LandingFileError], what: str = "landing") -> LandingFileError:
        """One error naming every failing file of a window (one alone: its own message)."""
        if len(errors) == 1:
            return errors[0]
        return cls(f"{len(errors)} {what} file(s) cannot be loaded; nothing was written: "
                   + "; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class LandingFile:
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class LandingScan:
    files: list[LandingFile]
    refused: dict[str, str] = field(default_factory=dict)  # path -> problem (e.g. a link out of the folder)
    ignored: list[str] = field(default_factory=list)  # human-readable notes: files the pattern leaves out, ...


@dataclass(frozen=True)
class WindowLoad:
    rows: int
    replaced_rows: int
    files: tuple[str, ...]
    rows_per_day: dict[str, int]
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> problem, files no day can use
    fingerprints: tuple[str, ...] = ()  # "path@size:mtime_ns" of the files read, as the sensor sees them
    kept_rows: dict[str, int] = field(default_factory=dict)  # path -> rows of its last good version kept in the window
    outside: dict[str, int] = field(default_factory=dict)  # path -> rows dated outside the partitions
    notes: tuple[str, ...] = ()  # warnings: ignored columns, files the pattern leaves out, ...
    labelled_per_day: dict[str, int] = field(default_factory=dict)  # rows whose target is not empty, per day

    @property
    def labelled_rows(self) -> int:
        return sum(self.labelled_per_day.values())


def fingerprint(f: LandingFile) -> str:
    """Identity of a file version: path, size and modification time."""
    return f"{f.path}@{f.size}:{f.mtime_ns}"


def in_zone(con, tz: str):
    """Files are read in the use case's zone: casting an offset-bearing timestamp to a plain one
    gives wall-clock time in that zone, and a plain one is taken as it is, so each row lands on
    its day in that zone. Files are parsed by DuckDB only (the PostgreSQL warehouse receives
    the parsed, naive values), so a PostgreSQL session is left as it is."""
    if not is_postgres(con):
        con.execute(f"SET TimeZone = '{_zone_literal(tz)}'")
    return con


def _zone_literal(tz: str) -> str:
    # Validated as an IANA name by the use case; quotes cannot appear in one.
    if "'" in tz:
        raise ValueError(f"not a time zone name: {tz!r}")
    return tz


def zoned_ts(column: str) -> str:
    """SQL for a column's value as a naive timestamp in the session's zone (in_zone), NULL when
    it does not parse. Through TIMESTAMPTZ so that text with an offset ('...T23:30:00+02:00')
    lands on its day in that zone, as a
    column DuckDB typed as a timestamp does (a plain cast of such text drops the offset)."""
    return f"CAST(TRY_CAST({ident(column)} AS TIMESTAMPTZ) AS TIMESTAMP)"


def is_candidate_name(name: str) -> bool:
    """Hidden and temporary names are skipped: writers are expected to write under such a name
    and rename the file when it is complete."""
    return not name.startswith(TMP_PREFIXES) and not name.endswith(TMP_SUFFIXES)


def scan_landing(folder: Path, pattern: str, setting: str = "landing.pattern") -> LandingScan:
    """The batch files of a landing folder, and what was refused or left out and why.
    A symbolic link is followed only when its target is inside the folder (else anyone who can
    write a link there could load any file the platform can read)."""
    if not folder.is_dir():
        return LandingScan([])
    root = folder.resolve()
    files, refused, ignored, seen = [], {}, [], set()
    matched = sorted(folder.glob(pattern))
    for p in sorted(matched, key=lambda p: (p.is_symlink(), p)):  # a file before the links to it
        if not is_candidate_name(p.name):
            continue
        try:
            st = p.stat()
            real = p.resolve()
        except FileNotFoundError:  # removed or renamed since the listing (or a dangling link)
            if p.is_symlink():
                refused[str(p)] = f"{p}: a symbolic link to a missing file; refused"
            continue
        if not real.is_relative_to(root):
            refused[str(p)] = (f"{p}: a symbolic link to {real}, outside the landing folder {root}; refused "
                               "(copy the file into the folder instead)")
            continue
        if not p.is_file():
            ignored.append(f"{p.name}: not a regular file (a directory?); ignored")
            continue
        if real in seen:
            ignored.append(f"{p.name}: a link to {real.name}, which is read already; ignored")
            continue
        seen.add(real)
        files.append(LandingFile(real, st.st_size, st.st_mtime_ns))
    matched_names = {p.name for p in matched}
    for p in sorted(folder.iterdir()):
        if (p.suffix.lower() in DATA_SUFFIXES and p.name not in matched_names and is_candidate_name(p.name)
                and p.is_file()):
            ignored.append(f"{p.name}: not matched by the landing pattern {pattern!r}; ignored (change the "
                           f"use case's {setting} to load it)")
    return LandingScan(files, refused, ignored)


def list_landing_files(folder: Path, pattern: str) -> list[LandingFile]:
    """The files scan_landing accepts (see it for what is refused)."""
    return scan_landing(folder, pattern).files


def glob_escaped(path: Path) -> str:
    """DuckDB expands globs in file names: 'churn_*.csv' would also read every other day's file.
    Each glob character becomes a one-character class matching only itself."""
    return "".join(f"[{c}]" if c in GLOB_CHARS else c for c in str(path))


def reader_sql(path: Path) -> str:
    quoted = literal(glob_escaped(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # Explicit delimiter and quote: auto-detection would "succeed" on a broken file by
        # guessing another dialect and reading one wide column.
        return f"read_csv({quoted}, header = true, delim = ',', quote = '\"', auto_detect = true, sample_size = -1)"
    if suffix == ".parquet":
        return f"read_parquet({quoted})"
    raise LandingFileError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")


def _not_utf8(path: Path) -> str | None:
    """Where the file stops being UTF-8, or None. Only run once DuckDB failed on the file."""
    decoder, offset = codecs.getincrementaldecoder("utf-8")(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    return f"byte 0x{exc.object[exc.start]:02x} near offset {max(offset + exc.start, 0)}"
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "a cut multi-byte character at the end"
    except OSError:
        return None
    return None


def unparseable(path: Path, exc: Exception) -> LandingFileError:
    """DuckDB's error as one line naming the file; 'not UTF-8' said as such."""
    if path.suffix.lower() == ".csv" and (where := _not_utf8(path)):
        return LandingFileError(f"{path}: not UTF-8 ({where}); save the file as UTF-8")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = next((ln for ln in lines[1:] if not ln.startswith(("Original Line", "Possible Solution"))), "")
    text = lines[0] if lines else type(exc).__name__
    if reason and reason not in text:
        text = f"{text}: {reason}"
    return LandingFileError(f"{path}: could not be parsed: {text[:400]}")


def missing_columns(required, cols) -> list[str]:
    """The required names that `cols` lacks. Names are compared as DuckDB and dbt's SQL compare
    them, whatever their case (a file's TENURE_MONTHS is the use case's tenure_months)."""
    have = {c.lower() for c in cols}
    return [c for c in dict.fromkeys(required) if c.lower() not in have]


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as f:
        line = f.readline(HEADER_LIMIT)
    return next(csv.reader([line]), [])


def file_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """The file's column names, refused unless each is a plain identifier (they reach SQL, and
    a header is user input) and unique."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LandingFileError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise LandingFileError(f"{path}: empty file (0 bytes); expected a header line and rows")
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader_sql(path)}").fetchall()]
    except duckdb.Error as exc:
        raise unparseable(path, exc) from exc
    if path.suffix.lower() == ".csv":
        header = _csv_header(path)
        dups = sorted({c for c in header if header.count(c) > 1})
        if dups:
            raise LandingFileError(f"{path}: duplicate column name(s) {dups} in the header")
    # DuckDB and dbt treat names differing only in case as one name (DuckDB reads a CSV's second
    # spelling as NAME_1): such a pair is a duplicate too.
    names = _csv_header(path) if path.suffix.lower() == ".csv" else cols
    by_case: dict[str, list[str]] = {}
    for c in names:
        by_case.setdefault(c.lower(), []).append(c)
    clashes = [group for group in by_case.values() if len(group) > 1]
    if clashes:
        raise LandingFileError(f"{path}: column names differing only in case {clashes} in the header; they name "
                               "the same column, keep one")
    for c in cols:
        if not is_plain(c):
            hint = ""
            if len(cols) == 1 and (sep := next((s for s in ";\t|" if s in c), None)):
                hint = f"; the file seems to be separated by {sep!r}, expected ','"
            raise LandingFileError(f"{path}: column name {c[:200]!r} is not a plain identifier (letters, digits "
                                   f"and '_', not starting with a digit){hint}; rename it in the header")
    return cols


def file_days(con: duckdb.DuckDBPyConnection, path: Path, ts_col: str, tz: str = "UTC",
              required: tuple[str, ...] | list[str] = (), what: str = "") -> dict[dt.date, int]:
    """Rows per day (in the zone `tz`) of the file's timestamp column. Raises LandingFileError when the
    file does not parse, lacks the column, has a column name that is not a plain identifier, or
    has timestamps that are empty or do not parse: such rows could not be placed in any day and
    would otherwise be lost silently. A file without the timestamp column is refused naming
    every column of `required` it lacks too (`what`: what kind of file, for the message). Names
    match whatever their case. Sets the connection's session time zone to `tz`."""
    in_zone(con, tz)
    cols = file_columns(con, path)
    if missing_columns([ts_col], cols):
        missing = missing_columns([*required, ts_col] if ts_col in required else [ts_col, *required], cols)
        raise LandingFileError(f"{path}: missing required column(s) {missing}{what}; the file has {cols}")
    ts = zoned_ts(ts_col)
    try:
        rows = con.execute(
            f"""SELECT CAST({ts} AS DATE) AS day, count(*),
                       min(CASE WHEN {ts} IS NULL THEN coalesce(CAST({ident(ts_col)} AS VARCHAR), '<empty>') END)
                FROM {reader_sql(path)} GROUP BY 1"""
        ).fetchall()
    except duckdb.Error as exc:
        raise unparseable(path, exc) from exc
    bad = [(n, example) for day, n, example in rows if day is None]
    if bad:
        n, example = bad[0]
        raise LandingFileError(f"{path}: column {ts_col!r} must hold timestamps; {n} value(s) are empty or "
                               f"do not parse (e.g. {example!r})")
    return {day: int(n) for day, n, _ in rows}


def ensure_tables(con) -> None:
    portable.ensure(
        con, "CREATE SCHEMA IF NOT EXISTS raw",
        f"""CREATE TABLE IF NOT EXISTS {qualified(INDEX)} (
            use_case VARCHAR, path VARCHAR, size BIGINT, mtime_ns BIGINT, day DATE, rows BIGINT,
            indexed_at TIMESTAMP, PRIMARY KEY (use_case, path, day))""")


def _unchanged(f: LandingFile) -> bool:
    """Whether the file still has the size and mtime it was listed with."""
    try:
        st = f.path.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (f.size, f.mtime_ns)


def changed_while_read(f: LandingFile) -> str:
    return (f"{f.path}: changed while being read (it may still be being written); write it under a temporary "
            "name and rename it when complete. It is read again on the next load")


def refresh_index(con, uc: UseCase, files: list[LandingFile],
                  log=None, *, index_key: str | None = None, required: tuple[str, ...] | list[str] = (),
                  what: str = "", notes: list[str] | None = None) -> dict[str, str]:
    """Bring the file index up to date: read new and changed files (by size and mtime), forget
    vanished ones. A file that cannot be read (or changes while it is read) is returned with
    its problem, so that one bad file does not stop other days loading; the caller reports it.
    A new version that cannot be read does not erase the last good one: the index keeps the
    good version's days, and load_window keeps its rows. Returns {path: problem}.
    `index_key` keeps another folder's files apart in the index (the label files); default:
    the use case's name (its landing files). `required` and `what`: see file_days. A file that
    holds a header and no rows is said in `notes` (it holds no day, so no load would name it;
    it is not indexed, so it is read, and said, again on each load while it stays so)."""
    ensure_tables(con)
    index, name = qualified(INDEX), index_key or uc.name
    known = {(p, s, m) for p, s, m in con.execute(
        f"SELECT DISTINCT path, size, mtime_ns FROM {index} WHERE use_case = ?", [name]).fetchall()}
    present = {str(f.path) for f in files}
    changed = [f for f in files if (str(f.path), f.size, f.mtime_ns) not in known]
    days_by_file, unreadable = {}, {}
    with portable.files_connection(con) as reader:  # DuckDB: con itself; PostgreSQL: in memory
        for f in changed:  # all are read before anything is written
            try:
                days = file_days(reader, f.path, uc.timestamp_column, uc.timezone, required, what)
            except LandingFileError as exc:
                unreadable[str(f.path)] = str(exc)
                continue
            if not days and notes is not None:
                notes.append(f"{f.path.name}: a header and no rows; nothing to load")
            if _unchanged(f):
                days_by_file[f] = days
            else:
                unreadable[str(f.path)] = changed_while_read(f)
    con.execute("BEGIN TRANSACTION")
    try:
        portable.lock_table(con, f"{INDEX}/{name}")
        for path in {p for p, _, _ in known} - present:
            con.execute(f"DELETE FROM {index} WHERE use_case = ? AND path = ?", [name, path])
        for f, days in days_by_file.items():
            con.execute(f"DELETE FROM {index} WHERE use_case = ? AND path = ?", [name, str(f.path)])
            if days:
                con.executemany(
                    f"INSERT INTO {index} VALUES (?, ?, ?, ?, ?, ?, timezone('UTC', now()))",
                    [[name, str(f.path), f.size, f.mtime_ns, day, n] for day, n in days.items()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if log and days_by_file:
        log(f"indexed {len(days_by_file)} new or changed file(s): {[f.path.name for f in days_by_file]}")
    return unreadable


def files_for_window(con, uc: UseCase, start: dt.datetime, end: dt.datetime,
                     *, index_key: str | None = None) -> list[Path]:
    rows = con.execute(
        f"SELECT DISTINCT path FROM {qualified(INDEX)} WHERE use_case = ? AND day >= CAST(? AS DATE) "
        "AND day < CAST(? AS DATE) ORDER BY path",
        [index_key or uc.name, start, end]).fetchall()
    return [Path(r[0]) for r in rows]


def rows_outside(con, uc: UseCase, first_day: dt.date, last_day: dt.date,
                 *, index_key: str | None = None) -> dict[str, int]:
    """Rows per indexed file dated before first_day or after last_day: rows no partition takes."""
    ensure_tables(con)
    return {p: int(n) for p, n in con.execute(
        f"SELECT path, sum(rows) FROM {qualified(INDEX)} WHERE use_case = ? AND (day < ? OR day > ?) "
        "GROUP BY 1 ORDER BY 1", [index_key or uc.name, first_day, last_day]).fetchall()}


def required_raw_columns(uc: UseCase, table_columns=()) -> list[str]:
    """Columns every raw file must carry: the keys and the target, and, when no dbt model sits
    in between, the features too (a dbt model may derive features in SQL). With the raw table's
    columns (`table_columns`), also each feature column the table has: which of the features
    are raw columns is known from the table (charges_per_tenure_month is computed by dbt and is
    in no file), and a file without one would load it as NULL for its rows."""
    keys = [uc.entity_column, uc.timestamp_column, uc.target_column]
    base = keys if uc.features.dbt_model else keys + uc.features.all
    features = {f.lower() for f in uc.features.all}
    return list(dict.fromkeys(base + [c for c in table_columns if c.lower() in features]))


def declared_names(uc: UseCase, table_columns=()) -> dict[str, str]:
    """The spelling of each column name, by its lower case: the raw table's (it decides once it
    exists), else the use case's (keys, target, features). A file's column is stored under it."""
    names: dict[str, str] = {}
    for c in [*table_columns, uc.entity_column, uc.timestamp_column, uc.target_column, *uc.features.all]:
        names.setdefault(c.lower(), c)
    return names


def stage_window(con: duckdb.DuckDBPyConnection, uc: UseCase, path: Path, staging: str,
                 start: dt.datetime, end: dt.datetime, table_columns=()) -> int:
    """The file's rows inside [start, end) in a temp table, validated, its columns named as the
    raw table (`table_columns`, when it exists) or the use case names them, whatever case the
    file used. Raises LandingFileError naming the file and what is wrong; writes nothing
    outside the temp table."""
    ts = zoned_ts(uc.timestamp_column)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ident(staging)} AS SELECT * FROM {reader_sql(path)}
                WHERE {ts} >= ? AND {ts} < ?""", [start, end])
    except duckdb.Error as exc:
        raise unparseable(path, exc) from exc
    cols = [r[0] for r in con.execute(f"DESCRIBE {ident(staging)}").fetchall()]
    # file_days refused this version already if a name is not plain; checked again (cheaply, on
    # the staged table) because from here the names reach SQL.
    odd = [c for c in cols if not is_plain(c)]
    if odd:
        raise LandingFileError(f"{path}: column name {odd[0][:200]!r} is not a plain identifier; rename it in the header")
    missing = missing_columns(required_raw_columns(uc, table_columns), cols)
    if missing:
        raise LandingFileError(f"{path}: missing required column(s) {missing}; the file has {cols}")
    # A name differing only in case is the same column (as to DuckDB and dbt): stored under the
    # table's or the use case's spelling, never as a column of its own or left out as extra.
    names = declared_names(uc, table_columns)
    for c in cols:
        if names.get(c.lower(), c) != c:
            con.execute(f"ALTER TABLE {ident(staging)} RENAME COLUMN {ident(c)} TO {ident(names[c.lower()])}")
    check_target_values(con, ident(staging), uc.target_column, uc.task, path, allow_empty=True)
    return int(con.execute(f"SELECT count(*) FROM {ident(staging)}").fetchone()[0])


TARGET_TYPES = {"binary": "INTEGER", "regression": "DOUBLE", "multiclass": "VARCHAR"}


def target_type(uc: UseCase) -> str:
    """The SQL type a use case's target is stored in: 0/1, a number, or a class label as text."""
    return TARGET_TYPES[uc.task]


def check_target_values(con: duckdb.DuckDBPyConnection, relation: str, column: str, task: str, path: Path, *,
                        allow_empty: bool, where_col: list[str] | None = None) -> None:
    """Raise LandingFileError unless `column` fits the task: 0/1 (binary), a number (regression),
    any label (multiclass); empty with `allow_empty`. A single class or value is refused at
    training (evaluation.tasks.check_target), where the whole labelled window is seen."""
    if task == "binary":
        return check_binary(con, relation, column, path, allow_empty=allow_empty, where_col=where_col)
    if task != "regression":
        return None
    c = ident(column)
    bad = f"{c} IS NOT NULL AND TRY_CAST(CAST({c} AS VARCHAR) AS DOUBLE) IS NULL"
    if not allow_empty:
        bad = f"{c} IS NULL OR ({bad})"
    n, example = con.execute(f"SELECT count(*), min(CAST({c} AS VARCHAR)) FROM {relation} WHERE {bad}").fetchone()
    if n:
        raise LandingFileError(f"{path}: column {column!r} of the regression task must hold numbers; {n} row(s) do "
                               f"not (e.g. {example!r})")
    return None


def check_binary(con: duckdb.DuckDBPyConnection, relation: str, column: str, path: Path, *,
                 allow_empty: bool, where_col: list[str] | None = None) -> None:
    """Raise LandingFileError unless every value of `column` is 0 or 1 (or empty, with
    `allow_empty`: a row whose outcome is not known yet). `where_col`: columns whose values
    name the first bad row in the message (e.g. the entity and timestamp)."""
    c = ident(column)
    # Through VARCHAR so that booleans ("yes", "true") and fractions are not quietly coerced.
    bad = f"coalesce(TRY_CAST(CAST({c} AS VARCHAR) AS DOUBLE) NOT IN (0, 1), true)"
    if allow_empty:
        bad = f"{c} IS NOT NULL AND {bad}"
    row = ", ".join(f"CAST({ident(w)} AS VARCHAR)" for w in where_col or []) or "NULL"
    n, example, at = con.execute(
        f"SELECT count(*), min(CAST({c} AS VARCHAR)), arg_min([{row}], coalesce(CAST({c} AS VARCHAR), '')) "
        f"FROM {relation} WHERE {bad}").fetchone()
    if not n:
        return
    # DuckDB reads yes/no, true/false, y/n as booleans: say so, the file never said 'true'.
    is_bool = _columns(con, relation)[column] == "BOOLEAN"
    as_bool = " (a yes/no or true/false value)" if is_bool else ""
    where = (" at " + ", ".join(f"{w}={v!r}" for w, v in zip(where_col, at))) if where_col and at else ""
    empty = "; leave it empty when the outcome is not known yet" if allow_empty else "; an empty label is not allowed"
    raise LandingFileError(f"{path}: column {column!r} must be 0 or 1; {n} row(s) are not (e.g. {example!r}"
                           f"{as_bool}{where}){empty}")


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {relation})").fetchall())


def load_window(con, uc: UseCase, start: dt.datetime, end: dt.datetime,
                log=None, last_day: dt.date | None = None) -> WindowLoad:
    """Replace the rows of [start, end) in raw.<use case> with what the landing files hold for it.

    A file whose current version cannot be read keeps the rows its last good version put in
    raw (reported in `unreadable` and `kept_rows`). A file that changes while the window is
    read fails the load, writing nothing. With `last_day`, rows the files date before the use
    case's first day or after last_day (no partition takes them) are counted in `outside`.
    Columns a file has beyond the raw table's are ignored (noted). Sets the session to the use
    case's zone."""
    in_zone(con, uc.timezone)
    scan = scan_landing(uc.landing.path(), uc.landing.pattern)
    files = scan.files
    table_columns = list(portable.columns(con, uc.raw_table)) if table_exists(con, uc.raw_table) else []
    notes = list(scan.ignored)
    unreadable = refresh_index(con, uc, files, log, required=required_raw_columns(uc, table_columns), notes=notes)
    unreadable.update(scan.refused)
    paths = files_for_window(con, uc, start, end)
    kept = [str(p) for p in paths if str(p) in unreadable]
    read = [p for p in paths if str(p) not in unreadable]
    by_path = {str(f.path): f for f in files}
    raw, ts = qualified(uc.raw_table), ident(uc.timestamp_column)
    staged = []
    with portable.files_connection(con) as reader:  # DuckDB: con itself; PostgreSQL: in memory
        try:
            errors = []  # every failing file is named, not only the first
            for i, path in enumerate(read):
                name = f"_stage_{i}"
                try:
                    staged.append((path, name, stage_window(reader, uc, path, name, start, end, table_columns)))
                except LandingFileError as exc:
                    errors.append(exc)
                    reader.execute(f"DROP TABLE IF EXISTS {ident(name)}")
            if errors:
                raise LandingFileError.of_files(errors)
            for path in read:  # the rows staged are those of the version listed, or the load fails
                if str(path) in by_path and not _unchanged(by_path[str(path)]):
                    raise LandingFileError(changed_while_read(by_path[str(path)]) + "; nothing was written")
            con.execute("BEGIN TRANSACTION")
            try:
                portable.lock_table(con, uc.raw_table)
                replaced, kept_rows, window = 0, {}, f"{ts} >= ? AND {ts} < ?"
                if table_exists(con, uc.raw_table):
                    for path in kept:
                        kept_rows[path] = int(con.execute(
                            f"SELECT count(*) FROM {raw} WHERE {window} AND _source_file = ?", [start, end, path]
                        ).fetchone()[0])
                    replaced = portable.delete_where(con, uc.raw_table, f"{window} AND {portable.not_in(con, '_source_file')}",
                                                     [start, end, kept])
                for path, name, _ in staged:
                    notes += _insert(con, reader, uc, path, name)
                per_day, labelled = {}, {}
                if table_exists(con, uc.raw_table):
                    for d, n, n_labelled in con.execute(
                            f"SELECT CAST({ts} AS DATE), count(*), count({ident(uc.target_column)}) FROM {raw} "
                            f"WHERE {window} GROUP BY 1 ORDER BY 1", [start, end]).fetchall():
                        per_day[str(d)], labelled[str(d)] = int(n), int(n_labelled)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            for _, name, _ in staged:
                reader.execute(f"DROP TABLE IF EXISTS {ident(name)}")
    for path, n in kept_rows.items():
        unreadable[path] += f"; kept the {n} row(s) its last good version loaded for this window"
    outside = rows_outside(con, uc, uc.first_day, last_day) if last_day else {}
    if log:
        log(f"{uc.raw_table} [{start:%Y-%m-%d}, {end:%Y-%m-%d}): {sum(per_day.values())} rows from "
            f"{len(read)} file(s), {replaced} replaced" + (f", {sum(kept_rows.values())} kept" if kept_rows else ""))
    return WindowLoad(rows=sum(per_day.values()), replaced_rows=int(replaced),
                      files=tuple(str(p) for p in read), rows_per_day=per_day,
                      fingerprints=tuple(fingerprint(by_path[str(p)]) for p in read if str(p) in by_path),
                      unreadable=unreadable, kept_rows=kept_rows, outside=outside, notes=tuple(notes),
                      labelled_per_day=labelled)


def _insert(con, reader: duckdb.DuckDBPyConnection, uc: UseCase, path: Path, staging: str) -> list[str]:
    """Append a staged file (on `reader`, DuckDB) to the raw table of the warehouse `con`
    (created from the first file). Columns the table does not have are left out, and said so."""
    ts, target = ident(uc.timestamp_column), ident(uc.target_column)
    notes, exclude = [], ""
    exists = table_exists(con, uc.raw_table)
    if exists:
        table_cols = portable.columns(con, uc.raw_table)
        known = {c.lower() for c in table_cols}  # stage_window named the staged columns as the table
        extra = [c for c in _columns(reader, ident(staging)) if c.lower() not in known]
        if extra:
            exclude = f"EXCLUDE ({', '.join(ident(c) for c in extra)})"
            notes.append(f"{path.name}: column(s) {extra} are not in {uc.raw_table}; ignored")
    select = (f"SELECT * {exclude} REPLACE ({zoned_ts(uc.timestamp_column)} AS {ts}, CAST({target} AS {target_type(uc)}) AS "
              f"{target}), CAST(? AS VARCHAR) AS _source_file, timezone('UTC', now()) AS _loaded_at FROM {ident(staging)}")
    if not exists:
        portable.create_table(con, uc.raw_table, portable.relation_types(reader, select, [str(path)]))
    _refuse_rounding(con, reader, uc, path, staging)
    try:
        portable.insert_from(con, uc.raw_table, reader, select, [str(path)])
    except (duckdb.Error, *_pg_errors()) as exc:
        raise LandingFileError(
            f"{path}: does not fit the existing table {uc.raw_table}: {str(exc).strip().splitlines()[0]}") from exc
    return notes


def _pg_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg2
    except ImportError:
        return ()
    return (psycopg2.DataError,)


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT"}


def _refuse_rounding(con, reader: duckdb.DuckDBPyConnection, uc: UseCase, path: Path, staging: str) -> None:
    """The raw table's column types come from its first file; inserting 1.5 into an integer
    column would silently store 2. Refuse instead, naming the column. Text such as 'N/A' is a
    different mistake (a missing value written as text): widening the column would not help."""
    table_types = portable.columns(con, uc.raw_table)
    for col, staged in _columns(reader, ident(staging)).items():
        if table_types.get(col) not in INTEGER_TYPES or staged in INTEGER_TYPES or col == uc.target_column:
            continue
        c = ident(col)
        number = f"TRY_CAST(CAST({c} AS VARCHAR) AS DOUBLE)"
        text_n, text_eg, frac_n, frac_eg = reader.execute(
            f"""SELECT count(*) FILTER (WHERE {number} IS NULL),
                       min(CAST({c} AS VARCHAR)) FILTER (WHERE {number} IS NULL),
                       count(*) FILTER (WHERE {number} <> round({number})),
                       min(CAST({c} AS VARCHAR)) FILTER (WHERE {number} <> round({number}))
                FROM {ident(staging)} WHERE {c} IS NOT NULL""").fetchone()
        if text_n:
            raise LandingFileError(
                f"{path}: column {col!r} must hold whole numbers ({uc.raw_table} stores it as {table_types[col]}); "
                f"{text_n} value(s) are not numbers (e.g. {text_eg!r}); leave a missing value empty")
        if frac_n:
            raise LandingFileError(
                f"{path}: column {col!r} has {frac_n} non-integer value(s) (e.g. {frac_eg!r}) but {uc.raw_table} "
                f"stores it as {table_types[col]} (from the first file loaded); fix the file, or widen the column "
                f"with ALTER TABLE {qualified(uc.raw_table)} ALTER {c} TYPE DOUBLE")


def table_exists(con, name: str) -> bool:
    return portable.table_exists(con, name)
