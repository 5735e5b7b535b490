"""Continuous-training benchmarks; prints figures, asserts nothing.

1. Cost of one new day at 30, 180 and 365 days of history: the per-day chain (raw + dbt, then
   drift report + batch predictions) for the day after the history, each history in its own
   data folder, in this process. Figures are also given as ratios to the 30-day case.
2. Latency from a file landing to the drift report of its day, with `dagster dev` running the
   shipped sensor and automation intervals (skip with --no-latency).

Run from the project root:  uv run python mlops_assets_tests/benchmarks/bench_continuous.py
"""
import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _history_start(days: int) -> dt.date:
    """Histories end yesterday, so that every day (and the new one, today) is a partition."""
    return dt.date.today() - dt.timedelta(days=days)


def _fresh_env(tag: str, first_day: dt.date) -> Path:
    """A fresh data folder, and the demo's partitions starting on the history's first day: a
    history longer than the days since the demo's first_day would otherwise hold rows no
    partition takes, and the main job fails on those (by design)."""
    data = Path(tempfile.mkdtemp(prefix=f"bench_ct_{tag}_"))
    for k in ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH"):
        os.environ.pop(k, None)
    overrides = data / "overrides.yaml"
    overrides.write_text(f"churn:\n  first_day: {first_day.isoformat()}\n")
    os.environ.update({"MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "DO_NOT_TRACK": "1",
                       "MLOPS_USE_CASE_OVERRIDES": str(overrides)})
    (data / "dagster_home").mkdir(parents=True)
    return data


def one_new_day(history_days: int, rows_per_day: int) -> dict[str, float]:
    import dagster as dg

    from mlops_assets.definitions import build_defs
    from mlops_assets.orchestrate import execute, run_pipeline
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    d0 = _history_start(history_days)
    data = _fresh_env(str(history_days), d0)
    cfg = SimulationConfig(start_date=d0, rows_per_day=rows_per_day)
    folder = data / "landing" / "churn"
    write_days(folder, day_range(d0, history_days), cfg)
    quiet = lambda *_: None  # noqa: E731
    assert run_pipeline(only=["churn"], log=quiet), "history run failed"
    new_day = d0 + dt.timedelta(days=history_days)
    write_days(folder, [new_day], cfg)
    defs, instance = build_defs(), dg.DagsterInstance.get()
    k = lambda *names: [dg.AssetKey(["churn", n]) for n in names]  # noqa: E731
    t0 = time.perf_counter()
    assert execute(defs, instance, "churn_daily", k("raw", "stg_churn", "features_churn"), quiet,
                   partition_key=new_day.isoformat())
    t1 = time.perf_counter()
    assert execute(defs, instance, "churn_daily", k("drift_report", "batch_predictions"), quiet,
                   partition_key=new_day.isoformat())
    t2 = time.perf_counter()
    return {"load_and_features_s": t1 - t0, "drift_and_scoring_s": t2 - t1, "total_s": t2 - t0}


def landing_latency(history_days: int, rows_per_day: int, bound_s: float) -> float:
    import dagster as dg

    from mlops_assets.instance import home as instance_home
    from mlops_assets.orchestrate import run_pipeline
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    d0 = _history_start(history_days)
    data = _fresh_env("latency", d0)
    (data / "dagster_home" / "dagster.yaml").write_text(instance_home.DAGSTER_YAML)
    folder = data / "landing" / "churn"
    cfg = SimulationConfig(start_date=d0, rows_per_day=rows_per_day)
    write_days(folder, day_range(d0, history_days), cfg)
    assert run_pipeline(only=["churn"], log=lambda *_: None)
    log = open(data / "dagster_dev.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-m", "mlops_assets.definitions",
                             "-h", "127.0.0.1", "-p", "3917"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        time.sleep(60)  # let the webserver, daemon and sensors come up and finish their first ticks
        new_day = d0 + dt.timedelta(days=history_days)
        write_days(folder, [new_day], cfg)
        landed = time.monotonic()
        instance = dg.DagsterInstance.get()
        while time.monotonic() - landed < bound_s:
            if new_day.isoformat() in instance.get_materialized_partitions(dg.AssetKey(["churn", "drift_report"])):
                return time.monotonic() - landed
            time.sleep(1)
        raise SystemExit(f"no drift report within {bound_s}s; see {data / 'dagster_dev.log'}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--histories", default="30,180,365")
    parser.add_argument("--rows-per-day", type=int, default=300)
    parser.add_argument("--no-latency", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    print(f"== one new day at growing history ({args.rows_per_day} rows/day) ==")
    results = {}
    for n in [int(x) for x in args.histories.split(",")]:
        results[n] = one_new_day(n, args.rows_per_day)
        r = results[n]
        print(f"history {n:4d} days: raw+dbt {r['load_and_features_s']:5.1f}s  drift+scoring "
              f"{r['drift_and_scoring_s']:5.1f}s  total {r['total_s']:5.1f}s", flush=True)
    base = results[min(results)]["total_s"]
    print("ratios to the shortest history: " + ", ".join(f"{n}d {r['total_s'] / base:.2f}x" for n, r in results.items()))
    if not args.no_latency:
        print("\n== file landing -> drift report with dagster dev and the shipped intervals ==")
        print(f"latency: {landing_latency(14, args.rows_per_day, 900):.0f}s")


if __name__ == "__main__":
    main()
