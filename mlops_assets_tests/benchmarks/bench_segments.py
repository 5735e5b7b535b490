"""Cost of scoring a day with a model per segment against scoring it with one model.

The issue's goal: scoring a day with per-segment models takes no more than 1.5x scoring with one
model. Two regression use cases read the same simulated days: one with a single model, the other
with `segment_column: region` (four regions, each with enough rows for a model of its own, plus
the global fallback). Both are trained and promoted, then the last day's batch_predictions is
materialized for each in turn, pair by pair in alternating order (the asset as Dagster runs it:
reading the day's rows, loading the champion(s) of the registry, predicting, writing the
predictions table), and the medians compared:

    ratio = time(per-segment models) / time(one model),  goal <= 1.5

It also times the prediction alone (the models already loaded): one predict call on the day's
rows against the rows routed to their segment's model (serving/segments.py).

    uv run --frozen python mlops_assets_tests/benchmarks/bench_segments.py                 # 5 pairs
    uv run --frozen python mlops_assets_tests/benchmarks/bench_segments.py --rows 20000 --pairs 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

FIRST = dt.date(2026, 1, 1)
REGIONS = ("north", "south", "east", "west")
USE_CASES = ("bench_one", "bench_segmented")


def _frame(days: int, rows: int, seed: int = 0):
    """Demand-like rows whose relation to x1 differs by region."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = days * rows
    x1, x2 = rng.uniform(0, 4, n), rng.normal(size=n)
    region = rng.choice(REGIONS, n)
    slope = np.select([region == "north", region == "south", region == "east"], [2.0, -1.0, 0.5], 1.0)
    y = (10 + slope * x1 + 0.5 * x2 + rng.normal(0, 0.5, n)).round(3)
    day = np.repeat(np.arange(days), rows)
    ts = [dt.datetime.combine(FIRST + dt.timedelta(days=int(d)), dt.time(0)) + dt.timedelta(seconds=int(s))
          for d, s in zip(day, rng.integers(0, 86_000, n))]
    return pd.DataFrame({"id": [f"R{i:07d}" for i in range(n)], "ts": ts, "x1": x1.round(4), "x2": x2.round(4),
                         "region": region, "y": y, "_day": day})


def _use_case(name: str, days: int, spec: dict) -> dict:
    return {"name": name, "landing": {"folder": name}, "first_day": FIRST.isoformat(),
            "last_day": (FIRST + dt.timedelta(days=days - 1)).isoformat(), "entity_column": "id",
            "timestamp_column": "ts", "task": "regression", "target_column": "y",
            "features": {"numeric": ["x1", "x2"], "categorical": ["region"]}, "model": spec,
            "split": {"holdout_days": 3}, "retrain": {"min_new_rows": None, "on_drift": False},
            **({"segment_column": "region"} if name == "bench_segmented" else {})}


def _prepare(root: Path, days: int, rows: int, spec: dict) -> None:
    import yaml

    for k in ("MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_MLFLOW_UI_URL"):
        os.environ.pop(k, None)
    cases, data = root / "use_cases", root / "data"
    (data / "dagster_home").mkdir(parents=True)
    cases.mkdir()
    os.environ["MLOPS_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
    os.environ["MLOPS_USE_CASE_DIRS"] = str(cases)
    frame = _frame(days, rows)
    for name in USE_CASES:
        folder = data / "landing" / name
        folder.mkdir(parents=True)
        for d in range(days):
            frame[frame["_day"] == d].drop(columns="_day").to_csv(
                folder / f"{name}_{FIRST + dt.timedelta(days=d)}.csv", index=False)
        (cases / f"{name}.yaml").write_text(yaml.safe_dump(_use_case(name, days, spec), sort_keys=False))


def _materialize(assets, instance, name: str, steps: list[str], partition_key=None, tags=None) -> float:
    import dagster as dg

    started = time.perf_counter()
    dg.materialize(assets, selection=[dg.AssetKey([name, s]) for s in steps], instance=instance,
                   partition_key=partition_key, tags=tags, raise_on_error=True)
    return time.perf_counter() - started


def _predict_only(day: str, repeats: int) -> tuple[float, float, int]:
    """Best time of one predict call on the day's rows vs the routed prediction (models loaded)."""
    import duckdb

    from mlops_assets import settings
    from mlops_assets.evaluation.tasks import predict
    from mlops_assets.governance import registry
    from mlops_assets.serving.predictions import prediction_values
    from mlops_assets.serving.segments import predict_routed

    uri = settings.mlflow_tracking_uri()
    client = registry.mlflow_client(uri)
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        rows = con.execute("SELECT * FROM raw.bench_one WHERE CAST(ts AS DATE) = ?", [day]).df()
    features = ["x1", "x2", "region"]
    one = registry.load_model(uri, "bench_one_model", registry.champion_version(client, "bench_one_model"))
    glob = registry.champion_version(client, "bench_segmented_model")
    segments = {s: (v, registry.load_model(uri, "bench_segmented_model", v))
                for s, v in registry.segment_champions(client, "bench_segmented_model").items()}
    glob_model = registry.load_model(uri, "bench_segmented_model", glob)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    single = best(lambda: prediction_values("regression", predict("regression", one, rows[features]), rows.index))
    routed = best(lambda: predict_routed("regression", rows, features, "region", (glob, glob_model), segments,
                                         prediction_values))
    return single, routed, len(segments)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--days", type=int, default=20)
    p.add_argument("--rows", type=int, default=5000, help="rows a day")
    p.add_argument("--max-iter", type=int, default=50, help="boosting iterations of each model")
    args = p.parse_args()
    spec = {"family": "hist_gradient_boosting", "params": {"max_iter": args.max_iter}}
    with tempfile.TemporaryDirectory(prefix="bench_segments_") as tmp:
        _prepare(Path(tmp), args.days, args.rows, spec)
        import dagster as dg

        from mlops_assets.definitions import build_defs

        defs = build_defs()
        assets = list(defs.get_repository_def().assets_defs_by_key.values())
        last = (FIRST + dt.timedelta(days=args.days - 1)).isoformat()
        load_start = os.getloadavg()[0]
        with dg.DagsterInstance.get() as instance:
            for name in USE_CASES:
                _materialize(assets, instance, name, ["raw"], tags={
                    "dagster/asset_partition_range_start": FIRST.isoformat(),
                    "dagster/asset_partition_range_end": last})
                seconds = _materialize(assets, instance, name, ["training_set", "candidate_model",
                                                                "model_evaluation", "champion_model"])
                print(f"{name}: trained and promoted in {seconds:.1f} s", flush=True)
                _materialize(assets, instance, name, ["batch_predictions"], partition_key=last)  # warm-up
            wall: dict[str, list[float]] = {name: [] for name in USE_CASES}
            for i in range(args.pairs):
                for name in (USE_CASES if i % 2 == 0 else tuple(reversed(USE_CASES))):
                    seconds = _materialize(assets, instance, name, ["batch_predictions"], partition_key=last)
                    wall[name].append(seconds)
                    print(f"pair {i + 1}: {name} {seconds:.2f} s", flush=True)
            single, routed, n_segments = _predict_only(last, repeats=7)
        one, segmented = (statistics.median(wall[k]) for k in USE_CASES)
        ratio = segmented / one
        print(f"\n{args.rows} rows a day, {len(REGIONS)} regions; model: {spec}; {args.pairs} pair(s), medians; "
              f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
        print(f"batch_predictions of a day, one model: {one:.2f} s")
        print(f"batch_predictions of a day, {n_segments} segment models (the global one loaded only for rows outside "
              f"them): {segmented:.2f} s")
        print(f"per-segment / one model = {ratio:.2f} (goal <= 1.5: {'met' if ratio <= 1.5 else 'not met'})")
        print(f"prediction alone (models loaded): one model {single * 1000:.1f} ms, routed to {n_segments} "
              f"segment models {routed * 1000:.1f} ms ({routed / single:.2f}x)")


if __name__ == "__main__":
    main()
