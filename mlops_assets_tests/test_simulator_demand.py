"""The demand simulator (the regression demo use case): deterministic days, a learnable count
target, drift knobs, and label files a week late like churn's."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlops_assets.simulate import demand
from mlops_assets.simulate.demand import (CATEGORICAL_COLUMNS, COLUMNS, LABEL_COLUMNS, NUMERIC_COLUMNS, TARGET,
                                          SimulationConfig, day_range, simulate_day, write_days)

DAY = dt.date(2026, 3, 10)


def test_a_day_is_one_row_per_store_and_product_and_deterministic():
    cfg = SimulationConfig()
    df = simulate_day(DAY, cfg)
    assert list(df.columns) == COLUMNS
    assert len(df) == demand.rows_per_day(cfg) == 60
    assert df["item_id"].is_unique and not df[["item_id", "event_ts"]].duplicated().any()
    assert (df["event_ts"].dt.date == DAY).all()
    assert df[TARGET].dtype.kind == "i" and (df[TARGET] >= 0).all()
    assert set(df["category"]) == {"bakery", "dairy", "drinks", "frozen", "household"}
    assert ((df["discount_pct"] > 0) == (df["on_promotion"] == 1)).all()
    assert (df["price"] > 0).all() and df[NUMERIC_COLUMNS].notna().all().all()
    pd.testing.assert_frame_equal(df, simulate_day(DAY, cfg))
    # a day does not depend on the other days simulated, nor on their order
    pd.testing.assert_frame_equal(df, simulate_day(DAY, SimulationConfig(seed=cfg.seed)))
    assert not simulate_day(DAY + dt.timedelta(days=1), cfg)[TARGET].equals(df[TARGET])
    assert len(simulate_day(DAY, SimulationConfig(stores=2))) == 20
    with pytest.raises(ValueError, match="before the simulation start"):
        simulate_day(dt.date(2025, 12, 31), cfg)


def test_units_sold_are_learnable_from_the_features():
    """A model on the features beats the mean by far on later days: the demo's gates can pass."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    cfg = SimulationConfig()
    frames = [simulate_day(d, cfg) for d in day_range(dt.date(2026, 1, 1), 70)]
    train, test = pd.concat(frames[:60]), pd.concat(frames[60:])

    def x(df):
        out = df[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS].copy()
        for c in CATEGORICAL_COLUMNS:
            out[c] = pd.Categorical(out[c], categories=sorted(train[c].unique()))
        return out

    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
    model.fit(x(train), train[TARGET])
    assert r2_score(test[TARGET], model.predict(x(test))) > 0.75


def test_drift_knobs_move_the_inputs_or_the_relation():
    base = SimulationConfig()
    days = day_range(dt.date(2026, 5, 1), 10)
    calm = pd.concat([simulate_day(d, base) for d in days])
    moved = pd.concat([simulate_day(d, SimulationConfig(covariate_drift_from=days[0])) for d in days])
    assert moved["price"].mean() > 1.1 * calm["price"].mean()
    assert moved["on_promotion"].mean() > calm["on_promotion"].mean() + 0.08
    concept = pd.concat([simulate_day(d, SimulationConfig(concept_drift_from=days[0])) for d in days])
    # the inputs stay as they were; the promotions' pull shrinks
    pd.testing.assert_frame_equal(concept[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS],
                                  calm[NUMERIC_COLUMNS + CATEGORICAL_COLUMNS])

    def promo_lift(df):
        return df[df.on_promotion == 1][TARGET].mean() / df[df.on_promotion == 0][TARGET].mean()

    assert promo_lift(concept) < promo_lift(calm)


def test_label_files_come_a_week_later_with_the_units_sold(tmp_path):
    cfg = SimulationConfig()
    landing, labels = tmp_path / "demand", tmp_path / "demand_labels"
    days = day_range(dt.date(2026, 2, 1), 10)
    written = write_days(landing, days, cfg, label_folder=labels, label_delay_days=7)
    assert [p.name for p in written] == [f"demand_{d}.csv" for d in days]
    batch = pd.read_csv(written[0])
    assert batch[TARGET].isna().all() and len(batch) == 60  # the outcome is not known yet
    # as of the 10th day, the first three days are 7 days old
    assert sorted(p.name for p in labels.iterdir()) == [f"demand_labels_{d}.csv" for d in days[:3]]
    label = pd.read_csv(labels / f"demand_labels_{days[0]}.csv", parse_dates=["event_ts"])
    assert list(label.columns) == LABEL_COLUMNS
    truth = simulate_day(days[0], cfg)
    merged = batch.assign(event_ts=pd.to_datetime(batch["event_ts"])).drop(columns=[TARGET]).merge(
        label, on=["item_id", "event_ts"], validate="one_to_one")
    assert len(merged) == 60
    assert np.array_equal(merged.sort_values("item_id")[TARGET].to_numpy(),
                          truth.sort_values("item_id")[TARGET].to_numpy())
    # the next day written brings the next due label file, once
    write_days(landing, [days[-1] + dt.timedelta(days=1)], cfg, label_folder=labels, label_delay_days=7)
    assert len(list(labels.iterdir())) == 4


def test_labels_in_rows_and_parquet(tmp_path):
    cfg = SimulationConfig(stores=1)
    (path,) = write_days(tmp_path / "d", [DAY], cfg, fmt="parquet")
    df = pd.read_parquet(path)
    assert df[TARGET].notna().all() and len(df) == 10
    (path,) = write_days(tmp_path / "e", [DAY], cfg, fmt="parquet", label_folder=tmp_path / "l")
    assert pd.read_parquet(path)[TARGET].isna().all()


def test_simulate_command_writes_both_demo_use_cases_or_the_one_picked(data_dir):
    from mlops_assets import cli
    from mlops_assets.use_cases.loader import get_use_case

    churn, dem = get_use_case("churn"), get_use_case("demand")
    assert cli.main(["simulate", "--days", "2", "--start", "2026-02-01", "--rows-per-day", "20"]) == 0
    assert sorted(p.name for p in churn.landing.path().glob("*.csv")) == ["churn_2026-02-01.csv", "churn_2026-02-02.csv"]
    assert sorted(p.name for p in dem.landing.path().glob("*.csv")) == ["demand_2026-02-01.csv", "demand_2026-02-02.csv"]
    assert len(pd.read_csv(dem.landing.path() / "demand_2026-02-01.csv")) == 60  # --rows-per-day is churn's
    assert cli.main(["simulate", "--days", "1", "--use-case", "demand"]) == 0  # continues after its last day
    assert (dem.landing.path() / "demand_2026-02-03.csv").exists()
    assert not (churn.landing.path() / "churn_2026-02-03.csv").exists()
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--use-case", "fraud"])
