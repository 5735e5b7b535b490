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
            raise ValueError(f"the {name} split has a single target class ({part[target_col].iloc[0]!r}); "
                             "a model needs at least two to learn or be judged")
    info = SplitInfo(
        train_rows=len(train), holdout_rows=len(holdout),
        train_start=str(min(train_days).date()), train_end=str(max(train_days).date()),
        holdout_start=str(pd.Timestamp(holdout_start).date()), holdout_end=str(pd.Timestamp(distinct[-1]).date()),
        train_positive_rate=_rate(train[target_col]), holdout_positive_rate=_rate(holdout[target_col]),
    )
    return train, holdout, info


def _rate(target: pd.Series) -> float:
    """The mean of a 0/1 target (its positive rate) or of a numeric one; NaN for class labels."""
    return float(target.mean()) if pd.api.types.is_numeric_dtype(target) else float("nan")


def validation_split(train: pd.DataFrame, ts_col: str, validation_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training rows split in time once more for choosing among candidates: the last
    ``validation_days`` days of the training window validate, the days before them fit. So the
    choice never sees the holdout the gates judge the winner on."""
    days = pd.to_datetime(train[ts_col]).dt.normalize()
    distinct = sorted(days.unique())
    if len(distinct) <= validation_days:
        raise ValueError(f"model.candidates needs more than split.validation_days={validation_days} training days to "
                         f"compare the candidates on; the training window has {len(distinct)}")
    first = distinct[-validation_days]
    return train[days < first], train[days >= first]


RECENT_HOLDOUT_SHARE = 0.5


def recent_slice_split(df: pd.DataFrame, ts_col: str, target_col: str, holdout_days: int,
                       window_days: int | None = None, holdout_share: float = RECENT_HOLDOUT_SHARE,
                       seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, SplitInfo]:
    """The split of a retrain fired by drift: the last ``holdout_days`` days are split row-wise
    (seeded, per day) into a holdout (``holdout_share`` of each day's rows) and training rows, so
    the new model learns from the drifted days while the gates still judge it on recent rows it
    did not see. The ``window_days`` days before them train too. With time_split the drifted
    days would sit in the holdout only and the new model would never see them."""
    import numpy as np

    train, holdout, info = time_split(df, ts_col, target_col, holdout_days, window_days)
    if not 0.0 < holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in (0, 1), got {holdout_share}")
    days = pd.to_datetime(holdout[ts_col]).dt.normalize()
    rng = np.random.default_rng(seed)
    to_holdout = np.zeros(len(holdout), dtype=bool)
    for day in sorted(days.unique()):  # the same share of every recent day on both sides
        idx = np.flatnonzero((days == day).to_numpy())
        chosen = rng.choice(idx, size=max(1, int(round(len(idx) * holdout_share))), replace=False)
        to_holdout[chosen] = True
    recent_train, recent_holdout = holdout[~to_holdout], holdout[to_holdout]
    train = pd.concat([train, recent_train])
    for name, part in (("training", train), ("holdout", recent_holdout)):
        if part[target_col].nunique() < 2:
            raise ValueError(f"the {name} split has a single target class ({part[target_col].iloc[0]!r}); "
                             "a model needs at least two to learn or be judged")
    info = SplitInfo(
        train_rows=len(train), holdout_rows=len(recent_holdout), train_start=info.train_start,
        train_end=info.holdout_end, holdout_start=info.holdout_start, holdout_end=info.holdout_end,
        train_positive_rate=_rate(train[target_col]),
        holdout_positive_rate=_rate(recent_holdout[target_col]))
    return train, recent_holdout, info
