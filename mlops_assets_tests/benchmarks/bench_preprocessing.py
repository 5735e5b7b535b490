"""Micro-benchmark of the model's preprocessing: the old pipeline (categoricals one-hot encoded
into dense columns, numeric columns imputed and scaled) against the current one
(mlops_assets.training.pipeline, `model.preprocessing: auto`), for the churn use case's model
family and hyper-parameters, on simulated data, in one process.

Two data sets: the churn simulator's rows (five categoricals of 3-4 values, plus the two ratio
features the dbt model computes), and the same rows with three extra categoricals of ~100 values
each (the shape of the public data set in issue 10, where one-hot gave 128 dense columns).
Per data set, the two pipelines are fitted `--repeat` times, alternating which goes first, and
the medians are printed: fit time, predict_proba time on the holdout, holdout ROC AUC and model
size (skops bytes, the format MLflow stores), each as new / old.

    uv run --frozen python mlops_assets_tests/benchmarks/bench_preprocessing.py                   # 100k rows, 3 repeats
    uv run --frozen python mlops_assets_tests/benchmarks/bench_preprocessing.py --rows 50000 --repeat 2 --threads 1
    uv run --frozen python mlops_assets_tests/benchmarks/bench_preprocessing.py --family logistic_regression
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.simulate.churn import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS, SimulationConfig, simulate_day

WIDE_COLUMNS = ["merchant", "city", "product"]
WIDE_LEVELS = 100


def churn_frame(rows: int, seed: int = 42, wide: bool = False) -> tuple[pd.DataFrame, list[str], list[str]]:
    """`rows` simulated rows in day order, the dbt model's two ratio features added, and the
    numeric and categorical feature names. `wide` adds WIDE_COLUMNS: ~100 levels each with a
    long tail (Zipf-like), level effects that shift the label, and a few levels below the
    encoders' min_frequency."""
    per_day = 5000
    cfg = SimulationConfig(rows_per_day=per_day, seed=seed)
    days = [cfg.start_date + dt.timedelta(days=i) for i in range(-(-rows // per_day))]
    frame = pd.concat([simulate_day(d, cfg) for d in days], ignore_index=True).head(rows)
    # the same definitions as dbt/models/features_churn.sql
    frame["charges_per_tenure_month"] = frame["total_charges"] / frame["tenure_months"].clip(lower=1)
    frame["support_calls_per_login"] = frame["num_support_calls"] / frame["num_logins_30d"].clip(lower=1)
    numeric = [*NUMERIC_COLUMNS, "charges_per_tenure_month", "support_calls_per_login"]
    categorical = list(CATEGORICAL_COLUMNS)
    if wide:
        rng = np.random.default_rng(seed + 1)
        weights = 1.0 / np.arange(1, WIDE_LEVELS + 1)
        logit = np.zeros(len(frame))
        for col in WIDE_COLUMNS:
            codes = rng.choice(WIDE_LEVELS, size=len(frame), p=weights / weights.sum())
            logit += rng.normal(0.0, 0.8, WIDE_LEVELS)[codes]
            frame[col] = np.array([f"{col}_{i}" for i in range(WIDE_LEVELS)], dtype=object)[codes]
        # flip some labels towards the level effects, so the wide columns carry signal
        frame["churned"] = frame["churned"].astype(int)
        flip = rng.random(len(frame)) < 0.3
        frame.loc[flip, "churned"] = (rng.random(flip.sum()) < 1 / (1 + np.exp(-(logit[flip] - 1.0)))).astype(int)
        categorical += WIDE_COLUMNS
    return frame, numeric, categorical


def legacy_pipeline(family: str, params: dict[str, Any], numeric: list[str], categorical: list[str]):
    """The pipeline as it was before model.preprocessing: dense one-hot for every family."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlops_assets.training.pipeline import ESTIMATORS

    cls = ESTIMATORS[family]
    if "random_state" in cls().get_params() and "random_state" not in params:
        params = {**params, "random_state": 0}
    transformers = [("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)]
    if categorical:
        transformers.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)),
        ]), categorical))
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", cls(**params))])


def measure(pipeline, train: pd.DataFrame, holdout: pd.DataFrame, features: list[str], target: str) -> dict[str, float]:
    import skops.io as sio
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    pipeline.fit(train[features], train[target])
    fit = time.perf_counter() - started
    started = time.perf_counter()
    scores = pipeline.predict_proba(holdout[features])[:, 1]
    predict = time.perf_counter() - started
    return {"fit_s": fit, "predict_s": predict, "roc_auc": float(roc_auc_score(holdout[target], scores)),
            "size_kb": len(sio.dumps(pipeline)) / 1024}


def compare(family: str, params: dict[str, Any], preprocessing: str, frame: pd.DataFrame, numeric: list[str],
            categorical: list[str], repeat: int, target: str = "churned") -> dict[str, dict[str, float]]:
    """Median figures of the old and the new pipeline; the last 20% of the rows (the latest days)
    are the holdout, as the platform's time split does."""
    from mlops_assets.training.pipeline import build_pipeline

    cut = int(len(frame) * 0.8)
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    features = [*numeric, *categorical]
    builders = {"old": lambda: legacy_pipeline(family, params, numeric, categorical),
                "new": lambda: build_pipeline(family, params, numeric, categorical, preprocessing)}
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i in range(repeat):
        for name in (["old", "new"] if i % 2 == 0 else ["new", "old"]):
            runs[name].append(measure(builders[name](), train, holdout, features, target))
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}


def main() -> None:
    from mlops_assets.use_cases.loader import get_use_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--family", default=None, help="default: the churn use case's family and params")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP/BLAS threads (threadpoolctl); default: the libraries' own choice")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    uc = get_use_case("churn")
    family = args.family or uc.model.family
    params = uc.model.params if family == uc.model.family else {}
    print(f"{dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"threads {args.threads or 'default'}")
    print(f"family {family}, params {params}, preprocessing {uc.model.preprocessing}, "
          f"{args.rows} rows (80% train / 20% holdout), median of {args.repeat}, old and new alternating")
    header = f"{'data':<34}{'':>5}{'fit s':>9}{'predict s':>11}{'ROC AUC':>9}{'size KB':>10}"
    print(header)
    for label, wide in [("churn simulator", False), (f"+ {len(WIDE_COLUMNS)} categoricals x {WIDE_LEVELS}", True)]:
        frame, numeric, categorical = churn_frame(args.rows, wide=wide)
        res = compare(family, params, uc.model.preprocessing, frame, numeric, categorical, args.repeat)
        for name in ("old", "new"):
            r = res[name]
            print(f"{label if name == 'old' else '':<34}{name:>5}{r['fit_s']:>9.2f}{r['predict_s']:>11.3f}"
                  f"{r['roc_auc']:>9.4f}{r['size_kb']:>10.0f}")
        o, n = res["old"], res["new"]
        print(f"{'':<34}{'new/old':>5}{n['fit_s'] / o['fit_s']:>9.2f}{n['predict_s'] / o['predict_s']:>11.2f}"
              f"{n['roc_auc'] - o['roc_auc']:>+9.4f}{n['size_kb'] / o['size_kb']:>10.2f}   (ROC AUC: difference)")


if __name__ == "__main__":
    main()
