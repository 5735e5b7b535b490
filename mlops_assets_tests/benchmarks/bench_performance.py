"""Cost of the performance loop against the length of the history.

For each history length (default 30, 180 and 365 days at 3,000 rows a day) a fresh data folder
gets raw.churn (targets empty), labels.churn (every row labelled), predictions.churn and a
training set, all written straight into DuckDB, plus one registered model version with holdout
figures in a fresh MLflow store. Then it times:

- the label join of the whole history (mlops_assets.ingest.labels.outcomes over every day),
- the same for the one new day,
- materializing churn/performance_report for the new labelled day (Dagster, DuckDB, MLflow,
  Evidently; Evidently's import is paid once before the timings).

The report of one new day should cost the same at every history length.

    uv run python mlops_assets_tests/benchmarks/bench_performance.py            # 30 180 365
    uv run python mlops_assets_tests/benchmarks/bench_performance.py --days 30 --rows 500   # quick
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

FIRST = dt.date(2026, 1, 1)


def _env(root: Path) -> None:
    for k in ("MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "MLOPS_MLFLOW_ARTIFACT_ROOT"):
        os.environ.pop(k, None)
    os.environ["MLOPS_DATA_DIR"] = str(root)
    os.environ["DAGSTER_HOME"] = str(root / "dagster_home")
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    from mlops_assets.instance import home as instance_home

    instance_home.ensure_local_env()


def _tables(uc, days: int, rows: int) -> None:
    """raw, labels, predictions and a training set for `days` + 1 days (the last one is the new day)."""
    import duckdb

    from mlops_assets import settings
    from mlops_assets.ingest import labels

    n_days = days + 1
    con = duckdb.connect(str(settings.duckdb_path()))
    gen = (f"SELECT d, i, TIMESTAMP '{FIRST}' + INTERVAL (d) DAY + INTERVAL (i * 86400 // {rows}) SECOND AS ts, "
           f"'C' || lpad(CAST(d * {rows} + i AS VARCHAR), 9, '0') AS cid, hash(d, i) % 1000 / 1000.0 AS u "
           f"FROM range({n_days}) t(d), range({rows}) s(i)")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"CREATE TABLE raw.churn AS SELECT cid AS customer_id, ts AS event_ts, CAST(NULL AS INTEGER) AS churned, "
                f"'f.csv' AS _source_file, now() AS _loaded_at FROM ({gen})")
    labels.ensure_table(con, uc)
    con.execute(f"INSERT INTO labels.churn SELECT cid, ts, CAST(u < 0.3 AS INTEGER), 'l.csv', now(), 0 FROM ({gen})")
    con.execute("CREATE SCHEMA IF NOT EXISTS predictions")
    # scores that rank the labels well but not perfectly
    con.execute(f"CREATE TABLE predictions.churn AS SELECT cid AS customer_id, ts AS event_ts, "
                f"least(1.0, greatest(0.0, CASE WHEN u < 0.3 THEN 0.55 ELSE 0.25 END + (hash(i, d, 7) % 1000 / 1000.0 - 0.5) * 0.6)) AS score, "
                f"'1' AS model_version, now() AS scored_at FROM ({gen})")
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.execute("CREATE TABLE ml.churn_training_set AS SELECT CAST(u < 0.3 AS INTEGER) AS churned, 'train' AS _split "
                f"FROM ({gen}) WHERE d < 30")
    con.close()


def _model(uc) -> None:
    import mlflow
    import numpy as np
    from sklearn.dummy import DummyClassifier

    from mlops_assets import settings

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    mlflow.set_registry_uri(settings.mlflow_tracking_uri())
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1]), name="model")
        mlflow.log_metric("holdout_roc_auc", 0.82)
    mlflow.register_model(f"runs:/{run.info.run_id}/model", uc.registered_model_name)


def one(days: int, rows: int) -> dict[str, float]:
    import dagster as dg
    import duckdb

    from mlops_assets import settings
    from mlops_assets.chain.performance import build_performance_report
    from mlops_assets.ingest import labels
    from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    _tables(uc, days, rows)
    _model(uc)
    new_day = FIRST + dt.timedelta(days=days)
    out: dict[str, float] = {}
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        started = time.perf_counter()
        all_rows = len(labels.outcomes(con, uc, FIRST, new_day + dt.timedelta(days=1)))
        out["join_all_s"] = time.perf_counter() - started
        started = time.perf_counter()
        labels.outcomes(con, uc, new_day, new_day + dt.timedelta(days=1))
        out["join_day_s"] = time.perf_counter() - started
    out["labelled_rows"] = all_rows
    asset = build_performance_report(uc)
    instance = dg.DagsterInstance.get()
    resources = {"warehouse": DuckDBWarehouse(database=str(settings.duckdb_path())),
                 "mlflow": MlflowResource.from_settings()}
    started = time.perf_counter()
    result = dg.materialize([asset], partition_key=new_day.isoformat(), instance=instance, resources=resources,
                            selection=[asset.key])
    out["report_s"] = time.perf_counter() - started
    assert result.success
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 180, 365])
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    import evidently  # noqa: F401  paid once, not inside the first timing
    import mlflow  # noqa: F401

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for days in args.days:
        with tempfile.TemporaryDirectory() as tmp:
            _env(Path(tmp) / "data")
            r = one(days, args.rows)
            print(f"history {days:4d} days x {args.rows} rows: labels join over all {int(r['labelled_rows']):,} rows "
                  f"{r['join_all_s']:.2f} s, of the new day {r['join_day_s']:.3f} s; performance report of the new day "
                  f"{r['report_s']:.1f} s")


if __name__ == "__main__":
    main()
