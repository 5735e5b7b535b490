"""The predictions table: a day's rows are replaced, never duplicated, other days untouched."""
import datetime as dt

import duckdb
import pandas as pd
import pytest

from mlops_assets.serving.predictions import predictions_table, replace_window
from mlops_assets.use_cases.loader import load_use_cases

UC = next(uc for uc in load_use_cases() if uc.name == "churn")
DAY1, DAY2 = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)


def frame(day: dt.datetime, n: int, version: str) -> pd.DataFrame:
    return pd.DataFrame({
        UC.entity_column: [f"C{i}" for i in range(n)],
        UC.timestamp_column: [day + dt.timedelta(hours=i % 24) for i in range(n)],
        "score": [i / n for i in range(n)],
        "model_version": version,
        "scored_at": pd.Timestamp("2026-02-01"),
    })


def counts(con):
    return dict(con.execute(f"SELECT model_version, count(*) FROM {predictions_table(UC)} GROUP BY 1").fetchall())


def test_replace_window_replaces_only_that_window(tmp_path):
    one_day = dt.timedelta(days=1)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert replace_window(con, UC, frame(DAY1, 30, "1"), DAY1, DAY1 + one_day) == 0
        assert replace_window(con, UC, frame(DAY2, 20, "1"), DAY2, DAY2 + one_day) == 0
        # re-scoring day 1 with a new champion and fewer rows
        assert replace_window(con, UC, frame(DAY1, 25, "2"), DAY1, DAY1 + one_day) == 30
        assert counts(con) == {"2": 25, "1": 20}
        # an empty day clears it
        assert replace_window(con, UC, frame(DAY1, 0, "2"), DAY1, DAY1 + one_day) == 25
        assert counts(con) == {"1": 20}


def test_rows_outside_the_window_are_refused_and_nothing_changes(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        replace_window(con, UC, frame(DAY1, 10, "1"), DAY1, DAY2)
        with pytest.raises(ValueError, match="10 prediction row"):
            replace_window(con, UC, frame(DAY2, 10, "2"), DAY1, DAY2)
        assert counts(con) == {"1": 10}
