"""What the performance report reads from the warehouse: the predictions served for a window,
and the known outcomes of its rows."""
from __future__ import annotations

import datetime as dt
import importlib.util

import pandas as pd

from mlops_assets.monitoring.performance import LABEL, SCORE, VERSION
from mlops_assets.serving.predictions import predictions_table
from mlops_assets.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase


def table_exists(con, name: str) -> bool:
    schema, table = name.split(".")
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def served_predictions(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """predictions.<uc> rows whose timestamp is in [start, end): what the models actually served."""
    table = predictions_table(uc)
    if not table_exists(con, table):
        raise LookupError(f"{table} does not exist: materialize {uc.name}/batch_predictions first")
    ts = ident(uc.timestamp_column)
    cols = ", ".join(ident(c) for c in (uc.entity_column, uc.timestamp_column, SCORE, VERSION))
    return con.execute(f"SELECT {cols} FROM {qualified(table)} WHERE {ts} >= ? AND {ts} < ? ORDER BY {ts}",
                       [start, end]).df()


def outcomes(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """(entity, timestamp, label) of the rows in [start, end) that have a label.

    The label source's rule (a label file's label wins over the feature file's target) lives in
    mlops_assets.ingest.labels.outcomes; until that module exists, the feature files' target in
    raw.<uc> is the only source of labels."""
    if importlib.util.find_spec("mlops_assets.ingest.labels") is not None:
        from mlops_assets.ingest import labels

        frame = labels.outcomes(con, uc, start, end)
        if LABEL not in frame.columns and uc.target_column in frame.columns:
            frame = frame.rename(columns={uc.target_column: LABEL})
        return frame
    return raw_outcomes(con, uc, start, end)


def raw_outcomes(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    ts = ident(uc.timestamp_column)
    return con.execute(
        f"SELECT DISTINCT {ident(uc.entity_column)}, {ts}, {ident(uc.target_column)} AS {ident(LABEL)} "
        f"FROM {qualified(uc.raw_table)} WHERE {ts} >= ? AND {ts} < ? AND {ident(uc.target_column)} IS NOT NULL",
        [start, end]).df()


def training_labels(con, uc: UseCase) -> pd.Series:
    """The training rows' target: the reference of target drift."""
    from mlops_assets.training import data

    table = data.training_table(uc)
    if not table_exists(con, table):
        raise LookupError(f"{table} does not exist: materialize {uc.name}/training_set first")
    return con.execute(f"SELECT {ident(uc.target_column)} FROM {qualified(table)} "
                       f"WHERE {ident(data.SPLIT_COLUMN)} = 'train' AND {ident(uc.target_column)} IS NOT NULL").df()[
        uc.target_column]
