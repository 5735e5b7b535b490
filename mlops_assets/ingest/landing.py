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

Each file is sniffed once per load (its Layout: columns, types, CSV dialect); the window's rows
of all its files are then checked and inserted by one INSERT ... SELECT over one reader per
layout (read_csv/read_parquet of a file list, the filename column naming each row's file):
sniffing and per-file statements, not reading, were what a load of many files cost.

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


SOURCE = "_source_file"  # the column naming each row's file (the readers' filename column)


@dataclass(frozen=True)
class Layout:
    """How DuckDB reads a file: its columns and types and, for a CSV, the dialect its sniffer
    found. Sniffing (run over the whole file, sample_size=-1) costs far more than reading, so a
    file is sniffed once per load and then read with auto-detection off; files of one layout
    are read by one reader, in one pass."""
    suffix: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type), in file order
    options: tuple[tuple[str, str], ...] = ()  # CSV reader options, as SQL

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def reader(self, paths: list[Path]) -> str:
        """SQL reading every row of `paths` with this layout, plus the _source_file column."""
        files = "[" + ", ".join(literal(glob_escaped(p)) for p in paths) + "]"
        if self.suffix == ".parquet":
            return f"read_parquet({files}, filename = {literal(SOURCE)})"
        columns = "{" + ", ".join(f"{literal(c)}: {literal(t)}" for c, t in self.columns) + "}"
        options = "".join(f", {k} = {v}" for k, v in self.options)
        return f"read_csv({files}, auto_detect = false{options}, columns = {columns}, filename = {literal(SOURCE)})"


def sniff(con: duckdb.DuckDBPyConnection, path: Path) -> Layout:
    """The file's Layout, as reader_sql would read it. Raises LandingFileError when it does not parse."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            cols = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {reader_sql(path)})"
                               ).fetchall()
            return Layout(suffix, tuple(cols))
        reader_sql(path)  # refuses any other suffix
        row = con.execute(
            "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, DateFormat, "
            f"TimestampFormat FROM sniff_csv({literal(glob_escaped(path))}, header = true, delim = ',', "
            "quote = '\"', sample_size = -1)").fetchone()
    except duckdb.Error as exc:
        raise unparseable(path, exc) from exc
    delim, quote, escape, new_line, comment, skip, header, cols, date_fmt, ts_fmt = row

    def text(v):  # sniff_csv says '(empty)' for none
        return literal("" if v == "(empty)" else v)

    options = [("header", "true" if header else "false"), ("delim", text(delim)), ("quote", text(quote)),
               ("escape", text(escape)), ("new_line", text(new_line)), ("comment", text(comment)),
               ("skip", str(int(skip)))]
    options += [(k, literal(v)) for k, v in (("dateformat", date_fmt), ("timestampformat", ts_fmt)) if v]
    return Layout(suffix, tuple((c["name"], c["type"]) for c in cols), tuple(options))


def layout_of(con: duckdb.DuckDBPyConnection, path: Path, layouts: dict | None = None) -> Layout:
    """sniff(path), once per `layouts` (a cache kept for one load)."""
    if layouts is None:
        return sniff(con, path)
    if path not in layouts:
        layouts[path] = sniff(con, path)
    return layouts[path]


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


def file_columns(con: duckdb.DuckDBPyConnection, path: Path, layouts: dict | None = None) -> list[str]:
    """The file's column names, refused unless each is a plain identifier (they reach SQL, and
    a header is user input) and unique. `layouts`: see layout_of."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LandingFileError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise LandingFileError(f"{path}: empty file (0 bytes); expected a header line and rows")
    cols = layout_of(con, path, layouts).names
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
              required: tuple[str, ...] | list[str] = (), what: str = "",
              layouts: dict | None = None) -> dict[dt.date, int]:
    """Rows per day (in the zone `tz`) of the file's timestamp column. Raises LandingFileError when the
    file does not parse, lacks the column, has a column name that is not a plain identifier, or
    has timestamps that are empty or do not parse: such rows could not be placed in any day and
    would otherwise be lost silently. A file without the timestamp column is refused naming
    every column of `required` it lacks too (`what`: what kind of file, for the message). Names
    match whatever their case. Sets the connection's session time zone to `tz`. `layouts`: see layout_of."""
    in_zone(con, tz)
    layouts = {} if layouts is None else layouts  # the file is sniffed once here either way
    cols = file_columns(con, path, layouts)
    if missing_columns([ts_col], cols):
        missing = missing_columns([*required, ts_col] if ts_col in required else [ts_col, *required], cols)
        raise LandingFileError(f"{path}: missing required column(s) {missing}{what}; the file has {cols}")
    ts = zoned_ts(ts_col)
    try:
        rows = con.execute(
            f"""SELECT CAST({ts} AS DATE) AS day, count(*),
                       min(CASE WHEN {ts} IS NULL THEN coalesce(CAST({ident(ts_col)} AS VARCHAR), '<empty>') END)
                FROM {layout_of(con, path, layouts).reader([path])} GROUP BY 1"""
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
                  what: str = "", notes: list[str] | None = None, layouts: dict | None = None) -> dict[str, str]:
    """Bring the file index up to date: read new and changed files (by size and mtime), forget
    vanished ones. A file that cannot be read (or changes while it is read) is returned with
    its problem, so that one bad file does not stop other days loading; the caller reports it.
    A new version that cannot be read does not erase the last good one: the index keeps the
    good version's days, and load_window keeps its rows. Returns {path: problem}.
    `index_key` keeps another folder's files apart in the index (the label files); default:
    the use case's name (its landing files). `required` and `what`: see file_days. A file that
    holds a header and no rows is said in `notes` (it holds no day, so no load would name it;
    it is not indexed, so it is read, and said, again on each load while it stays so).
    `layouts`: the files' layouts, kept for the load that follows (see layout_of)."""
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
                days = file_days(reader, f.path, uc.timestamp_column, uc.timezone, required, what, layouts)
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


LOADED_AT = "_loaded_at"


def window_rows(reader: duckdb.DuckDBPyConnection, uc: UseCase, paths: list[Path], start: dt.datetime,
                end: dt.datetime, table_types: dict[str, str], layouts: dict | None = None) -> tuple[list[str], list[str]]:
    """The rows of `paths` inside [start, end), validated, as SELECTs ready to insert into the raw
    table, one per file layout (each with two `?`: start, end), and notes. Columns are named as
    the raw table (`table_types`, when it exists) or the use case names them, whatever case a
    file used; columns the table lacks are left out (noted). Files of one layout are read and
    checked by one query each (the filename column names the offending file), since running
    statements file by file costs more than the reading. Raises LandingFileError naming every
    failing file; writes nothing."""
    errors: dict[str, LandingFileError] = {}
    groups: dict[Layout, list[Path]] = {}
    for path in paths:
        try:
            groups.setdefault(layout_of(reader, path, layouts), []).append(path)
        except LandingFileError as exc:
            errors[str(path)] = exc
    names, required = declared_names(uc, table_types), required_raw_columns(uc, table_types)
    columns = dict(table_types)  # no table yet: the first layout's columns, as it creates the table
    ts, target = ident(uc.timestamp_column), ident(uc.target_column)
    window, selects, notes = f"{zoned_ts(uc.timestamp_column)} >= ? AND {zoned_ts(uc.timestamp_column)} < ?", [], []
    for layout, group in groups.items():
        cols = layout.names
        # file_columns refused such names when the file was indexed; checked again because from
        # here they reach SQL.
        odd = [c for c in cols if not is_plain(c)]
        missing = missing_columns(required, cols)
        for path in group:
            if odd:
                errors[str(path)] = LandingFileError(f"{path}: column name {odd[0][:200]!r} is not a plain identifier; "
                                                     "rename it in the header")
            elif missing:
                errors[str(path)] = LandingFileError(f"{path}: missing required column(s) {missing}; the file has {cols}")
        if odd or missing:
            continue
        # A name differing only in case is the same column (as to DuckDB and dbt): stored under the
        # table's or the use case's spelling, never as a column of its own or left out as extra.
        types = {names.get(c.lower(), c): t for c, t in layout.columns}
        if not columns:
            columns = {**types, SOURCE: "VARCHAR", LOADED_AT: "TIMESTAMP"}
        known = {c.lower() for c in columns}
        extra = [c for c in types if c.lower() not in known]
        if extra:
            notes += [f"{p.name}: column(s) {extra} are not in {uc.raw_table}; ignored" for p in group]
        kept = ", ".join(f"{ident(c)} AS {ident(names.get(c.lower(), c))}" for c in cols
                         if names.get(c.lower(), c).lower() in known)
        rows = f"(SELECT {kept}, {SOURCE} FROM {layout.reader(group)} WHERE {window})"
        errors.update(_target_errors(reader, rows, [start, end], uc.target_column, uc.task, allow_empty=True,
                                     types=types, by=SOURCE))
        for path, exc in _rounding_errors(reader, rows, [start, end], uc, columns, types).items():
            errors.setdefault(path, exc)
        selects.append(f"SELECT * REPLACE ({zoned_ts(uc.timestamp_column)} AS {ts}, CAST({target} AS {target_type(uc)}) "
                       f"AS {target}), timezone('UTC', now()) AS {LOADED_AT} FROM {rows}")
    if errors:
        raise LandingFileError.of_files([errors[p] for p in sorted(errors)])
    return selects, notes


TARGET_TYPES = {"binary": "INTEGER", "regression": "DOUBLE", "multiclass": "VARCHAR"}


def target_type(uc: UseCase) -> str:
    """The SQL type a use case's target is stored in: 0/1, a number, or a class label as text."""
    return TARGET_TYPES[uc.task]


def check_target_values(con: duckdb.DuckDBPyConnection, relation: str, column: str, task: str, path: Path, *,
                        allow_empty: bool, where_col: list[str] | None = None) -> None:
    """Raise LandingFileError unless `column` fits the task: 0/1 (binary), a number (regression),
    any label (multiclass); empty with `allow_empty`. A single class or value is refused at
    training (evaluation.tasks.check_target), where the whole labelled window is seen."""
    errors = _target_errors(con, relation, None, column, task, allow_empty=allow_empty, types=_columns(con, relation),
                            where_col=where_col, path=path)
    if errors:
        raise next(iter(errors.values()))


def check_binary(con: duckdb.DuckDBPyConnection, relation: str, column: str, path: Path, *,
                 allow_empty: bool, where_col: list[str] | None = None) -> None:
    """check_target_values of a binary task."""
    check_target_values(con, relation, column, "binary", path, allow_empty=allow_empty, where_col=where_col)


def _target_errors(con: duckdb.DuckDBPyConnection, relation: str, params, column: str, task: str, *,
                   allow_empty: bool, types: dict[str, str], where_col: list[str] | None = None,
                   by: str | None = None, path: Path | None = None) -> dict[str, LandingFileError]:
    """{file: error} for each file whose `column` does not fit the task (see check_target_values):
    the file is named by the column `by` of each row, else it is `path`. `where_col`: columns
    whose values name the first bad row in the message (e.g. the entity and timestamp). `types`:
    the relation's column types."""
    c = ident(column)
    # Through VARCHAR so that booleans ("yes", "true") and fractions are not quietly coerced.
    number = f"TRY_CAST(CAST({c} AS VARCHAR) AS DOUBLE)"
    if task == "binary":
        bad = f"coalesce({number} NOT IN (0, 1), true)"
    elif task == "regression":
        bad = f"{number} IS NULL"
    else:
        return {}
    bad = f"{c} IS NOT NULL AND {bad}" if allow_empty else f"{c} IS NULL OR {bad}"
    row = ", ".join(f"CAST({ident(w)} AS VARCHAR)" for w in where_col or []) or "NULL"
    found = con.execute(
        f"SELECT {ident(by) if by else 'NULL'}, count(*), min(CAST({c} AS VARCHAR)), "
        f"arg_min([{row}], coalesce(CAST({c} AS VARCHAR), '')) FROM {relation} WHERE {bad} GROUP BY 1 ORDER BY 1",
        params).fetchall()
    errors = {}
    for file, n, example, at in found:
        where = Path(file) if by else path
        if task == "regression":
            errors[str(where)] = LandingFileError(f"{where}: column {column!r} of the regression task must hold numbers; "
                                                  f"{n} row(s) do not (e.g. {example!r})")
            continue
        # DuckDB reads yes/no, true/false, y/n as booleans: say so, the file never said 'true'.
        as_bool = " (a yes/no or true/false value)" if types.get(column) == "BOOLEAN" else ""
        at_row = (" at " + ", ".join(f"{w}={v!r}" for w, v in zip(where_col, at))) if where_col and at else ""
        empty = "; leave it empty when the outcome is not known yet" if allow_empty else "; an empty label is not allowed"
        errors[str(where)] = LandingFileError(f"{where}: column {column!r} must be 0 or 1; {n} row(s) are not (e.g. "
                                              f"{example!r}{as_bool}{at_row}){empty}")
    return errors


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
    case's zone.

    Each file is sniffed once (its layout), then the window's rows of all files are validated
    and inserted by one INSERT ... SELECT (one reader per layout, usually one): the cost is
    DuckDB's reading, not statements per file."""
    in_zone(con, uc.timezone)
    scan = scan_landing(uc.landing.path(), uc.landing.pattern)
    files = scan.files
    table_types = portable.columns(con, uc.raw_table) if table_exists(con, uc.raw_table) else {}
    notes, layouts = list(scan.ignored), {}
    unreadable = refresh_index(con, uc, files, log, required=required_raw_columns(uc, table_types), notes=notes,
                               layouts=layouts)
    unreadable.update(scan.refused)
    paths = files_for_window(con, uc, start, end)
    kept = [str(p) for p in paths if str(p) in unreadable]
    read = [p for p in paths if str(p) not in unreadable]
    by_path = {str(f.path): f for f in files}
    raw, ts = qualified(uc.raw_table), ident(uc.timestamp_column)
    with portable.files_connection(con) as reader:  # DuckDB: con itself; PostgreSQL: in memory
        selects, more_notes = window_rows(reader, uc, read, start, end, table_types, layouts)
        notes += more_notes
        con.execute("BEGIN TRANSACTION")
        try:
            portable.lock_table(con, uc.raw_table)
            replaced, kept_rows, window = 0, {}, f"{ts} >= ? AND {ts} < ?"
            if table_exists(con, uc.raw_table):
                for path in kept:
                    kept_rows[path] = int(con.execute(
                        f"SELECT count(*) FROM {raw} WHERE {window} AND {SOURCE} = ?", [start, end, path]
                    ).fetchone()[0])
                replaced = portable.delete_where(con, uc.raw_table, f"{window} AND {portable.not_in(con, SOURCE)}",
                                                 [start, end, kept])
            if selects:
                _insert(con, reader, uc, selects, [start, end], read)
            # The insert read the files: what it read must be the versions listed, or nothing is written.
            for path in read:
                if str(path) in by_path and not _unchanged(by_path[str(path)]):
                    raise LandingFileError(changed_while_read(by_path[str(path)]) + "; nothing was written")
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


def _insert(con, reader: duckdb.DuckDBPyConnection, uc: UseCase, selects: list[str], window: list,
            paths: list[Path]) -> None:
    """Append window_rows' SELECTs (run on `reader`, DuckDB) to the raw table of the warehouse
    `con` in one statement, creating the table from the first layout's columns when missing."""
    if not table_exists(con, uc.raw_table):
        portable.create_table(con, uc.raw_table, portable.relation_types(reader, selects[0], window))
    union = " UNION ALL BY NAME ".join(f"({s})" for s in selects)
    try:
        portable.insert_from(con, uc.raw_table, reader, union, window * len(selects))
    except (duckdb.Error, *_pg_errors()) as exc:
        which = str(paths[0]) if len(paths) == 1 else f"one of {len(paths)} files ({', '.join(p.name for p in paths)})"
        raise LandingFileError(
            f"{which}: does not fit the existing table {uc.raw_table}: {str(exc).strip().splitlines()[0]}") from exc


def _pg_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg2
    except ImportError:
        return ()
    return (psycopg2.DataError,)


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT"}


def _rounding_errors(reader: duckdb.DuckDBPyConnection, relation: str, params, uc: UseCase,
                     table_types: dict[str, str], types: dict[str, str]) -> dict[str, LandingFileError]:
    """{file: error} of the rows of `relation` (read with column `types`; _source_file names the
    file). The raw table's column types come from its first file; inserting 1.5 into an integer
    column would silently store 2. Refuse instead, naming the column. Text such as 'N/A' is a
    different mistake (a missing value written as text): widening the column would not help."""
    errors: dict[str, LandingFileError] = {}
    for col, typ in types.items():
        if table_types.get(col) not in INTEGER_TYPES or typ in INTEGER_TYPES or col == uc.target_column:
            continue
        c = ident(col)
        number = f"TRY_CAST(CAST({c} AS VARCHAR) AS DOUBLE)"
        found = reader.execute(
            f"""SELECT {SOURCE}, count(*) FILTER (WHERE {number} IS NULL),
                       min(CAST({c} AS VARCHAR)) FILTER (WHERE {number} IS NULL),
                       count(*) FILTER (WHERE {number} <> round({number})),
                       min(CAST({c} AS VARCHAR)) FILTER (WHERE {number} <> round({number}))
                FROM {relation} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 1""", params).fetchall()
        for path, text_n, text_eg, frac_n, frac_eg in found:
            if path in errors:
                continue
            if text_n:
                errors[path] = LandingFileError(
                    f"{path}: column {col!r} must hold whole numbers ({uc.raw_table} stores it as {table_types[col]}); "
                    f"{text_n} value(s) are not numbers (e.g. {text_eg!r}); leave a missing value empty")
            elif frac_n:
                errors[path] = LandingFileError(
                    f"{path}: column {col!r} has {frac_n} non-integer value(s) (e.g. {frac_eg!r}) but {uc.raw_table} "
                    f"stores it as {table_types[col]} (from the first file loaded); fix the file, or widen the column "
                    f"with ALTER TABLE {qualified(uc.raw_table)} ALTER {c} TYPE DOUBLE")
    return errors


def table_exists(con, name: str) -> bool:
    return portable.table_exists(con, name)
