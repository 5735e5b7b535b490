"""Deterministic simulator of the demo churn data set.

Each day is generated from its own random stream (seed, day offset), so the data of a day does
not depend on how many days are generated or in which order: simulating days 1-30 and then 31-60
gives the same files as simulating 1-60 at once.

Like production, outcomes can come later: with a label folder, the batch files leave the target
empty and each day's labels are written to a label file once the day is `label_delay_days`
old (as of the newest day simulated), so recent days are scored without labels.

Two knobs make the monitoring loop visible:
- covariate drift: from a given day the feature distributions move (more support calls, higher
  charges, fewer logins, a plan mix tilted to premium, ...), the feature -> target relation stays;
- concept drift: from a given day the feature -> target relation changes, the inputs do not.
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

PLANS = np.array(["basic", "standard", "premium"])
CONTRACTS = np.array(["monthly", "annual", "two_year"])
REGIONS = np.array(["north", "south", "east", "west"])
PAYMENTS = np.array(["card", "bank_transfer", "paypal", "invoice"])
DEVICES = np.array(["mobile", "desktop", "tablet"])

NUMERIC_COLUMNS = [
    "tenure_months", "monthly_charges", "total_charges", "num_support_calls",
    "avg_session_minutes", "days_since_last_login", "num_logins_30d", "data_usage_gb",
    "discount_pct", "age", "late_payments_12m", "satisfaction_score",
]
CATEGORICAL_COLUMNS = ["plan_type", "contract", "region", "payment_method", "device"]
COLUMNS = ["customer_id", "event_ts", *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS, "churned"]


@dataclass(frozen=True)
class SimulationConfig:
    start_date: dt.date = dt.date(2026, 1, 1)
    rows_per_day: int = 500
    seed: int = 42
    n_customers: int = 200_000
    covariate_drift_from: dt.date | None = None
    covariate_drift_strength: float = 1.0
    concept_drift_from: dt.date | None = None
    concept_drift_strength: float = 1.0


def _ramp(day: dt.date, start: dt.date | None, strength: float) -> float:
    return 0.0 if start is None or day < start else strength


def simulate_day(day: dt.date, cfg: SimulationConfig) -> pd.DataFrame:
    """One day of customer snapshots, with a noisy but learnable churn label."""
    offset = (day - cfg.start_date).days
    if offset < 0:
        raise ValueError(f"day {day} is before the simulation start {cfg.start_date}")
    rng = np.random.default_rng([cfg.seed, offset])
    n = cfg.rows_per_day
    cov = _ramp(day, cfg.covariate_drift_from, cfg.covariate_drift_strength)
    concept = _ramp(day, cfg.concept_drift_from, cfg.concept_drift_strength)

    plan_p = np.array([0.45, 0.35, 0.20]) * (1 - cov) + np.array([0.15, 0.30, 0.55]) * cov
    device_p = np.array([0.55, 0.35, 0.10]) * (1 - cov) + np.array([0.85, 0.10, 0.05]) * cov
    plan = rng.choice(PLANS, n, p=plan_p / plan_p.sum())
    contract = rng.choice(CONTRACTS, n, p=[0.55, 0.30, 0.15])
    region = rng.choice(REGIONS, n, p=[0.3, 0.25, 0.25, 0.2])
    payment = rng.choice(PAYMENTS, n, p=[0.4, 0.3, 0.2, 0.1])
    device = rng.choice(DEVICES, n, p=device_p / device_p.sum())

    base_charge = np.select([plan == "basic", plan == "standard"], [30.0, 60.0], 95.0)
    tenure = np.clip(rng.gamma(2.0, 12.0, n), 0, 72).round()
    monthly = np.clip(base_charge + 15 * cov + rng.normal(0, 10, n), 5, None).round(2)
    total = (tenure * monthly * rng.uniform(0.9, 1.05, n)).round(2)
    support = rng.poisson(1.2 + 1.8 * cov, n)
    session = rng.lognormal(3.0 - 0.4 * cov, 0.5, n).round(1)
    last_login = rng.exponential(7.0 * (1 + cov), n).round()
    logins = rng.poisson(np.maximum(12.0 - 5 * cov, 1.0), n)
    usage = rng.lognormal(2.0 + 0.7 * cov, 0.7, n).round(2)
    discount = rng.choice([0.0, 5.0, 10.0, 20.0], n, p=[0.6, 0.2, 0.15, 0.05])
    age = np.clip(rng.normal(42 + 8 * cov, 13, n), 18, 90).round()
    late = rng.poisson(0.6 + 0.8 * cov, n)
    satisfaction = np.clip(rng.normal(3.6 - 0.8 * cov, 0.9, n), 1, 5).round(1)

    contract_effect = np.select([contract == "monthly", contract == "annual"], [0.9, -0.3], -1.2)
    # Concept drift: support calls and satisfaction lose their meaning, price sensitivity flips.
    w_support = 0.35 * (1 - concept) - 0.25 * concept
    w_satisfaction = -0.6 * (1 - concept) + 0.4 * concept
    w_price = 0.015 * (1 - concept) - 0.02 * concept
    logit = (
        -1.6
        + w_support * support
        - 0.03 * tenure
        + w_price * (monthly - 60)
        + 0.05 * last_login
        - 0.05 * logins
        + 0.45 * late
        + w_satisfaction * (satisfaction - 3.5)
        - 0.02 * discount
        + contract_effect * (1 - 0.7 * concept)
        + 0.3 * (payment == "invoice")
        + rng.normal(0, 0.5, n)  # unobserved causes: the label is learnable but noisy
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)

    start = pd.Timestamp(day)
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s")
    ids = rng.integers(1, cfg.n_customers + 1, n)
    return pd.DataFrame({
        "customer_id": np.char.add("C", np.char.zfill(ids.astype(str), 7)),
        "event_ts": ts,
        "tenure_months": tenure.astype(np.int32),
        "monthly_charges": monthly,
        "total_charges": total,
        "num_support_calls": support.astype(np.int32),
        "avg_session_minutes": session,
        "days_since_last_login": last_login.astype(np.int32),
        "num_logins_30d": logins.astype(np.int32),
        "data_usage_gb": usage,
        "discount_pct": discount,
        "age": age.astype(np.int32),
        "late_payments_12m": late.astype(np.int32),
        "satisfaction_score": satisfaction,
        "plan_type": plan,
        "contract": contract,
        "region": region,
        "payment_method": payment,
        "device": device,
        "churned": churned,
    }, columns=COLUMNS)


LABEL_COLUMNS = ["customer_id", "event_ts", "churned"]
TARGET = "churned"


def write_days(folder: Path, days: list[dt.date], cfg: SimulationConfig, *, use_case: str = "churn",
               fmt: str = "csv", label_folder: Path | None = None, label_delay_days: int = 7,
               as_of: dt.date | None = None) -> list[Path]:
    """Write one batch file per day (atomically). Without `label_folder` each row carries its
    label (the target column). With it, the target is left empty, and the labels of every day
    in the batch folder that is `label_delay_days` old as of `as_of` (default: the newest day
    written) are written to `label_folder` (write_due_labels). Returns the batch files."""
    return files.write_days(folder, days, simulate_day, cfg, use_case=use_case, target=TARGET,
                            label_columns=LABEL_COLUMNS, fmt=fmt, label_folder=label_folder,
                            label_delay_days=label_delay_days, as_of=as_of)


def simulated_days(folder: Path, use_case: str = "churn") -> list[dt.date]:
    """The days of the simulator's batch files in a folder (other files are not ours)."""
    return files.simulated_days(folder, use_case)


def write_due_labels(label_folder: Path, days: list[dt.date], cfg: SimulationConfig, as_of: dt.date,
                     delay_days: int, *, use_case: str = "churn", fmt: str = "csv") -> list[Path]:
    """Write the label file (customer_id, event_ts, churned) of each due day that has none yet.
    A day's labels are those simulate_day gives that day (deterministic), so they match the
    rows of its batch file."""
    return files.write_due_labels(label_folder, days, simulate_day, cfg, as_of, delay_days, use_case=use_case,
                                  label_columns=LABEL_COLUMNS, fmt=fmt)
