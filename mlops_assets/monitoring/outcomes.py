"""What the performance report reads from the warehouse: the predictions served for a window
(made before their labels arrived; later re-scores counted apart), and the known outcomes of
its rows."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from mlops_assets.monitoring.performance import CLASS_PROBABILITIES, PREDICTED_CLASS, SCORE, VERSION
from mlops_assets.serving.predictions import predictions_table
from mlops_assets.warehouse import portable
from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase
from mlops_assets.ingest import labels
from mlops_assets.serving import predictions
from mlops_assets.training import data


def table_exists(con, name: str) -> bool:
    schema, table = name.split(".")
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def served_predictions(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """The prediction served for each row whose timestamp is in [start, end): the one made before
    the row's label arrived (mlops_assets.serving.predictions states the rule). Columns: entity,
    timestamp, score, model_version, scored_at, scored_after_label (served only because the label
    came with the row or before its first scoring). Re-scores made after the label arrived are
    not in it: `rescored_rows` counts them."""
    table = predictions_table(uc)
    if not table_exists(con, table):
        raise LookupError(f"{table} does not exist: materialize {uc.name}/batch_predictions first")
    return predictions.served_predictions(con, uc, start, end)


def rescored_rows(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> int:
    """Rows of [start, end) re-scored after their label arrived (their latest score in
    predictions.<uc> is not the served one): reported apart, never judged as served."""
    return predictions.rescored_rows(con, uc, start, end)


def latest_predictions(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """predictions.<uc> rows whose timestamp is in [start, end): the latest score of each row,
    re-scores included (what the model version that last scored the window says); a multiclass
    table adds each row's predicted class and class probabilities."""
    table = predictions_table(uc)
    if not table_exists(con, table):
        raise LookupError(f"{table} does not exist: materialize {uc.name}/batch_predictions first")
    ts = ident(uc.timestamp_column)
    present = portable.columns(con, table)
    # a multiclass table's predicted class and class probabilities come along (prediction drift)
    extra = [c for c in (PREDICTED_CLASS, CLASS_PROBABILITIES) if c in present]
    cols = ", ".join(ident(c) for c in (uc.entity_column, uc.timestamp_column, SCORE, VERSION, "scored_at", *extra))
    return con.execute(f"SELECT {cols} FROM {qualified(table)} WHERE {ts} >= ? AND {ts} < ? ORDER BY {ts}",
                       [start, end]).df()


def outcomes(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """(entity, timestamp, label) of the rows in [start, end) that have a label, by the label
    source's rule (mlops_assets.ingest.labels: a label file's label wins over the target the
    feature file carried)."""
    return labels.outcomes(con, uc, start, end)


def training_labels(con, uc: UseCase) -> pd.Series:
    """The training rows' target: the reference of target drift."""
    table = data.training_table(uc)
    if not table_exists(con, table):
        raise LookupError(f"{table} does not exist: materialize {uc.name}/training_set first")
    return con.execute(f"SELECT {ident(uc.target_column)} FROM {qualified(table)} "
                       f"WHERE {ident(data.SPLIT_COLUMN)} = 'train' AND {ident(uc.target_column)} IS NOT NULL").df()[
        uc.target_column]


def segments(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """(entity, timestamp, segment) of the feature rows in [start, end) of a use case with a
    segment column: which segment's model each served row belongs to."""
    if uc.segment_column is None:
        raise ValueError(f"{uc.name} has no segment_column")
    ts = ident(uc.timestamp_column)
    cols = ", ".join(ident(c) for c in (uc.entity_column, uc.timestamp_column, uc.segment_column))
    return con.execute(f"SELECT DISTINCT {cols} FROM {qualified(uc.features_table)} WHERE {ts} >= ? AND {ts} < ?",
                       [start, end]).df()
