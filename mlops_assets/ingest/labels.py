"""Label files: outcomes that arrive after their rows, loaded into labels.<use case>.

A label file holds (entity, timestamp of the event, label). Its rows are partitioned by the
event's day (in the use case's zone), like the feature rows they label, and use the landing zone's rules through
landing.py: the same listing (hidden/temporary names, symbolic links kept inside the folder,
glob characters in names), the same file index (under the key `<use case>/labels`), the same
parsing errors, and the same day-by-day replacement in one transaction.

Rules of a label day, rebuilt from every label file holding events of that day:
- a label must be 0 or 1 and name its entity and timestamp; a file breaking this is refused
  with the file, column and row, and the other files still load;
- one (entity, timestamp) is labelled once: when files disagree, the newest file (modification
  time, then name) wins, and the disagreement is counted (`conflicting`); a label that replaces
  a different one stored earlier is counted too (`changed`);
- a label whose row never arrived in raw.<use case> is kept (the row may still come) and
  counted (`without_rows`), never dropped silently;
- `_loaded_at` is when the row's label arrived: reloading the same label keeps it, a new or
  changed label gets the load's time (served predictions are those made before it).

The authoritative label of a row is the label file's when there is one, else the target the
feature file carried: `outcomes()` gives it, and the dbt feature model joins the same way.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_assets.ingest import landing
from mlops_assets.ingest.landing import LandingFileError
from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase
from mlops_assets.warehouse import portable

SCHEMA = "labels"
LABEL = "label"  # the label's column name in outcomes()
ORDER = "_file_mtime_ns"  # which file is newer, for the "newest file wins" rule


def labels_table(uc: UseCase) -> str:
    return f"{SCHEMA}.{uc.name}"


def index_key(uc: UseCase) -> str:
    """The label files' key in the landing file index (apart from the feature files)."""
    return f"{uc.name}/labels"


def file_label_column(uc: UseCase) -> str:
    """The label's column in the label files (the table stores it as the target column)."""
    return (uc.labels.label_column if uc.labels else None) or uc.target_column


WHAT = " of a label file (entity, event timestamp, label)"


def required_columns(uc: UseCase) -> list[str]:
    """The columns of a label file: entity, event timestamp, label."""
    return [uc.entity_column, uc.timestamp_column, file_label_column(uc)]


def _require_source(uc: UseCase) -> None:
    if uc.labels is None:
        raise ValueError(f"use case {uc.name} declares no `labels:` section; it has no label files")


@dataclass(frozen=True)
class LabelLoad:
    rows: int  # labels stored for the window
    files: tuple[str, ...]
    fingerprints: tuple[str, ...]  # file versions read, as the sensor sees them
    labels_per_day: dict[str, int]
    new: int  # labels for rows that had none stored
    changed: int  # labels that replaced a different label stored earlier for the same row
    removed: int  # labels stored earlier that no file holds any more
    conflicting: int  # rows the window's files label differently; the newest file's label is kept
    duplicates: int  # identical labels repeated in the files, stored once
    without_rows: int  # labels whose row (entity, timestamp) is not in raw
    without_rows_examples: tuple[str, ...]
    overriding_raw: int  # labels that differ from the target the feature file carried
    coverage: dict[str, float]  # per day: labelled rows / rows of raw (label file or raw target)
    labelled_rows: dict[str, int] = field(default_factory=dict)  # per day: raw rows with a label (either source)
    unreadable: dict[str, str] = field(default_factory=dict)
    kept_rows: dict[str, int] = field(default_factory=dict)
    outside: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def ensure_table(con, uc: UseCase) -> None:
    portable.ensure(
        con, f"CREATE SCHEMA IF NOT EXISTS {ident(SCHEMA)}",
        f"""CREATE TABLE IF NOT EXISTS {qualified(labels_table(uc))} (
            {ident(uc.entity_column)} VARCHAR, {ident(uc.timestamp_column)} TIMESTAMP,
            {ident(uc.target_column)} {landing.target_type(uc)}, _source_file VARCHAR, _loaded_at TIMESTAMP,
            {ident(ORDER)} BIGINT)""")


def stage_labels(con: duckdb.DuckDBPyConnection, uc: UseCase, f: landing.LandingFile, staging: str,
                 start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """A label file's rows in [start, end), validated, as (entity, timestamp, label, file, order)
    in a temp table with one row per (entity, timestamp). Returns (rows, identical duplicates).
    Raises LandingFileError naming the file, the column and the row."""
    path = f.path
    raw_stage = f"{staging}_file"
    ts = landing.zoned_ts(uc.timestamp_column)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(raw_stage)} AS SELECT * FROM {landing.reader_sql(path)} "
                    f"WHERE {ts} >= ? AND {ts} < ?", [start, end])
    except duckdb.Error as exc:
        raise landing.unparseable(path, exc) from exc
    try:
        cols = list(landing._columns(con, ident(raw_stage)))
        entity, label = uc.entity_column, file_label_column(uc)
        # Names match whatever their case, as in DuckDB's SQL below (and landing.stage_window).
        missing = landing.missing_columns(required_columns(uc), cols)
        if missing:
            raise LandingFileError(f"{path}: missing required column(s) {missing}{WHAT}; the file has {cols}")
        e = ident(entity)
        n_empty, at = con.execute(
            f"SELECT count(*), min(CAST({ident(uc.timestamp_column)} AS VARCHAR)) FROM {ident(raw_stage)} "
            f"WHERE {e} IS NULL OR trim(CAST({e} AS VARCHAR)) = ''").fetchone()
        if n_empty:
            raise LandingFileError(f"{path}: column {entity!r} is empty in {n_empty} row(s) (e.g. at "
                                   f"{uc.timestamp_column}={at!r}); a label must name its entity")
        landing.check_target_values(con, ident(raw_stage), label, uc.task, path, allow_empty=False,
                                    where_col=[entity, uc.timestamp_column])
        kind = landing.target_type(uc)
        key = f"CAST({e} AS VARCHAR), {ts}"
        clash = con.execute(
            f"SELECT CAST({e} AS VARCHAR), CAST({ts} AS VARCHAR), list(DISTINCT CAST({ident(label)} AS {kind})) "
            f"FROM {ident(raw_stage)} GROUP BY {key} HAVING count(DISTINCT CAST({ident(label)} AS {kind})) > 1 "
            "ORDER BY 2, 1 LIMIT 1").fetchone()
        if clash:
            raise LandingFileError(f"{path}: rows {entity}={clash[0]!r}, {uc.timestamp_column}={clash[1]!r} carry "
                                   f"different labels {sorted(clash[2])} in column {label!r}; keep one of them")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {ident(staging)} AS
                SELECT DISTINCT CAST({e} AS VARCHAR) AS {ident(uc.entity_column)}, {ts} AS {ident(uc.timestamp_column)},
                       CAST({ident(label)} AS {kind}) AS {ident(uc.target_column)},
                       CAST(? AS VARCHAR) AS _source_file, CAST(? AS BIGINT) AS {ident(ORDER)}
                FROM {ident(raw_stage)}""", [str(path), f.mtime_ns])
        total = con.execute(f"SELECT count(*) FROM {ident(raw_stage)}").fetchone()[0]
        distinct = con.execute(f"SELECT count(*) FROM {ident(staging)}").fetchone()[0]
        return int(distinct), int(total - distinct)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {ident(raw_stage)}")


def _window(uc: UseCase, alias: str = "") -> str:
    ts = f"{alias}{ident(uc.timestamp_column)}"
    return f"{ts} >= ? AND {ts} < ?"


def _raw_rows(uc: UseCase) -> str:
    """raw.<uc>'s rows in the window (2 parameters), one per (entity, timestamp), the latest
    load winning as in the staging model."""
    e, ts = ident(uc.entity_column), ident(uc.timestamp_column)
    # A subquery rather than QUALIFY: the same SQL runs on DuckDB and PostgreSQL.
    return (f"""SELECT _e, _entity, _ts, _target FROM (
                    SELECT CAST({e} AS VARCHAR) AS _e, {e} AS _entity, {ts} AS _ts, {ident(uc.target_column)} AS _target,
                           row_number() OVER (PARTITION BY {e}, {ts} ORDER BY _loaded_at DESC, _source_file DESC) AS _rn
                    FROM {qualified(uc.raw_table)} WHERE {_window(uc)}) AS _ranked
                WHERE _rn = 1""")


def load_labels_window(con, uc: UseCase, start: dt.datetime, end: dt.datetime,
                       log=None, last_day: dt.date | None = None) -> LabelLoad:
    """Replace the labels of events in [start, end) in labels.<use case> with what the label
    files hold for it (see the module's rules). A file whose current version cannot be read
    keeps the labels its last good version stored (as the oldest file). Sets the session to the use case's zone."""
    _require_source(uc)
    landing.in_zone(con, uc.timezone)
    ensure_table(con, uc)
    scan = landing.scan_landing(uc.labels.path(), uc.labels.pattern, "labels.pattern")
    key = index_key(uc)
    notes = list(scan.ignored)
    unreadable = landing.refresh_index(con, uc, scan.files, log, index_key=key, required=required_columns(uc),
                                       what=WHAT, notes=notes)
    unreadable.update(scan.refused)
    paths = landing.files_for_window(con, uc, start, end, index_key=key)
    by_path = {str(f.path): f for f in scan.files}
    kept = [str(p) for p in paths if str(p) in unreadable]
    read = [p for p in paths if str(p) not in unreadable and str(p) in by_path]
    table, e, ts, target = (qualified(labels_table(uc)), ident(uc.entity_column), ident(uc.timestamp_column),
                            ident(uc.target_column))
    cols = f"{e}, {ts}, {target}, _source_file, {ident(ORDER)}"
    staged, duplicates = [], 0
    window = [start, end]
    # The files are staged and the window's labels worked out in DuckDB (on PostgreSQL an
    # in-memory one holding the window's stored labels); only the result is written.
    with portable.files_connection(con) as reader:
        try:
            errors = []  # every failing file is named, not only the first
            for i, p in enumerate(read):
                name = f"_label_stage_{i}"
                staged.append(name)
                try:
                    duplicates += stage_labels(reader, uc, by_path[str(p)], name, start, end)[1]
                except LandingFileError as exc:
                    errors.append(exc)
            if errors:
                raise LandingFileError.of_files(errors, "label")
            for p in read:
                if not landing._unchanged(by_path[str(p)]):
                    raise LandingFileError(landing.changed_while_read(by_path[str(p)]) + "; nothing was written")
            portable.pull(con, reader, "_label_stored", f"SELECT {cols}, _loaded_at FROM {table} WHERE {_window(uc)}",
                          window, {uc.entity_column: "VARCHAR", uc.timestamp_column: "TIMESTAMP",
                                   uc.target_column: landing.target_type(uc), "_source_file": "VARCHAR", ORDER: "BIGINT",
                                   "_loaded_at": "TIMESTAMP"})
            # Every candidate label of the window: the files read now, and the kept rows of files
            # whose new version is unreadable (as the oldest: a readable file's label wins).
            union = " UNION ALL ".join(
                [f"SELECT {cols} FROM {ident(s)}" for s in staged]
                + [f"SELECT {e}, {ts}, {target}, _source_file, -1 AS {ident(ORDER)} FROM _label_stored "
                   "WHERE list_contains(?, _source_file)"])
            reader.execute(f"CREATE OR REPLACE TEMP TABLE _label_candidates AS {union}", [kept])
            conflicting = reader.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM _label_candidates GROUP BY {e}, {ts} "
                f"HAVING count(DISTINCT {target}) > 1)").fetchone()[0]
            reader.execute(f"""CREATE OR REPLACE TEMP TABLE _label_window AS SELECT * FROM _label_candidates
                               QUALIFY row_number() OVER (PARTITION BY {e}, {ts}
                                                          ORDER BY {ident(ORDER)} DESC, _source_file DESC) = 1""")
            new, changed, removed = reader.execute(
                f"""SELECT count(*) FILTER (WHERE o.{target} IS NULL),
                           count(*) FILTER (WHERE n.{target} IS NOT NULL AND o.{target} <> n.{target}),
                           count(*) FILTER (WHERE n.{target} IS NULL)
                    FROM _label_window n FULL OUTER JOIN _label_stored o USING ({e}, {ts})""").fetchone()
            kept_rows = {p: int(n) for p, n in reader.execute(
                "SELECT _source_file, count(*) FROM _label_stored WHERE list_contains(?, _source_file) GROUP BY 1",
                [kept]).fetchall()}
            con.execute("BEGIN TRANSACTION")
            try:
                portable.lock_table(con, labels_table(uc))
                con.execute(f"DELETE FROM {table} WHERE {_window(uc)}", window)
                # _loaded_at is when the row's label arrived: a label stored earlier with the same
                # value keeps its time (mlops_assets.serving.predictions judges served predictions by it).
                portable.insert_from(
                    con, labels_table(uc), reader,
                    f"SELECT n.{e}, n.{ts}, n.{target}, n._source_file, "
                    f"coalesce(o._loaded_at, timezone('UTC', now())) AS _loaded_at, n.{ident(ORDER)} "
                    f"FROM _label_window n LEFT JOIN _label_stored o "
                    f"ON o.{e} = n.{e} AND o.{ts} = n.{ts} AND o.{target} = n.{target}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            for s in [*staged, "_label_candidates", "_label_window", "_label_stored"]:
                reader.execute(f"DROP TABLE IF EXISTS {ident(s)}")
    per_day = {str(d): int(n) for d, n in con.execute(
        f"SELECT CAST({ts} AS DATE), count(*) FROM {table} WHERE {_window(uc)} GROUP BY 1 ORDER BY 1",
        window).fetchall()}
    orphans, examples, overriding = _against_raw(con, uc, start, end)
    for p, n in kept_rows.items():
        unreadable[p] += f"; kept the {n} label(s) its last good version loaded for this window"
    outside = landing.rows_outside(con, uc, uc.first_day, last_day, index_key=key) if last_day else {}
    counts = labelled_counts(con, uc, start, end)
    result = LabelLoad(
        rows=sum(per_day.values()), files=tuple(str(p) for p in read),
        fingerprints=tuple(landing.fingerprint(by_path[str(p)]) for p in read), labels_per_day=per_day,
        new=int(new), changed=int(changed), removed=int(removed), conflicting=int(conflicting),
        duplicates=duplicates, without_rows=orphans, without_rows_examples=tuple(examples),
        overriding_raw=overriding, coverage={d: round(n / r, 6) for d, (n, r) in counts.items()},
        labelled_rows={d: n for d, (n, _) in counts.items()}, unreadable=unreadable,
        kept_rows=kept_rows, outside=outside, notes=tuple(notes))
    if log:
        log(f"{labels_table(uc)} [{start:%Y-%m-%d}, {end:%Y-%m-%d}): {result.rows} label(s) from {len(read)} "
            f"file(s): {result.new} new, {result.changed} changed, {result.removed} removed, "
            f"{result.conflicting} conflicting between files, {result.without_rows} without a row in {uc.raw_table}")
    return result


def _against_raw(con, uc: UseCase, start: dt.datetime,
                 end: dt.datetime) -> tuple[int, list[str], int]:
    """Labels of the window whose row is not in raw (count, up to 5 examples), and labels that
    differ from the target the feature file carried."""
    table, e, ts, target = (qualified(labels_table(uc)), ident(uc.entity_column), ident(uc.timestamp_column),
                            ident(uc.target_column))
    if not landing.table_exists(con, uc.raw_table):
        rows = con.execute(f"SELECT {e}, CAST({ts} AS VARCHAR) FROM {table} WHERE {_window(uc)} ORDER BY 2, 1",
                           [start, end]).fetchall()
        return len(rows), [f"{a} @ {b}" for a, b in rows[:5]], 0
    joined = (f"FROM {table} l LEFT JOIN ({_raw_rows(uc)}) r ON r._e = l.{e} AND r._ts = l.{ts} "
              f"WHERE {_window(uc, 'l.')}")
    params = [start, end, start, end]
    n, overriding = con.execute(
        f"SELECT count(*) FILTER (WHERE r._e IS NULL), count(*) FILTER (WHERE r._target <> l.{target}) {joined}",
        params).fetchone()
    examples = [f"{a} @ {b}" for a, b in con.execute(
        f"SELECT l.{e}, CAST(l.{ts} AS VARCHAR) {joined} AND r._e IS NULL ORDER BY 2, 1 LIMIT 5", params).fetchall()]
    return int(n), examples, int(overriding)


def outcomes(con, uc: UseCase, start: dt.datetime | dt.date,
             end: dt.datetime | dt.date):
    """The rows of raw.<use case> with a timestamp in [start, end) that have a label, with their
    authoritative label: the label file's when there is one, else the target the feature file
    carried. Columns: the use case's entity and timestamp columns, `label` (0/1 int) and
    `label_source` ('labels' or 'raw'), ordered by timestamp and entity. Rows are those of raw
    (one per entity and timestamp); labels for rows that never arrived are not outcomes."""
    import pandas as pd

    start, end = _as_datetime(start), _as_datetime(end)
    e, ts = ident(uc.entity_column), ident(uc.timestamp_column)
    columns = [uc.entity_column, uc.timestamp_column, LABEL, "label_source"]
    if not landing.table_exists(con, uc.raw_table):
        return pd.DataFrame(columns=columns)
    has_labels = landing.table_exists(con, labels_table(uc))
    join, label, source = "", "r._target", "'raw'"
    params = [start, end]
    if has_labels:
        join = (f"LEFT JOIN (SELECT * FROM {qualified(labels_table(uc))} WHERE {_window(uc)}) l "
                f"ON l.{e} = r._e AND l.{ts} = r._ts")
        label = f"coalesce(l.{ident(uc.target_column)}, r._target)"
        source = f"CASE WHEN l.{ident(uc.target_column)} IS NOT NULL THEN 'labels' ELSE 'raw' END"
        params = [start, end, start, end]
    return con.execute(
        f"""SELECT r._entity AS {e}, r._ts AS {ts}, CAST({label} AS {landing.target_type(uc)}) AS {ident(LABEL)},
                   {source} AS label_source
            FROM ({_raw_rows(uc)}) r {join} WHERE {label} IS NOT NULL ORDER BY 2, 1""", params).df()


def coverage(con, uc: UseCase, start: dt.datetime | dt.date,
             end: dt.datetime | dt.date) -> dict[str, float]:
    """Per day of [start, end) that has rows in raw: labelled rows / rows, where a row is
    labelled by a label file or by its own target (one row per entity and timestamp)."""
    return {d: round(n / rows, 6) for d, (n, rows) in labelled_counts(con, uc, start, end).items()}


def labelled_counts(con, uc: UseCase, start: dt.datetime | dt.date,
                    end: dt.datetime | dt.date) -> dict[str, tuple[int, int]]:
    """Per day of [start, end) that has rows in raw: (labelled rows, rows), a row labelled by a
    label file or by its own target (one row per entity and timestamp)."""
    start, end = _as_datetime(start), _as_datetime(end)
    if not landing.table_exists(con, uc.raw_table):
        return {}
    e, ts = ident(uc.entity_column), ident(uc.timestamp_column)
    label, join, params = "r._target", "", [start, end]
    if landing.table_exists(con, labels_table(uc)):
        join = (f"LEFT JOIN (SELECT * FROM {qualified(labels_table(uc))} WHERE {_window(uc)}) l "
                f"ON l.{e} = r._e AND l.{ts} = r._ts")
        label, params = f"coalesce(l.{ident(uc.target_column)}, r._target)", [start, end, start, end]
    return {str(d): (int(n), int(rows)) for d, n, rows in con.execute(
        f"SELECT CAST(r._ts AS DATE), count({label}), count(*) FROM ({_raw_rows(uc)}) r {join} "
        "GROUP BY 1 ORDER BY 1", params).fetchall()}


def _as_datetime(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.combine(value, dt.time())


def label_days(con: duckdb.DuckDBPyConnection, uc: UseCase, path: Path) -> dict[dt.date, int]:
    """Labels per event day of a label file (what the label sensor plans with)."""
    return landing.file_days(con, path, uc.timestamp_column, uc.timezone)
