"""The prediction tables of a use case: what was scored last, and what was served.

- ``predictions.<use case>`` holds the latest score of each row (entity, timestamp, score,
  model_version, scored_at), replaced a time window at a time so re-scoring a day never
  duplicates rows. Drift reports and anyone asking "what does the model say now" read it.
- ``served.<use case>`` holds, per row, the prediction that was served: the one performance
  monitoring judges. Same columns plus ``scored_after_label``.

``scored_at`` is when the model scored the row (UTC, naive), set by the scoring run; it travels
with the prediction into the served table and is never rewritten.

The rule (applied whenever a window is scored, in the same transaction as the replacement):
a prediction counts as served when it was made before its row's label arrived. A row's label
arrives when a label file's label for it is first loaded (``labels.<use case>._loaded_at``,
kept when the same label is reloaded) or when its landing row carrying the target is loaded
(``raw.<use case>._loaded_at``), whichever is earlier. So re-scoring a window
- before the row's label arrived (a corrected landing file, a new champion on a fresh day)
  replaces the served prediction: it too was made without knowing the outcome;
- after the label arrived (automation or a backfill re-scoring old days) replaces only the
  latest score; the served prediction stays, and the row counts as re-scored
  (``rescored_rows``), kept apart from performance.
A row whose label arrived before it was first scored (a landing file that carries its target,
or history scored after its label files loaded) never had a prediction made before the outcome:
its first prediction is the served one, flagged ``scored_after_label``, and later re-scores are
re-scores. Served records of rows that vanish from a re-scored window are dropped only while
their label has not arrived. Windows scored before the served table existed are read from
``predictions.<use case>`` until re-scored (then their stored rows become the served ones).
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase

if TYPE_CHECKING:  # pandas is imported where rows are handled: the code location imports this module
    import pandas as pd

SCHEMA = "predictions"
SERVED_SCHEMA = "served"
COLUMNS = ("score", "model_version", "scored_at")  # binary and regression (score: P(1) or the value)
PREDICTED_CLASS = "predicted_class"  # multiclass: the label with the highest probability (text)
CLASS_PROBABILITIES = "class_probabilities"  # multiclass: JSON object label -> probability
MULTICLASS_COLUMNS = ("score", PREDICTED_CLASS, CLASS_PROBABILITIES, "model_version", "scored_at")
SCORED_AT = "scored_at"
AFTER_LABEL = "scored_after_label"  # served only because no prediction preceded the label
_ARRIVALS = "_label_arrivals"  # temp table: (_e, _ts, _arrived) of the window being replaced


def predictions_table(uc: UseCase) -> str:
    return f"{SCHEMA}.{uc.name}"


def served_table(uc: UseCase) -> str:
    return f"{SERVED_SCHEMA}.{uc.name}"


def prediction_columns(uc: UseCase) -> tuple[str, ...]:
    """The stored columns after entity and timestamp. ``score`` is a number for every task: the
    probability of class 1 (binary), the predicted value (regression), the predicted class's
    probability (multiclass, which adds the class and every class's probability)."""
    return MULTICLASS_COLUMNS if uc.task == "multiclass" else COLUMNS


def prediction_values(task, prediction, index=None) -> dict[str, pd.Series]:
    """The task's prediction (evaluation.tasks.predict) as the stored columns before
    model_version: score, plus predicted_class and class_probabilities for multiclass."""
    import json

    import numpy as np
    import pandas as pd

    from mlops_assets.evaluation.tasks import MULTICLASS, as_task

    if as_task(task).name != MULTICLASS:
        return {"score": pd.Series(np.asarray(prediction, dtype="float64").ravel(), dtype="float64", index=index)}
    proba, classes = np.asarray(prediction[0], dtype=float), [str(_plain(c)) for c in prediction[1]]
    best = np.argmax(proba, axis=1) if len(proba) else np.zeros(0, dtype=int)
    return {
        "score": pd.Series(proba[np.arange(len(proba)), best] if len(proba) else [], dtype="float64", index=index),
        PREDICTED_CLASS: pd.Series([classes[i] for i in best], dtype="object", index=index),
        CLASS_PROBABILITIES: pd.Series([json.dumps(dict(zip(classes, map(float, row)))) for row in proba],
                                       dtype="object", index=index),
    }


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _utc_naive(value) -> dt.datetime:
    import pandas as pd

    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).to_pydatetime()


def replace_window(con, uc: UseCase, frame, start: dt.datetime, end: dt.datetime) -> int:
    """Replace the latest scores of the rows whose timestamp is in [start, end) by ``frame`` and
    keep the served predictions by the module's rule, in one transaction. ``frame`` has the use
    case's entity and timestamp columns plus COLUMNS (``scored_at``: when the model scored, UTC).
    Returns the number of latest scores deleted."""
    col = uc.timestamp_column
    missing = [c for c in (uc.entity_column, col, *prediction_columns(uc)) if c not in frame.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; they have {list(frame.columns)}")
    if len(frame) and frame[SCORED_AT].isna().any():
        raise ValueError(f"{int(frame[SCORED_AT].isna().sum())} prediction row(s) have no {SCORED_AT}")
    outside = frame[(frame[col] < start) | (frame[col] >= end)] if len(frame) else frame
    if len(outside):
        raise ValueError(f"{len(outside)} prediction row(s) fall outside [{start}, {end})")
    if len(frame) and getattr(frame[SCORED_AT].dtype, "tz", None) is not None:
        frame = frame.assign(**{SCORED_AT: frame[SCORED_AT].dt.tz_convert("UTC").dt.tz_localize(None)})
    # One scoring time for the window: served records of rows the new scores lack are dropped
    # only when their label had not arrived by then.
    scored = (_utc_naive(frame[SCORED_AT].max()) if len(frame)
              else dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    from mlops_assets.warehouse import portable

    window = [start, end]
    ts = ident(col)
    return portable.replace_window(
        con, predictions_table(uc), frame, f"{ts} >= ? AND {ts} < ?", window,
        before=lambda c: _before_replace(c, uc, window), after=lambda c: _after_replace(c, uc, window, scored))


def _cols(uc: UseCase, alias: str = "") -> list[str]:
    return [f"{alias}{ident(c)}" for c in (uc.entity_column, uc.timestamp_column, *prediction_columns(uc))]


def _same_row(uc: UseCase, a: str, b: str) -> str:
    e, ts = ident(uc.entity_column), ident(uc.timestamp_column)
    return f"{a}.{e} = {b}.{e} AND {a}.{ts} = {b}.{ts}"


def _arrived(uc: UseCase, alias: str, by: str) -> str:
    """SQL true when the row `alias` has a label that arrived at or before `by` (SQL)."""
    return (f"EXISTS (SELECT 1 FROM {_ARRIVALS} a WHERE a._e = CAST({alias}{ident(uc.entity_column)} AS VARCHAR) "
            f"AND a._ts = {alias}{ident(uc.timestamp_column)} AND a._arrived <= {by})")


def _arrival_sources(con, uc: UseCase) -> list[str]:
    """SELECTs of (_e, _ts, _at) for the window (2 parameters each): when each label arrived."""
    from mlops_assets.ingest.labels import labels_table
    from mlops_assets.warehouse import portable

    e, ts = ident(uc.entity_column), ident(uc.timestamp_column)
    out = []
    for table, where in ((labels_table(uc), ident(uc.target_column) + " IS NOT NULL"),
                         (uc.raw_table, ident(uc.target_column) + " IS NOT NULL")):
        cols = portable.columns(con, table)
        if uc.target_column in cols and "_loaded_at" in cols and uc.entity_column in cols:
            out.append(f"SELECT CAST({e} AS VARCHAR) AS _e, {ts} AS _ts, _loaded_at AS _at FROM {qualified(table)} "
                       f"WHERE {ts} >= ? AND {ts} < ? AND {where}")
    return out


def _before_replace(con, uc: UseCase, window: list) -> None:
    """Inside the replacement's transaction: the served table exists, the window's label
    arrivals are staged, and rows scored before served records were kept get theirs."""
    from mlops_assets.warehouse import portable

    served, latest = qualified(served_table(uc)), qualified(predictions_table(uc))
    portable.ensure(con, f"CREATE SCHEMA IF NOT EXISTS {ident(SERVED_SCHEMA)}",
                    f"CREATE TABLE IF NOT EXISTS {served} AS SELECT {', '.join(_cols(uc))}, "
                    f"CAST(NULL AS BOOLEAN) AS {ident(AFTER_LABEL)} FROM {latest} WHERE 1 = 0")
    sources = _arrival_sources(con, uc)
    union = " UNION ALL ".join(sources) if sources else (
        "SELECT CAST(NULL AS VARCHAR) AS _e, CAST(NULL AS TIMESTAMP) AS _ts, CAST(NULL AS TIMESTAMP) AS _at WHERE 1 = 0")
    con.execute(f"DROP TABLE IF EXISTS {_ARRIVALS}")
    con.execute(f"CREATE TEMP TABLE {_ARRIVALS} AS SELECT _e, _ts, min(_at) AS _arrived FROM ({union}) AS _s "
                "GROUP BY _e, _ts", window * len(sources))
    _insert_unserved(con, uc, window)


def _insert_unserved(con, uc: UseCase, window: list) -> None:
    """The window's latest scores of rows without a served record become served records."""
    served, latest = qualified(served_table(uc)), qualified(predictions_table(uc))
    ts = ident(uc.timestamp_column)
    names = ", ".join([*_cols(uc), ident(AFTER_LABEL)])
    con.execute(f"""INSERT INTO {served} ({names})
                    SELECT {', '.join(_cols(uc, 'p.'))}, {_arrived(uc, 'p.', f'p.{ident(SCORED_AT)}')}
                    FROM {latest} p WHERE p.{ts} >= ? AND p.{ts} < ?
                      AND NOT EXISTS (SELECT 1 FROM {served} s WHERE {_same_row(uc, 's', 'p')})""", window)


def _after_replace(con, uc: UseCase, window: list, scored: dt.datetime) -> None:
    """Inside the replacement's transaction, the new scores stored: served records whose label
    had not arrived when the window was scored give way to the new scores."""
    served = qualified(served_table(uc))
    ts = ident(uc.timestamp_column)
    con.execute(f"DELETE FROM {served} WHERE {ts} >= ? AND {ts} < ? AND NOT {_arrived(uc, '', '?')}",
                [*window, scored])
    _insert_unserved(con, uc, window)
    con.execute(f"DROP TABLE IF EXISTS {_ARRIVALS}")


def served_predictions(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """The served prediction of each row whose timestamp is in [start, end) (the module's rule):
    entity, timestamp, score (multiclass: predicted_class, class_probabilities), model_version,
    scored_at and scored_after_label, ordered by
    timestamp and entity. Rows scored before served records were kept count by their stored score."""
    from mlops_assets.warehouse import portable

    latest = qualified(predictions_table(uc))
    ts = ident(uc.timestamp_column)
    cols = ", ".join(_cols(uc, "p."))
    legacy = (f"SELECT {cols}, CAST(NULL AS BOOLEAN) AS {ident(AFTER_LABEL)} FROM {latest} p "
              f"WHERE p.{ts} >= ? AND p.{ts} < ?")
    if not portable.table_exists(con, served_table(uc)):
        sql, params = legacy, [start, end]
    else:
        served = qualified(served_table(uc))
        sql = (f"SELECT {', '.join(_cols(uc, 's.'))}, s.{ident(AFTER_LABEL)} FROM {served} s "
               f"WHERE s.{ts} >= ? AND s.{ts} < ? UNION ALL {legacy} "
               f"AND NOT EXISTS (SELECT 1 FROM {served} s WHERE {_same_row(uc, 's', 'p')})")
        params = [start, end, start, end]
    df = con.execute(f"SELECT * FROM ({sql}) AS _served ORDER BY {ts}, {ident(uc.entity_column)}", params).df()
    df[AFTER_LABEL] = df[AFTER_LABEL].astype("boolean").fillna(False).astype(bool)
    return df.reset_index(drop=True)


def rescored_rows(con, uc: UseCase, start: dt.datetime, end: dt.datetime) -> int:
    """Rows of [start, end) whose latest score is a re-score made after their label arrived:
    kept in predictions.<use case>, left out of what was served."""
    from mlops_assets.warehouse import portable

    if not (portable.table_exists(con, served_table(uc)) and portable.table_exists(con, predictions_table(uc))):
        return 0
    ts = ident(uc.timestamp_column)
    return int(con.execute(
        f"SELECT count(*) FROM {qualified(predictions_table(uc))} p JOIN {qualified(served_table(uc))} s "
        f"ON {_same_row(uc, 's', 'p')} WHERE p.{ts} >= ? AND p.{ts} < ? "
        f"AND p.{ident(SCORED_AT)} IS DISTINCT FROM s.{ident(SCORED_AT)}", [start, end]).fetchone()[0])
