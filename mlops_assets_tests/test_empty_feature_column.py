"""Issue 16 item 4: a feature column that is empty in every training row (a landing file's
column name in another case had emptied it) failed training deep in HistGradientBoosting with
"window shape cannot be larger than input array shape". The training set names the column."""
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest


D1 = dt.date(2026, 1, 1)


def _features(uc, days=20, rows=20, empty=(), empty_in_holdout_only=()):
    rng = np.random.default_rng(0)
    frames = []
    for d in range(days):
        df = pd.DataFrame({c: rng.normal(size=rows) for c in uc.features.numeric})
        for c in uc.features.categorical:
            df[c] = rng.choice(["a", "b"], rows)
        for c in empty:
            df[c] = None
        if d >= days - uc.split.holdout_days:
            for c in empty_in_holdout_only:
                df[c] = None
        df[uc.entity_column] = [f"C{d}_{i}" for i in range(rows)]
        df[uc.timestamp_column] = dt.datetime.combine(D1 + dt.timedelta(days=d), dt.time(12))
        df[uc.target_column] = rng.integers(0, 2, rows)
        frames.append(df)
    return pd.concat(frames)


def _table(data_dir, frame):
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    con.register("f", frame)
    con.execute("CREATE OR REPLACE TABLE main.features_churn AS SELECT * FROM f")
    con.unregister("f")
    return con


def test_a_feature_empty_in_every_training_row_fails_the_training_set_naming_it(churn, data_dir):
    from mlops_assets.training.data import build_frame

    with _table(data_dir, _features(churn, empty=("tenure_months", "region"))) as con:
        with pytest.raises(ValueError, match=r"feature column\(s\) \['tenure_months', 'region'\] are empty in every "
                                             r"one of the 260 training row\(s\)"):
            build_frame(con, churn)


def test_a_feature_empty_only_in_the_holdout_still_trains(churn, data_dir):
    from mlops_assets.training.data import build_frame

    with _table(data_dir, _features(churn, empty_in_holdout_only=("tenure_months",))) as con:
        frame, info = build_frame(con, churn)
    assert info.train_rows == 260 and len(frame) == 400
