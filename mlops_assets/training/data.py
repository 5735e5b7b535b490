"""Reading and writing a use case's training set in the warehouse."""
from __future__ import annotations

import datetime as dt
import hashlib

from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase
from mlops_assets.ingest import labels, landing
from mlops_assets.warehouse import portable

SPLIT_COLUMN = "_split"


def training_table(uc: UseCase) -> str:
    """The table's name as recorded in metadata (unquoted); quote it with `qualified`."""
    return f"ml.{uc.name}_training_set"


def model_columns(uc: UseCase) -> list[str]:
    return [uc.entity_column, uc.timestamp_column, *uc.features.all, uc.target_column]


def order_by(uc: UseCase) -> str:
    """A total order on the training rows: time, entity, then every other column, so two builds
    from the same data hand the model the same rows in the same order (rows equal in every

    column are interchangeable). Row order changes what a fitted model is."""
    first = [uc.timestamp_column, uc.entity_column]
    rest = [c for c in model_columns(uc) if c not in first]
    return ", ".join(f"{ident(c)} NULLS LAST" for c in first + rest)


def frame_digest(df) -> str:
    """Content hash of a frame, recorded with each model so its training data is identifiable.
    Independent of row order (the sorted row hashes are hashed), dependent on column names
    and order, values and how often each row occurs."""
    import numpy as np
    import pandas as pd

    rows = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())
    h = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    h.update(rows.tobytes())
    return h.hexdigest()[:16]


def window_start(last_day: dt.date, holdout_days: int, window_days: int | None) -> dt.date:
    """First day the training set reads: the holdout and the training window before it, in
    calendar days (with gaps in the data, fewer days of data than asked)."""
    if window_days is None:
        return dt.date.min
    return last_day - dt.timedelta(days=holdout_days + window_days - 1)


def features_source(con, uc: UseCase) -> str:
    """What training reads as a FROM item: the features table, whose target column is each row's
    authoritative label. A dbt feature model joins labels.<use case> itself; without one (the
    features are raw.<use case>) a row's label is taken here from the label files first, else
    from the row's own target, as ingest/labels.outcomes() does."""

    table = qualified(uc.features_table)
    if uc.features.dbt_model or uc.labels is None or not landing.table_exists(con, labels.labels_table(uc)):
        return table
    e, ts, target = ident(uc.entity_column), ident(uc.timestamp_column), ident(uc.target_column)
    # The model's columns named one by one (no DuckDB-only `* REPLACE`): the same SQL on PostgreSQL.
    # labels.<uc> holds one label per (entity as text, timestamp); the raw entity may be a number.
    cols = ", ".join(f"f.{ident(c)}" for c in model_columns(uc) if c != uc.target_column)
    return (f"(SELECT {cols}, CAST(coalesce(l.{target}, f.{target}) AS {landing.target_type(uc)}) AS {target} "
            f"FROM {table} f LEFT JOIN {qualified(labels.labels_table(uc))} l "
            f"ON l.{e} = CAST(f.{e} AS VARCHAR) AND l.{ts} = f.{ts}) AS {ident('features')}")


MIN_LABELLED_ROWS = 50  # fewer labelled rows cannot train and judge a model; said as such


def read_features(con, uc: UseCase, first_day: dt.date):
    """The labelled feature rows from `first_day` on, in the deterministic training order. Rows
    whose label is not known yet (empty target) are scored in production but never trained on."""
    cols = ", ".join(ident(c) for c in model_columns(uc))
    return con.execute(
        f"SELECT {cols} FROM {features_source(con, uc)} "
        f"WHERE CAST({ident(uc.timestamp_column)} AS DATE) >= ? AND {ident(uc.target_column)} IS NOT NULL "
        f"ORDER BY {order_by(uc)}", [first_day]).df()


def latest_feature_day(con, uc: UseCase, labelled: bool = False) -> dt.date | None:
    """The newest day of features (with `labelled`: of features whose label is known)."""
    where = f" WHERE {ident(uc.target_column)} IS NOT NULL" if labelled else ""
    return con.execute(f"SELECT max(CAST({ident(uc.timestamp_column)} AS DATE)) "
                       f"FROM {features_source(con, uc)}{where}").fetchone()[0]


def require_labelled(df, uc: UseCase, first_day: dt.date, unlabelled: int) -> None:
    """A clear error when too few rows have a known label to train on."""
    if len(df) < MIN_LABELLED_ROWS:
        raise ValueError(
            f"{uc.features_table} has {len(df)} labelled row(s) from {first_day} on ({unlabelled} row(s) without a "
            f"label there); training needs at least {MIN_LABELLED_ROWS}. Labels arrive in the landing files' "
            f"{uc.target_column!r} column" + (f" or as label files in {uc.labels.path()}" if uc.labels else "")
            + "; wait for them or load them first")


def require_features(train, uc: UseCase, info) -> None:
    """A clear error when a feature column is empty in every training row: the model cannot
    learn from it, and HistGradientBoosting fails on it deep in its binning ("window shape
    cannot be larger than input array shape"). The usual cause is upstream: a landing column
    that never reached the feature table."""
    empty = [c for c in uc.features.all if train[c].isna().all()]
    if empty:
        raise ValueError(
            f"feature column(s) {empty} are empty in every one of the {len(train)} training row(s) "
            f"({info.train_start}..{info.train_end}) of {uc.features_table}; a model cannot learn from them. Check "
            f"that the landing files fill them (or the columns they are computed from) in {uc.raw_table}, or "
            "remove them from the use case's features")


def read_split(con, uc: UseCase, split: str):
    # ORDER BY: a table's scan order is not guaranteed (DuckDB inserts in parallel).
    df = con.execute(f"SELECT * FROM {qualified(training_table(uc))} WHERE {ident(SPLIT_COLUMN)} = ? "
                     f"ORDER BY {order_by(uc)}", [split]).df()
    if df.empty:
        raise ValueError(f"{training_table(uc)} has no {split!r} rows: materialize the training set first")
    return df.drop(columns=[SPLIT_COLUMN])


def build_frame(con, uc: UseCase, learn_recent: bool = False):
    """The training set from the warehouse: train rows then holdout rows, each in the
    deterministic order, with a `_split` column; plus the split's SplitInfo. Raises ValueError
    with the reason when no split is possible. `learn_recent` (a retrain fired by drift): the
    recent days are shared between training and holdout (split.recent_slice_split)."""
    import pandas as pd

    from mlops_assets.training.split import recent_slice_split, time_split

    if latest_feature_day(con, uc) is None:
        raise ValueError(f"{uc.features_table} is empty: materialize some days of features first")
    # The split ends at the newest labelled day: newer days wait for their labels.
    last_day = latest_feature_day(con, uc, labelled=True)
    if last_day is None:
        total = con.execute(f"SELECT count(*) FROM {features_source(con, uc)}").fetchone()[0]
        require_labelled([], uc, uc.first_day, total)
    # Read only the partitions the split can use: the cost follows the window, not the history.
    first_day = window_start(last_day, uc.split.holdout_days, uc.split.training_window_days)
    df = read_features(con, uc, first_day)
    unlabelled = con.execute(
        f"SELECT count(*) FROM {features_source(con, uc)} WHERE CAST({ident(uc.timestamp_column)} AS DATE) >= ? "
        f"AND {ident(uc.target_column)} IS NULL", [first_day]).fetchone()[0]
    require_labelled(df, uc, first_day, unlabelled)
    split = recent_slice_split if learn_recent else time_split
    train, holdout, info = split(df, uc.timestamp_column, uc.target_column,
                                 uc.split.holdout_days, uc.split.training_window_days)
    require_features(train, uc, info)
    frame = pd.concat([train.assign(**{SPLIT_COLUMN: "train"}), holdout.assign(**{SPLIT_COLUMN: "holdout"})],
                      ignore_index=True)
    return frame, info


def write_frame(con, uc: UseCase, frame) -> None:
    """The training table becomes exactly `frame`, in one transaction (COPY on PostgreSQL)."""
    portable.replace_table(con, training_table(uc), frame)
