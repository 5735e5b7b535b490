"""A synthetic churn feature table written straight into a real DuckDB file, for tests of the
training set and the drift report that should not pay for the simulator, raw loads and dbt."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from mlops_assets.warehouse.sql import ident, qualified
from mlops_assets.use_cases.config import UseCase

CATEGORIES = ["a", "b", "c", "d"]


def feature_frame(uc: UseCase, days: list[dt.date], rows_per_day: int, seed: int,
                  shifted: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Rows for `days`; timestamps repeat within a day (24 hourly values), so row order is not
    fixed by time alone. Columns in `shifted` move by one standard deviation (numeric) or
    reverse their level frequencies (categorical). The target depends on two features."""
    rng = np.random.default_rng(seed)
    n = len(days) * rows_per_day
    ts = np.repeat(pd.to_datetime(days), rows_per_day) + pd.to_timedelta(rng.integers(0, 24, n), unit="h")
    data = {uc.entity_column: [f"C{seed}_{i}" for i in range(n)], uc.timestamp_column: ts}
    for col in uc.features.numeric:
        data[col] = rng.normal(1.0 if col in shifted else 0.0, 1.0, n)
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    for col in uc.features.categorical:
        data[col] = rng.choice(CATEGORIES, size=n, p=probs[::-1] if col in shifted else probs)
    first = uc.features.numeric[0]
    logit = 1.5 * data[first] + np.where(data[uc.features.categorical[0]] == "a", 1.0, -0.5)
    data[uc.target_column] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(data)


def write_features(con, uc: UseCase, frame: pd.DataFrame, append: bool = False) -> None:
    schema = uc.features_table.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    con.register("incoming", frame)
    if append:
        con.execute(f"INSERT INTO {qualified(uc.features_table)} SELECT * FROM incoming")
    else:
        con.execute(f"CREATE OR REPLACE TABLE {qualified(uc.features_table)} AS SELECT * FROM incoming")
    con.unregister("incoming")
