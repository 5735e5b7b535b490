"""Metadata people read on the assets: owners, tags, code versions and column schemas.

Kept apart from the builders so every domain labels its assets the same way.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import dagster as dg

from mlops_assets import settings

OWNERS = ["team:ml-platform"]


def tags(layer: str, uc_name: str) -> dict[str, str]:
    """Asset tags: the layer of the chain (ingest, features, training, scoring, monitoring) and the use case."""
    return {"layer": layer, "use_case": uc_name}


def source_code_version(*relative_paths: str) -> str:
    """A short hash of the source files (relative to the package) that compute an asset, so
    the asset's code_version changes exactly when that code does. A missing file is an error:
    a renamed module must not quietly freeze the version."""
    digest = hashlib.sha256()
    for rel in sorted(relative_paths):
        path = settings.PACKAGE_DIR / rel
        if not path.is_file():
            raise FileNotFoundError(f"code_version source {path} does not exist (renamed? update the asset's list)")
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def column_schema(columns: Iterable[tuple[str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(type_)) for name, type_ in columns])


def duckdb_columns(con, table: str) -> list[tuple[str, str]]:
    """(name, type) of a DuckDB table ("schema.table" or "table"), in column order."""
    schema, _, name = table.rpartition(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema or "main", name]).fetchall()
    if not rows:
        raise LookupError(f"table {table} not found in the warehouse, no column schema to record")
    return [(str(n), str(t)) for n, t in rows]


def duckdb_column_schema(con, table: str) -> dg.TableSchema:
    return column_schema(duckdb_columns(con, table))
