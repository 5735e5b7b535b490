"""Cost of several candidates in one training run against one candidate.

The issue's goal: multi-candidate training fits N candidates in at most N times one candidate's
time plus 10%. Two regression use cases read the same simulated days: one lists a single
candidate, the other N copies of it under other names (same estimator, same parameters, so each
fit costs the same and the ratio measures only what the platform adds per candidate: the nested
MLflow run, the validation predictions, the data read). Both go through the candidate_model
asset as Dagster materializes it (candidates fitted on the training window minus the validation
days, scored on those days, the winner logged and registered). After one warm-up run each, the
two are materialized in turn, pair by pair in alternating order, and the medians compared:

    ratio = time(N candidates) / (N x time(1 candidate)),  goal <= 1.10

    uv run --frozen python mlops_assets_tests/benchmarks/bench_candidates.py                 # 3 candidates, 3 pairs
    uv run --frozen python mlops_assets_tests/benchmarks/bench_candidates.py --candidates 5 --rows 500 --pairs 2
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


def _frame(days: int, rows: int, seed: int = 0):
    """Demand-like rows: a count whose mean grows with x1, a little with x2 and the region."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = days * rows
    x1, x2 = rng.uniform(0, 4, n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], n)
    y = rng.poisson(2 * x1 + 1 + 0.5 * np.abs(x2) + 0.7 * (region == "north")).astype(float)
    day = np.repeat(np.arange(days), rows)
    ts = [dt.datetime.combine(FIRST + dt.timedelta(days=int(d)), dt.time(0)) + dt.timedelta(seconds=int(s))
          for d, s in zip(day, rng.integers(0, 86_000, n))]
    return pd.DataFrame({"id": [f"R{i:07d}" for i in range(n)], "ts": ts, "x1": x1.round(4), "x2": x2.round(4),
                         "region": region, "y": y, "_day": day})


def _use_case(name: str, days: int, candidates: list[dict]) -> dict:
    return {"name": name, "landing": {"folder": name}, "first_day": FIRST.isoformat(),
            "last_day": (FIRST + dt.timedelta(days=days - 1)).isoformat(), "entity_column": "id",
            "timestamp_column": "ts", "task": "regression", "target_column": "y",
            "features": {"numeric": ["x1", "x2"], "categorical": ["region"]},
            "model": {"candidates": candidates}, "split": {"holdout_days": 3, "validation_days": 3},
            "retrain": {"min_new_rows": None, "on_drift": False}}


def _prepare(root: Path, days: int, rows: int, n: int, spec: dict) -> dict[str, int]:
    import yaml

    for k in ("MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_MLFLOW_UI_URL"):
        os.environ.pop(k, None)
    cases = root / "use_cases"
    data = root / "data"
    (data / "dagster_home").mkdir(parents=True)
    cases.mkdir()
    os.environ["MLOPS_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
    os.environ["MLOPS_USE_CASE_DIRS"] = str(cases)
    frame = _frame(days, rows)
    counts = {"bench_one": 1, "bench_many": n}
    for name, count in counts.items():
        folder = data / "landing" / name
        folder.mkdir(parents=True)
        for d in range(days):
            frame[frame["_day"] == d].drop(columns="_day").to_csv(
                folder / f"{name}_{FIRST + dt.timedelta(days=d)}.csv", index=False)
        candidates = [{"name": f"c{i + 1}", **spec} for i in range(count)]
        (cases / f"{name}.yaml").write_text(yaml.safe_dump(_use_case(name, days, candidates), sort_keys=False))
    return counts


def _materialize(assets, instance, name: str, steps: list[str], tags=None):
    import dagster as dg

    started = time.perf_counter()
    result = dg.materialize(assets, selection=[dg.AssetKey([name, s]) for s in steps], instance=instance,
                            tags=tags, raise_on_error=True)
    return time.perf_counter() - started, result


def _candidate_figures(instance, name: str) -> tuple[float, int]:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey([name, "candidate_model"]))
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    return float(meta["fit_seconds"]), int(meta["train_rows"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=3, help="N, the number of candidates of the second use case")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--rows", type=int, default=2000, help="rows a day")
    p.add_argument("--max-iter", type=int, default=100, help="boosting iterations of each candidate")
    args = p.parse_args()
    spec = {"family": "hist_gradient_boosting", "params": {"max_iter": args.max_iter}}
    n = args.candidates
    with tempfile.TemporaryDirectory(prefix="bench_candidates_") as tmp:
        counts = _prepare(Path(tmp), args.days, args.rows, n, spec)
        import dagster as dg

        from mlops_assets.definitions import build_defs

        defs = build_defs()
        assets = list(defs.get_repository_def().assets_defs_by_key.values())
        last = FIRST + dt.timedelta(days=args.days - 1)
        load_start = os.getloadavg()[0]
        with dg.DagsterInstance.get() as instance:
            for name in counts:
                _materialize(assets, instance, name, ["raw"], tags={
                    "dagster/asset_partition_range_start": FIRST.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat()})
                _materialize(assets, instance, name, ["training_set"])
                _materialize(assets, instance, name, ["candidate_model"])  # warm-up: imports, first MLflow run
            wall: dict[str, list[float]] = {name: [] for name in counts}
            fits: dict[str, list[float]] = {name: [] for name in counts}
            for i in range(args.pairs):
                order = list(counts) if i % 2 == 0 else list(reversed(counts))
                for name in order:
                    seconds, _ = _materialize(assets, instance, name, ["candidate_model"])
                    fit_seconds, train_rows = _candidate_figures(instance, name)
                    wall[name].append(seconds)
                    fits[name].append(fit_seconds)
                    print(f"pair {i + 1}: {name} ({counts[name]} candidate(s)) {seconds:.2f} s, "
                          f"fits {fit_seconds:.2f} s, {train_rows} fit rows", flush=True)
        one, many = (statistics.median(wall[k]) for k in counts)
        fit_one, fit_many = (statistics.median(fits[k]) for k in counts)
        ratio = many / (n * one)
        verdict = "met" if ratio <= 1.10 else "not met"
        print(f"\n{args.days} days x {args.rows} rows ({args.days - 6} days fitted: less 3 holdout and 3 validation days); "
              f"candidate: {spec}; {args.pairs} pair(s), medians; load average {load_start:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end")
        print(f"candidate_model with 1 candidate: {one:.2f} s (fits {fit_one:.2f} s)")
        print(f"candidate_model with {n} candidates: {many:.2f} s (fits {fit_many:.2f} s)")
        print(f"{n} candidates / ({n} x 1 candidate) = {ratio:.2f} (goal <= 1.10: {verdict}); "
              f"each extra candidate costs {(many - one) / max(n - 1, 1):.2f} s against {one:.2f} s for the first")
        print(f"fits alone: {fit_many:.2f} s / ({n} x {fit_one:.2f} s) = {fit_many / (n * fit_one):.2f} (what the "
              "platform adds per candidate beside its fit: a nested MLflow run and the validation predictions)")


if __name__ == "__main__":
    main()
