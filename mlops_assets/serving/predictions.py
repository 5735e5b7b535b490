"""The ``predictions.<use case>`` table: one row per scored example, replaced a time window at a
time so re-scoring a day never duplicates rows."""
from __future__ import annotations

import datetime as dt

from mlops_assets.sql import ident
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
    ts = ident(col)
    outside = frame[(frame[col] < start) | (frame[col] >= end)] if len(frame) else frame
    if len(outside):
        raise ValueError(f"{len(outside)} prediction row(s) fall outside [{start}, {end})")
    from mlops_assets.warehouse import portable

    return portable.replace_window(con, predictions_table(uc), frame, f"{ts} >= ? AND {ts} < ?", [start, end])
