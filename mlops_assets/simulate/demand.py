"""Deterministic simulator of the demo demand data set: units sold per store and product and day.

A regression beside churn's classification. One row per (store, product) a day, written at the
store's closing time; the target `units_sold` is a count drawn around a demand that depends on
the product, the store, the price paid against the list price, a promotion, the day of the week
and, for cold drinks and ice cream, the temperature. As for churn, each day has its own random
stream (seed, day offset), so a day's rows do not depend on which other days are simulated, and
with a label folder the batch files leave the target empty and the day's units sold arrive in a
label file once the day is `label_delay_days` old.

The same two knobs as churn's make the monitoring visible:
- covariate drift: prices rise, promotions get more frequent and deeper, the weather warms;
- concept drift: shoppers react more to price and less to promotions.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import mlops_assets.simulate.files as files
from mlops_assets.simulate.files import day_file_name, day_range, due_label_days, label_file_name

__all__ = ["SimulationConfig", "simulate_day", "write_days", "write_due_labels", "simulated_days", "day_range",
           "day_file_name", "label_file_name", "due_label_days", "COLUMNS", "LABEL_COLUMNS", "TARGET"]

# product -> (category, list price, base units a day in an average store)
PRODUCTS = {
    "P01": ("bakery", 2.5, 40.0), "P02": ("bakery", 4.0, 18.0), "P03": ("dairy", 1.2, 55.0),
    "P04": ("dairy", 3.5, 22.0), "P05": ("drinks", 1.8, 35.0), "P06": ("drinks", 6.0, 9.0),
    "P07": ("frozen", 4.5, 12.0), "P08": ("frozen", 3.0, 15.0), "P09": ("household", 5.5, 7.0),
    "P10": ("household", 9.0, 4.0),
}
WEATHER_SENSITIVE = {"P05", "P07"}  # cold drinks and ice cream
# store -> (size, demand multiplier)
STORES = {"S01": ("large", 1.8), "S02": ("large", 1.5), "S03": ("medium", 1.0), "S04": ("medium", 0.9),
          "S05": ("small", 0.55), "S06": ("small", 0.45)}
DAY_OF_WEEK_EFFECT = np.array([0.9, 0.85, 0.9, 0.95, 1.15, 1.35, 1.1])  # Monday .. Sunday

NUMERIC_COLUMNS = ["list_price", "price", "discount_pct", "on_promotion", "day_of_week", "temperature_c"]
CATEGORICAL_COLUMNS = ["store_id", "store_size", "product_id", "category"]
TARGET = "units_sold"
COLUMNS = ["item_id", "event_ts", *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, TARGET]
LABEL_COLUMNS = ["item_id", "event_ts", TARGET]


@dataclass(frozen=True)
class SimulationConfig:
    start_date: dt.date = dt.date(2026, 1, 1)
    seed: int = 7
    stores: int = len(STORES)  # the first n stores; rows per day = stores x products
    covariate_drift_from: dt.date | None = None
    covariate_drift_strength: float = 1.0
    concept_drift_from: dt.date | None = None
    concept_drift_strength: float = 1.0


def rows_per_day(cfg: SimulationConfig) -> int:
    return min(cfg.stores, len(STORES)) * len(PRODUCTS)


def _ramp(day: dt.date, start: dt.date | None, strength: float) -> float:
    return 0.0 if start is None or day < start else strength


def simulate_day(day: dt.date, cfg: SimulationConfig) -> pd.DataFrame:
    """One day of sales, one row per store and product; units sold are a noisy but learnable count."""
    offset = (day - cfg.start_date).days
    if offset < 0:
        raise ValueError(f"day {day} is before the simulation start {cfg.start_date}")
    if cfg.stores < 1:
        raise ValueError(f"stores must be 1 or more, got {cfg.stores}")
    rng = np.random.default_rng([cfg.seed, offset])
    cov = _ramp(day, cfg.covariate_drift_from, cfg.covariate_drift_strength)
    concept = _ramp(day, cfg.concept_drift_from, cfg.concept_drift_strength)

    stores = list(STORES)[:cfg.stores]
    store = np.repeat(stores, len(PRODUCTS))
    product = np.tile(list(PRODUCTS), len(stores))
    n = len(store)
    category = np.array([PRODUCTS[p][0] for p in product])
    list_price = np.array([PRODUCTS[p][1] for p in product]) * (1 + 0.15 * cov)
    base = np.array([PRODUCTS[p][2] for p in product]) * np.array([STORES[s][1] for s in store])
    size = np.array([STORES[s][0] for s in store])

    # The day's weather, one for every store: seasonal, plus noise.
    season = np.cos(2 * np.pi * (day.timetuple().tm_yday - 200) / 365.25)
    temperature = round(float(12 + 10 * season + 4 * cov + rng.normal(0, 3)), 1)
    on_promotion = (rng.random(n) < 0.12 + 0.15 * cov).astype(np.int8)
    discount = np.where(on_promotion == 1, rng.choice([10.0, 20.0, 30.0], n, p=[0.5, 0.35, 0.15]), 0.0)
    price = (list_price * (1 - discount / 100) * rng.uniform(0.97, 1.03, n)).round(2)

    # Concept drift: price elasticity grows, promotions lose most of their pull.
    elasticity = 1.2 * (1 - concept) + 2.4 * concept
    promo_lift = 0.5 * (1 - concept) + 0.1 * concept
    weekday = day.weekday()
    weather = np.where(np.isin(product, list(WEATHER_SENSITIVE)), np.exp(0.04 * (temperature - 12)), 1.0)
    demand = (base * DAY_OF_WEEK_EFFECT[weekday] * weather * (price / list_price) ** -elasticity
              * (1 + promo_lift * on_promotion) * rng.lognormal(0, 0.15, n))  # unobserved causes
    units = rng.poisson(demand).astype(np.int32)

    # Each store closes at its own minute after 20:00, and the day's rows are written then.
    close = pd.Timestamp(day) + pd.Timedelta(hours=20) + pd.to_timedelta(
        np.array([list(STORES).index(s) * 7 for s in store]), unit="min")
    return pd.DataFrame({
        "item_id": np.char.add(np.char.add(store.astype(str), "-"), product.astype(str)),
        "event_ts": close,
        "list_price": list_price.round(2),
        "price": price,
        "discount_pct": discount,
        "on_promotion": on_promotion.astype(np.int32),
        "day_of_week": np.full(n, weekday, dtype=np.int32),
        "temperature_c": np.full(n, temperature),
        "store_id": store,
        "store_size": size,
        "product_id": product,
        "category": category,
        TARGET: units,
    }, columns=COLUMNS)


def write_days(folder: Path, days: list[dt.date], cfg: SimulationConfig, *, use_case: str = "demand",
               fmt: str = "csv", label_folder: Path | None = None, label_delay_days: int = 7,
               as_of: dt.date | None = None) -> list[Path]:
    """One batch file per day; with `label_folder`, units sold come later in label files (files.write_days)."""
    return files.write_days(folder, days, simulate_day, cfg, use_case=use_case, target=TARGET,
                            label_columns=LABEL_COLUMNS, fmt=fmt, label_folder=label_folder,
                            label_delay_days=label_delay_days, as_of=as_of)


def simulated_days(folder: Path, use_case: str = "demand") -> list[dt.date]:
    return files.simulated_days(folder, use_case)


def write_due_labels(label_folder: Path, days: list[dt.date], cfg: SimulationConfig, as_of: dt.date,
                     delay_days: int, *, use_case: str = "demand", fmt: str = "csv") -> list[Path]:
    """The label file (item_id, event_ts, units_sold) of each due day that has none yet."""
    return files.write_due_labels(label_folder, days, simulate_day, cfg, as_of, delay_days, use_case=use_case,
                                  label_columns=LABEL_COLUMNS, fmt=fmt)
