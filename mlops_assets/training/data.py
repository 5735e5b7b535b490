"""Reading and writing a use case's training set in the warehouse."""
from __future__ import annotations

import datetime as dt
import hashlib

from mlops_assets.use_cases.config import UseCase

SPLIT_COLUMN = "_split"


def training_table(uc: UseCase) -> str:
    return f"ml.{uc.name}_training_set"


def model_columns(uc: UseCase) -> list[str]:
    return [uc.entity_column, uc.timestamp_column, *uc.features.all, uc.target_column]


def frame_digest(df) -> str:
    """Content hash of a frame, recorded with each model so its training data is identifiable."""
    import pandas as pd

    return hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()[:16]


def window_start(last_day: dt.date, holdout_days: int, window_days: int | None) -> dt.date:
    """First day the training set reads: the holdout and the training window before it, in
    calendar days (with gaps in the data, fewer days of data than asked)."""
    if window_days is None:
        return dt.date.min
    return last_day - dt.timedelta(days=holdout_days + window_days - 1)


def read_split(con, uc: UseCase, split: str):
    df = con.execute(f"SELECT * FROM {training_table(uc)} WHERE {SPLIT_COLUMN} = ?", [split]).df()
    if df.empty:
        raise ValueError(f"{training_table(uc)} has no {split!r} rows: materialize the training set first")
    return df.drop(columns=[SPLIT_COLUMN])
