"""Loading landing-zone batch files into DuckDB, with validation and a ledger.

Every file is checked before anything is written: it must parse, carry the use case's
timestamp, target and entity columns, have timestamps that parse and a binary target. The
whole batch is then written in one transaction, so a bad file leaves the warehouse exactly as
it was. The ledger (raw._ingested_files) remembers each file's fingerprint: an unchanged file is
skipped, a changed one has its old rows replaced.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mlops_assets.use_cases.config import UseCase

LEDGER = "raw._ingested_files"
TMP_PREFIXES = (".", "_", "~")


class LandingFileError(ValueError):
    """A batch file that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class LoadedFile:
    path: str
    rows: int
    min_ts: str | None
    max_ts: str | None
    replaced_rows: int


def list_landing_files(folder: Path, pattern: str) -> list[LandingFile]:
    """Batch files in the folder, oldest name first. Hidden and temporary files are ignored:
    writers are expected to write under such a name and rename when complete."""
    if not folder.is_dir():
        return []
    files = []
    for p in sorted(folder.glob(pattern)):
        if p.is_file() and not p.name.startswith(TMP_PREFIXES) and not p.name.endswith((".tmp", ".part")):
            st = p.stat()
            files.append(LandingFile(p.resolve(), st.st_size, st.st_mtime_ns))
    return files


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
            use_case VARCHAR, path VARCHAR, sha256 VARCHAR, size BIGINT, mtime_ns BIGINT,
            rows BIGINT, min_ts TIMESTAMP, max_ts TIMESTAMP, loaded_at TIMESTAMP,
            PRIMARY KEY (use_case, path))"""
    )


def pending_files(con: duckdb.DuckDBPyConnection, uc: UseCase, files: list[LandingFile]) -> list[tuple[LandingFile, str]]:
    """Files that are new, or whose content changed since they were loaded (with their hash)."""
    ensure_ledger(con)
    known = dict(con.execute(f"SELECT path, sha256 FROM {LEDGER} WHERE use_case = ?", [uc.name]).fetchall())
    out = []
    for f in files:
        digest = file_sha256(f.path)
        if known.get(str(f.path)) != digest:
            out.append((f, digest))
    return out


def _reader_sql(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return f"read_csv('{quoted}', header = true, delim = ',', quote = '\"', auto_detect = true, sample_size = -1)"
    if suffix == ".parquet":
        return f"read_parquet('{quoted}')"
    raise LandingFileError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")


def stage_file(con: duckdb.DuckDBPyConnection, uc: UseCase, f: LandingFile, staging: str) -> int:
    """Parse and validate one file into a temporary table. Raises LandingFileError naming the
    file and what is wrong; writes nothing outside the temp table."""
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {staging} AS SELECT * FROM {_reader_sql(f.path)}")
    except duckdb.Error as exc:
        raise LandingFileError(f"{f.path}: could not be parsed: {str(exc).splitlines()[0]}") from exc
    cols = [r[0] for r in con.execute(f"DESCRIBE {staging}").fetchall()]
    missing = [c for c in required_raw_columns(uc) if c not in cols]
    if missing:
        raise LandingFileError(f"{f.path}: missing required column(s) {missing}; the file has {cols}")
    ts, target = uc.timestamp_column, uc.target_column
    n_rows, bad_ts, first_bad_ts, null_ts = con.execute(
        f"""SELECT count(*),
                   count(*) FILTER (WHERE "{ts}" IS NOT NULL AND TRY_CAST("{ts}" AS TIMESTAMP) IS NULL),
                   min(CASE WHEN "{ts}" IS NOT NULL AND TRY_CAST("{ts}" AS TIMESTAMP) IS NULL THEN CAST("{ts}" AS VARCHAR) END),
                   count(*) FILTER (WHERE "{ts}" IS NULL)
            FROM {staging}"""
    ).fetchone()
    if bad_ts or null_ts:
        raise LandingFileError(
            f"{f.path}: column {ts!r} must hold timestamps; {bad_ts} value(s) do not parse "
            f"(e.g. {first_bad_ts!r}) and {null_ts} are empty"
        )
    # Through VARCHAR so that booleans ("yes", "true") and fractions are not quietly coerced.
    bad_target = con.execute(
        f"""SELECT count(*), min(CAST("{target}" AS VARCHAR)) FROM {staging}
            WHERE coalesce(TRY_CAST(CAST("{target}" AS VARCHAR) AS DOUBLE) NOT IN (0, 1), true)"""
    ).fetchone()
    if bad_target[0]:
        raise LandingFileError(
            f"{f.path}: column {target!r} must be 0 or 1; {bad_target[0]} row(s) are not (e.g. {bad_target[1]!r})"
        )
    return int(n_rows)


def required_raw_columns(uc: UseCase) -> list[str]:
    """Columns every raw file must carry: the keys and the target, and, when no dbt model sits
    in between, the features too (a dbt model may derive features in SQL)."""
    keys = [uc.entity_column, uc.timestamp_column, uc.target_column]
    return keys if uc.features.dbt_model else keys + uc.features.all


def load_files(con: duckdb.DuckDBPyConnection, uc: UseCase, pending: list[tuple[LandingFile, str]],
               log=None) -> list[LoadedFile]:
    """Validate every pending file, then write all of them in one transaction."""
    ensure_ledger(con)
    staged = []
    for i, (f, digest) in enumerate(pending):
        name = f"_stage_{i}"
        rows = stage_file(con, uc, f, name)
        staged.append((f, digest, name, rows))
        if log:
            log(f"validated {f.path.name}: {rows} rows")
    if not staged:
        return []
    ts = uc.timestamp_column
    loaded = []
    con.execute("BEGIN TRANSACTION")
    try:
        for f, digest, name, rows in staged:
            select = (f"""SELECT * REPLACE (CAST("{ts}" AS TIMESTAMP) AS "{ts}", CAST("{uc.target_column}" AS INTEGER) AS "{uc.target_column}"),
                          CAST(? AS VARCHAR) AS _source_file, now()::TIMESTAMP AS _loaded_at FROM {name}""")
            if not _table_exists(con, "raw", uc.name):
                con.execute(f"CREATE TABLE {uc.raw_table} AS {select} LIMIT 0", [str(f.path)])
            replaced = con.execute(f"DELETE FROM {uc.raw_table} WHERE _source_file = ?", [str(f.path)]).fetchone()[0]
            try:
                con.execute(f"INSERT INTO {uc.raw_table} BY NAME {select}", [str(f.path)])
            except duckdb.Error as exc:
                raise LandingFileError(
                    f"{f.path}: does not fit the existing table {uc.raw_table}: {str(exc).splitlines()[0]}"
                ) from exc
            min_ts, max_ts = con.execute(f'SELECT min("{ts}"), max("{ts}") FROM {name}').fetchone()
            con.execute(
                f"INSERT OR REPLACE INTO {LEDGER} VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), now()::TIMESTAMP)",
                [uc.name, str(f.path), digest, f.size, f.mtime_ns, rows, str(min_ts) if min_ts else None,
                 str(max_ts) if max_ts else None],
            )
            loaded.append(LoadedFile(str(f.path), rows, str(min_ts) if min_ts else None,
                                     str(max_ts) if max_ts else None, int(replaced)))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for _, _, name, _ in staged:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return loaded


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()[0])


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, _, table = qualified.rpartition(".")
    return _table_exists(con, schema or "main", table)


def raw_summary(con: duckdb.DuckDBPyConnection, uc: UseCase) -> dict:
    ts = uc.timestamp_column
    n, n_days, lo, hi, pos = con.execute(
        f'SELECT count(*), count(DISTINCT CAST("{ts}" AS DATE)), min("{ts}"), max("{ts}"), avg("{uc.target_column}") FROM {uc.raw_table}'
    ).fetchone()
    return {"rows": int(n), "days": int(n_days), "min_ts": str(lo), "max_ts": str(hi),
            "positive_rate": float(pos) if pos is not None else None}
