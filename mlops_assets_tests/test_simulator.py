import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlops_assets.simulate.churn import (CATEGORICAL_COLUMNS, COLUMNS, NUMERIC_COLUMNS, SimulationConfig,
                                         day_range, simulate_day, write_days)

D0 = dt.date(2026, 1, 1)


def test_schema_and_size():
    df = simulate_day(D0, SimulationConfig(rows_per_day=2000))
    assert list(df.columns) == COLUMNS
    assert len(df) == 2000
    assert len(NUMERIC_COLUMNS) + len(CATEGORICAL_COLUMNS) >= 12
    assert df["event_ts"].dt.date.eq(D0).all()
    assert set(df["churned"].unique()) == {0, 1}
    assert 0.1 < df["churned"].mean() < 0.4
    assert df[NUMERIC_COLUMNS].notna().all().all()


def test_deterministic_and_independent_of_range():
    cfg = SimulationConfig(rows_per_day=300, seed=3)
    a = simulate_day(D0 + dt.timedelta(days=5), cfg)
    b = simulate_day(D0 + dt.timedelta(days=5), cfg)
    pd.testing.assert_frame_equal(a, b)
    other_seed = simulate_day(D0 + dt.timedelta(days=5), SimulationConfig(rows_per_day=300, seed=4))
    assert not a.equals(other_seed)
    assert not a.equals(simulate_day(D0 + dt.timedelta(days=6), cfg))


def test_label_is_learnable_but_noisy():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = SimulationConfig(rows_per_day=4000)
    train, test = simulate_day(D0, cfg), simulate_day(D0 + dt.timedelta(days=1), cfg)
    X = lambda d: pd.get_dummies(d[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS], dtype=float)  # noqa: E731
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X(train), train["churned"])
    auc = roc_auc_score(test["churned"], model.predict_proba(X(test).reindex(columns=X(train).columns, fill_value=0))[:, 1])
    assert 0.7 < auc < 0.95, auc


def test_covariate_drift_moves_features_from_the_given_day():
    drift_day = D0 + dt.timedelta(days=3)
    cfg = SimulationConfig(rows_per_day=3000, covariate_drift_from=drift_day)
    before, after = simulate_day(drift_day - dt.timedelta(days=1), cfg), simulate_day(drift_day, cfg)
    assert after["num_support_calls"].mean() > before["num_support_calls"].mean() + 1.0
    assert after["monthly_charges"].mean() > before["monthly_charges"].mean() + 10
    assert (after["plan_type"] == "premium").mean() > (before["plan_type"] == "premium").mean() + 0.2
    # days before the drift are untouched by the knob
    pd.testing.assert_frame_equal(before, simulate_day(drift_day - dt.timedelta(days=1), SimulationConfig(rows_per_day=3000)))


def test_concept_drift_changes_relation_not_inputs():
    drift_day = D0 + dt.timedelta(days=2)
    plain = simulate_day(drift_day, SimulationConfig(rows_per_day=5000))
    drifted = simulate_day(drift_day, SimulationConfig(rows_per_day=5000, concept_drift_from=drift_day))
    pd.testing.assert_frame_equal(plain[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS], drifted[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS])
    corr = lambda d: np.corrcoef(d["num_support_calls"], d["churned"])[0, 1]  # noqa: E731
    assert corr(plain) > 0.1 and corr(drifted) < 0


def test_write_days_writes_one_file_per_day_atomically(tmp_path):
    files = write_days(tmp_path / "churn", day_range(D0, 3), SimulationConfig(rows_per_day=50))
    assert [f.name for f in files] == ["churn_2026-01-01.csv", "churn_2026-01-02.csv", "churn_2026-01-03.csv"]
    assert not list((tmp_path / "churn").glob(".*"))
    assert len(pd.read_csv(files[1])) == 50


def test_rejects_days_before_start():
    with pytest.raises(ValueError, match="before the simulation start"):
        simulate_day(D0 - dt.timedelta(days=1), SimulationConfig())
