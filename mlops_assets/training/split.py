"""Time-based train/holdout split: the most recent days are held out, as in production where
a model is always judged on data newer than anything it saw."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class SplitInfo:
    train_rows: int
    holdout_rows: int
    train_start: str
    train_end: str
    holdout_start: str
    holdout_end: str
    train_positive_rate: float
    holdout_positive_rate: float


def time_split(df: pd.DataFrame, ts_col: str, target_col: str, holdout_days: int,
               window_days: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, SplitInfo]:
    """Hold out the last ``holdout_days`` calendar days present in the data; train on the
    ``window_days`` days before them (all earlier days when None)."""
    if ts_col not in df.columns:
        raise ValueError(f"timestamp column {ts_col!r} not in data (columns: {list(df.columns)})")
    if df.empty:
        raise ValueError("cannot split an empty data set")
    days = pd.to_datetime(df[ts_col]).dt.normalize()
    distinct = sorted(days.unique())
    if len(distinct) <= holdout_days:
        raise ValueError(
            f"need more than {holdout_days} days of data to hold out {holdout_days}; found {len(distinct)}"
        )
    holdout_start = distinct[-holdout_days]
    train_days = [d for d in distinct if d < holdout_start]
    if window_days is not None:
        train_days = train_days[-window_days:]
    in_holdout = days >= holdout_start
    in_train = days.isin(train_days)
    train, holdout = df[in_train], df[in_holdout]
    for name, part in (("training", train), ("holdout", holdout)):
        if part[target_col].nunique() < 2:
            raise ValueError(f"the {name} split has a single target class; a classifier needs both")
    info = SplitInfo(
        train_rows=len(train), holdout_rows=len(holdout),
        train_start=str(min(train_days).date()), train_end=str(max(train_days).date()),
        holdout_start=str(pd.Timestamp(holdout_start).date()), holdout_end=str(pd.Timestamp(distinct[-1]).date()),
        train_positive_rate=float(train[target_col].mean()), holdout_positive_rate=float(holdout[target_col].mean()),
    )
    return train, holdout, info
