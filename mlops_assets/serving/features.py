"""Features of landing-shaped rows, computed by the use case's dbt SQL.

A client has what a landing file has (the raw columns), not the columns dbt derives from them
(``charges_per_tenure_month``...). The server compiles the use case's features model and the
models it reads (``dbt compile --select +<model>`` on an empty in-memory DuckDB, so the SQL is
DuckDB's and the day window is the whole calendar), and runs that SQL over each request's rows in
a private in-memory DuckDB where they stand as the raw table (``raw.<use case>``). Training,
batch scoring and serving so read one definition of every feature: change the model's SQL and
all three change with it.

Each request row gets its own entity value (its index) and the loader's columns, so the model's
de-duplication of (entity, timestamp) never merges two rows of a request: one row in, one row
of features out, in order. The timestamp is the row's (parsed as a landing file's, in the use
case's time zone), or now when the row has none.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.serving.validation import FeatureSpec, PayloadError, _json_type
from mlops_assets.warehouse.sql import ident
from mlops_assets import settings
from mlops_assets.settings import dbt_executable

# Columns the loader adds to every raw row (ingest/landing.py): filled in, never asked for.
LOADER_COLUMNS = ("_loaded_at", "_source_file")
REQUEST_FILE = "request"
_MISSING = (re.compile(r'Referenced column "([^"]+)" not found'),
            re.compile(r'Table "[^"]+" does not have a column named "([^"]+)"'),
            re.compile(r'Column "([^"]+)" referenced that exists in the SELECT clause'))


class FeatureSQLError(RuntimeError):
    """The features model cannot be compiled or run over request rows (a setup problem)."""


@dataclass(frozen=True)
class View:
    schema: str
    name: str
    sql: str


@dataclass(frozen=True)
class LandingSpec:
    """What a landing-shaped row must carry and how its features are computed."""
    use_case: str
    model: str                      # the dbt features model
    raw_schema: str
    raw_name: str
    views: tuple[View, ...]         # compiled models, each after the ones it reads
    raw_columns: tuple[str, ...]    # every column the SQL reads from the raw table
    entity: str
    timestamp: str
    target: str
    timezone: str
    features: FeatureSpec

    @property
    def required(self) -> tuple[str, ...]:
        """Columns a landing row must have (null allowed: missing, as in a file's empty cell)."""
        optional = {self.entity.lower(), self.timestamp.lower(), self.target.lower(), *LOADER_COLUMNS}
        return tuple(c for c in self.raw_columns if c.lower() not in optional)

    @property
    def row_columns(self) -> tuple[str, ...]:
        """The columns of a landing row, as a landing file has them (loader columns left out)."""
        return tuple(c for c in self.raw_columns if c not in LOADER_COLUMNS)

    def to_json(self) -> str:
        return json.dumps({k: ([v.__dict__ for v in getattr(self, k)] if k == "views" else
                               getattr(self, k).__dict__ if k == "features" else getattr(self, k))
                           for k in self.__dataclass_fields__}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LandingSpec:
        d = json.loads(text)
        d["views"] = tuple(View(**v) for v in d["views"])
        d["features"] = FeatureSpec(tuple(d["features"]["numeric"]), tuple(d["features"]["categorical"]))
        d["raw_columns"] = tuple(d["raw_columns"])
        return cls(**d)

    # --- computing features ---------------------------------------------------------------

    def columns_of(self, rows: list) -> dict[str, list]:
        """Feature columns (spec order) of landing-shaped rows; PayloadError (422) naming the
        row and the column when a row cannot be used."""
        raw = _raw_columns(rows, self)
        return self._run(raw, range(len(rows)))

    def feature_records(self, rows: list) -> list[dict]:
        """The features of landing-shaped rows as records, typed as the features model types
        them (integers stay integers, as the logged model's signature expects)."""
        raw = _raw_columns(rows, self)
        self._run(raw, range(len(rows)))  # the checks and the messages of columns_of
        frame = self._query(raw, list(range(len(rows))))
        frame = frame.set_axis([int(e) for e in frame[self.entity]]).loc[list(range(len(rows)))]
        return json.loads(frame[list(self.features.columns)].to_json(orient="records"))

    def _run(self, raw: dict[str, list], index) -> dict[str, list]:
        import duckdb

        index = list(index)
        try:
            frame = self._query(raw, index)
        except duckdb.Error as exc:
            bad = self._first_failing_row(raw, index)
            message = str(exc).strip().splitlines()[0]
            if bad is None:
                raise FeatureSQLError(f"{self.model} cannot run over the request rows: {message}") from exc
            raise PayloadError(422, f"row {bad}: {self.model} cannot compute the features from it: "
                                    f"{_first_line(bad, raw, self)}") from exc
        got = [int(e) for e in frame[self.entity]]
        if len(got) != len(set(got)):
            dup = next(e for e in got if got.count(e) > 1)
            raise FeatureSQLError(f"{self.model} gave {got.count(dup)} rows for request row {dup}: serving needs one row "
                                  f"of features per row")
        missing = sorted(set(index) - set(got))
        if missing:
            i = missing[0]
            raise PayloadError(422, f"row {i}: {self.model} gives no row for it (filtered out by its SQL, e.g. "
                                    f"{self.timestamp!r} {raw[self.timestamp][index.index(i)]!r} outside its window)")
        frame = frame.set_axis(got).loc[index]
        out: dict[str, list] = {}
        for c in self.features.numeric:
            out[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
                      for v in frame[c].astype(object).tolist()]
        for c in self.features.categorical:
            out[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                      for v in frame[c].astype(object).tolist()]
        return out

    def _query(self, raw: dict[str, list], index: list[int]):
        import duckdb
        import pyarrow as pa

        table = pa.table({c: _arrow(raw[c], c, self, index) for c in raw})
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET TimeZone = '{self.timezone}'")
            con.register("_request_rows", table)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(self.raw_schema)}")
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            ts = ident(self.timestamp)
            if self.timestamp in raw:  # parsed as the loader parses a file's timestamps (landing.zoned_ts)
                bad = con.execute(f"SELECT {ident(self.entity)}, {ts} FROM _request_rows WHERE {ts} IS NOT NULL "
                                  f"AND TRY_CAST({ts} AS TIMESTAMPTZ) IS NULL ORDER BY 1 LIMIT 1").fetchone()
                if bad:
                    raise PayloadError(422, f"row {bad[0]} column {self.timestamp!r} is not a timestamp (ISO 8601, "
                                            f"e.g. '2026-01-05T10:00:00'): {str(bad[1])[:100]!r}")
            cols = []
            for c in self.raw_columns:
                if c == self.timestamp:
                    cols.append(f"coalesce(CAST(TRY_CAST({ident(c)} AS TIMESTAMPTZ) AS TIMESTAMP), "
                                f"CAST('{now.isoformat()}' AS TIMESTAMP)) AS {ident(c)}")
                elif c == "_loaded_at":
                    cols.append(f"CAST('{now.isoformat()}' AS TIMESTAMP) AS {ident(c)}")
                elif c == "_source_file":
                    cols.append(f"CAST('{REQUEST_FILE}' AS VARCHAR) AS {ident(c)}")
                else:
                    cols.append(ident(c))
            con.execute(f"CREATE TABLE {ident(self.raw_schema)}.{ident(self.raw_name)} AS "
                        f"SELECT {', '.join(cols)} FROM _request_rows")
            for v in self.views:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(v.schema)}")
                con.execute(f"CREATE VIEW {ident(v.schema)}.{ident(v.name)} AS {v.sql}")
            last = self.views[-1]
            return con.execute(f"SELECT CAST({ident(self.entity)} AS VARCHAR) AS {ident(self.entity)}, "
                               f"{', '.join(ident(c) for c in self.features.columns)} "
                               f"FROM {ident(last.schema)}.{ident(last.name)}").df()
        finally:
            con.close()

    def _first_failing_row(self, raw: dict[str, list], index: list[int]) -> int | None:
        """The first request row the SQL fails on alone (bisection: O(log n) runs)."""
        import duckdb

        def fails(idx):
            try:
                self._query({c: [raw[c][index.index(i)] for i in idx] for c in raw}, idx)
                return False
            except duckdb.Error:
                return True

        candidates = index
        if not fails(candidates):
            return None
        while len(candidates) > 1:
            half = candidates[:len(candidates) // 2]
            candidates = half if fails(half) else candidates[len(half):]
        return candidates[0]


def _first_line(i: int, raw: dict[str, list], spec: LandingSpec) -> str:
    import duckdb

    try:
        spec._query({c: [raw[c][i]] for c in raw}, [i])
    except duckdb.Error as exc:
        return str(exc).strip().splitlines()[0]
    return "it fails only together with other rows"


def _arrow(values: list, column: str, spec: LandingSpec, index: list[int]):
    import pyarrow as pa

    if column == spec.entity:
        return pa.array(index, type=pa.int64())
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, str) for v in present):
        return pa.array(values, type=pa.string())
    if present and all(isinstance(v, int) and -2**63 <= v < 2**63 for v in present):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, (int, float)) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if present:  # numbers and strings in one column: as text, as a CSV column would be
        return pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values],
                        type=pa.string())
    # Entirely empty: typed like the feature it feeds, else as text.
    return pa.array(values, type=pa.float64() if column in spec.features.numeric else pa.string())


def _raw_columns(rows: list, spec: LandingSpec) -> dict[str, list]:
    """The raw columns of landing rows, checked row by row: every required column present, numbers
    for numeric features, text for categorical ones and the timestamp."""
    numeric, categorical = set(spec.features.numeric), set(spec.features.categorical)
    columns: dict[str, list] = {c: [] for c in spec.raw_columns if c not in LOADER_COLUMNS}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PayloadError(422, f"row {i} must be an object of column values, got {_json_type(row)}")
        by_lower = {k.lower(): k for k in row}  # a name differing only in case is the same column, as in a file
        missing = [c for c in spec.required if c not in row and c.lower() not in by_lower]
        if missing:
            raise PayloadError(422, f"row {i} is missing column(s) {missing}: send a landing row of {spec.use_case} "
                                    f"(columns {list(spec.row_columns)}; run `mlops-assets serve {spec.use_case} "
                                    f"--example`) or a row with every feature {list(spec.features.columns)}")
        for c in columns:
            v = row[c] if c in row else row.get(by_lower.get(c.lower(), c))
            if c == spec.entity:
                v = None  # replaced by the row's index (see the module's docstring)
            elif c == spec.timestamp:
                if v is not None and not isinstance(v, str):
                    raise PayloadError(422, f"row {i} column {c!r} must be a timestamp string (ISO 8601, e.g. "
                                            f"'2026-01-05T10:00:00') or null, got {_json_type(v)} {v!r}")
            elif v is not None and c in numeric:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise PayloadError(422, f"row {i} column {c!r} must be a number or null, got {_json_type(v)} {v!r}")
                if isinstance(v, float) and not math.isfinite(v):
                    raise PayloadError(422, f"row {i} column {c!r} must be finite, got {v!r}")
            elif v is not None and c in categorical:
                if not isinstance(v, str):
                    raise PayloadError(422, f"row {i} column {c!r} must be a string or null, got {_json_type(v)} {v!r}")
            elif v is not None and (isinstance(v, (bool, list, dict)) or not isinstance(v, (int, float, str))):
                raise PayloadError(422, f"row {i} column {c!r} must be a number, a string or null, "
                                        f"got {_json_type(v)} {v!r}")
            elif isinstance(v, float) and not math.isfinite(v):
                raise PayloadError(422, f"row {i} column {c!r} must be finite, got {v!r}")
            columns[c].append(v)
    return columns


# --- compiling ------------------------------------------------------------------------------


def compile_landing_spec(uc, features: FeatureSpec, log=None) -> LandingSpec | None:
    """The LandingSpec of a use case, from `dbt compile` of its features model and the models it
    reads; None when the use case has no dbt model (its raw columns are its features)."""
    model = uc.features.dbt_model
    if not model:
        return None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-serve-dbt-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_DBT_MIN_DATE", "MLOPS_DBT_MAX_DATE")}
        # An empty in-memory DuckDB: the SQL is DuckDB's whatever the profile, nothing is read
        # from or written to a warehouse, and the day window is the vars' default (every day).
        env |= {"MLOPS_DBT_TARGET": "local", "MLOPS_DUCKDB_PATH": ":memory:", "DO_NOT_TRACK": "1"}
        proc = subprocess.run(
            [dbt_executable(), "compile", "--select", f"+{model}", "--project-dir", str(settings.DBT_PROJECT_DIR),
             "--profiles-dir", str(settings.DBT_PROJECT_DIR), "--target", "local", "--quiet",
             "--target-path", str(Path(tmp) / "target"), "--log-path", str(Path(tmp) / "logs")],
            capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise FeatureSQLError(f"dbt compile of {model} failed ({proc.returncode}): "
                                  f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        manifest = json.loads((Path(tmp) / "target" / "manifest.json").read_text())
    spec = landing_spec_from_manifest(uc, features, manifest)
    if log:
        log(f"{uc.name}: landing rows get their features from {model}'s compiled SQL "
            f"({time.perf_counter() - started:.1f}s); a landing row has {list(spec.row_columns)}")
    return spec


def landing_spec_from_manifest(uc, features: FeatureSpec, manifest: dict) -> LandingSpec:
    model = uc.features.dbt_model
    nodes = manifest["nodes"]
    target = next((k for k, n in nodes.items() if n.get("resource_type") == "model" and n["name"] == model), None)
    if target is None:
        raise FeatureSQLError(f"dbt model {model!r} is not in the dbt project")
    raw_schema, raw_name = uc.raw_table.split(".", 1)
    raw_source = next((k for k, s in manifest["sources"].items()
                       if s["schema"] == raw_schema and (s.get("identifier") or s["name"]) == raw_name), None)
    order: list[str] = []

    def visit(key: str) -> None:
        if key in order:
            return
        for dep in nodes[key]["depends_on"]["nodes"]:
            if dep in nodes and nodes[dep].get("resource_type") == "model":
                visit(dep)
        order.append(key)

    visit(target)
    views = []
    for key in order:
        n = nodes[key]
        if n.get("compiled_code") is None:
            raise FeatureSQLError(f"dbt model {n['name']} was not compiled")
        views.append(View(n["schema"], n.get("alias") or n["name"], n["compiled_code"]))
    other = sorted({s["schema"] + "." + (s.get("identifier") or s["name"])
                    for k, s in manifest["sources"].items() if k != raw_source
                    and any(s["relation_name"] in v.sql for v in views)})
    if other:
        raise FeatureSQLError(f"{model} reads {other} besides {uc.raw_table}: a request row cannot stand for them")
    base = LandingSpec(uc.name, model, raw_schema, raw_name, tuple(views), (uc.entity_column,), uc.entity_column,
                       uc.timestamp_column, uc.target_column, uc.timezone, features)
    return _discover_raw_columns(base)


def _discover_raw_columns(spec: LandingSpec) -> LandingSpec:
    """The raw columns the compiled SQL reads: bound against a raw table that grows by each
    column DuckDB's binder reports missing, until every view binds."""
    import duckdb

    known = list(spec.raw_columns)
    for _ in range(1000):
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"CREATE SCHEMA {ident(spec.raw_schema)}")
            con.execute(f"CREATE TABLE {ident(spec.raw_schema)}.{ident(spec.raw_name)} ("
                        + ", ".join(f"{ident(c)} {_probe_type(c, spec)}" for c in known) + ")")
            for v in spec.views:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(v.schema)}")
                con.execute(f"CREATE VIEW {ident(v.schema)}.{ident(v.name)} AS {v.sql}")
            last = spec.views[-1]
            have = [r[0] for r in con.execute(f"DESCRIBE {ident(last.schema)}.{ident(last.name)}").fetchall()]
        except duckdb.BinderException as exc:
            name = next((m.group(1) for p in _MISSING if (m := p.search(str(exc)))), None)
            if name is None or name in known:
                raise FeatureSQLError(f"{spec.model}'s compiled SQL does not bind over {spec.raw_schema}."
                                      f"{spec.raw_name}: {str(exc).strip().splitlines()[0]}") from exc
            known.append(name)
            continue
        finally:
            con.close()
        lacking = [c for c in (spec.entity, *spec.features.columns) if c not in have]
        if lacking:
            raise FeatureSQLError(f"{spec.model} has no column(s) {lacking}; it has {have}")
        return dataclasses.replace(spec, raw_columns=tuple(known))
    raise FeatureSQLError(f"{spec.model} reads too many columns to serve")


def _probe_type(column: str, spec: LandingSpec) -> str:
    if column in (spec.timestamp, "_loaded_at"):
        return "TIMESTAMP"
    if column in spec.features.numeric:
        return "DOUBLE"
    if column == spec.target:
        return "INTEGER"
    return "VARCHAR"
