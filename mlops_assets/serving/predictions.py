"""The ``predictions.<use case>`` table: one row per scored example, replaced a time window at a
time so re-scoring a day never duplicates rows."""
from __future__ import annotations

import datetime as dt

from mlops_assets.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase

SCHEMA = "predictions"
COLUMNS = ("score", "model_version", "scored_at")


def predictions_table(uc: UseCase) -> str:
    return f"{SCHEMA}.{uc.name}"


def replace_window(con, uc: UseCase, frame, start: dt.datetime, end: dt.datetime) -> int:
    """Replace the rows whose timestamp is in [start, end) by ``frame`` in one transaction.
    ``frame`` has the use case's entity and timestamp columns plus COLUMNS. Returns the number
    of rows deleted."""
    col = uc.timestamp_column
    table, ts = qualified(predictions_table(uc)), ident(col)
    outside = frame[(frame[col] < start) | (frame[col] >= end)] if len(frame) else frame
    if len(outside):
        raise ValueError(f"{len(outside)} prediction row(s) fall outside [{start}, {end})")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(SCHEMA)}")
    con.register("prediction_frame", frame)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM prediction_frame LIMIT 0")
        deleted = con.execute(f"DELETE FROM {table} WHERE {ts} >= ? AND {ts} < ?", [start, end]).fetchone()[0]
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM prediction_frame")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("prediction_frame")
    return int(deleted)
