"""Soak benchmark: the unattended loop under `dagster dev` and its daemon, day after day.

1. Soak (default): N days of history loaded and a champion trained (what `mlops-assets demo`
   runs), then `dagster dev` on the project's dagster.yaml with the shipped sensor intervals, and
   D day files dropped into the landing folder, one every S seconds, each day's labels 7 days
   later (written when that later day is dropped), concept drift from the 15th dropped day.
   Measured from outside (the instance, read-only): runs per landed day (by what launched them),
   file -> batch_predictions latency p50/p95, the largest queue, failed sensor ticks with their
   errors, retrains fired and their start delay, and whether the monitoring summary was ever
   behind the newest scored day. Printed beside the goals of the steady-state issue.
2. --backfill-days N: N days loaded and a champion trained, then a backfill of the use case's
   daily partitioned assets over all their partitions launched as the UI launches it (GraphQL
   launchPartitionBackfill); prints its runs and wall time.

Run from the project root:
  uv run --frozen python mlops_assets_tests/benchmarks/bench_soak.py                       # 60 + 30 days, 20 s
  uv run --frozen python mlops_assets_tests/benchmarks/bench_soak.py --history-days 20 --dropped-days 8
  uv run --frozen python mlops_assets_tests/benchmarks/bench_soak.py --backfill-days 365 --rows-per-day 100
Each run works in a fresh temporary data folder (kept with --keep, printed at the end).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlops_assets_tests import dev_server  # noqa: E402

DAILY_ASSETS_QUERY = """{ assetNodes { assetKey { path } groupName isPartitioned
  partitionDefinition { type } } }"""
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on PartitionSetNotFoundError { message } ... on InvalidStepError { invalidStepKey }
  ... on InvalidOutputError { stepKey invalidOutputName } } }"""


def code_state() -> str:
    """The commit measured, and whether the package had uncommitted changes (they count too)."""
    import subprocess

    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = [line for line in git("status", "--porcelain", "mlops_assets").splitlines() if line]
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        f" + {len(dirty)} uncommitted file(s) under mlops_assets/" if dirty else "")


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average (1 min) {os.getloadavg()[0]:.1f}"


def _log(msg: str) -> None:
    print(f"[bench_soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _fresh_data(plan: dev_server.SoakPlan, keep: bool) -> Path:
    data = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    for k in ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH", "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_USE_CASE_DIRS"):
        os.environ.pop(k, None)
    os.environ.update(dev_server.soak_env(data, plan))
    return data


def soak(args) -> dict:
    plan = dev_server.SoakPlan(history_days=args.history_days, dropped_days=args.dropped_days,
                               cadence_s=args.cadence_s, rows_per_day=args.rows_per_day,
                               concept_drift_from=args.concept_drift_from)
    data = _fresh_data(plan, args.keep)
    _log(f"{code_state()}; {machine()} at the start")
    _log(f"data folder {data}; history {plan.history[0]}..{plan.history[-1]}, drops {plan.drops[0]}.."
         f"{plan.drops[-1]} every {plan.cadence_s:.0f}s, {plan.rows_per_day} rows/day, concept drift from "
         f"{plan.sim_config().concept_drift_from or 'none'}")
    try:
        from mlops_assets.cli import prepare

        prepare()
        prepare_s = dev_server.prepare_soak_history(data, plan, log=_log)
        intervals = dict(kv.split("=", 1) for kv in args.env)
        figures = dev_server.run_soak(data, plan, data / "dagster_dev.log", intervals, log=_log,
                                      drain_bound_s=args.drain_bound_s)
        figures["history_prepare_s"] = prepare_s
        _log(f"soak of {plan.dropped_days} days took {figures['soak_s']:.0f}s ({figures['drain_s']:.0f}s after the "
             f"last drop; {'drained' if figures['drained'] else 'NOT drained'}); warm-up runs "
             f"{figures['warmup_runs']} {figures['warmup_runs_by_kind']}")
        _log(f"{machine()} at the end")
        dev_server.print_soak_figures(figures, out=print)
        return figures
    finally:
        _done(data, args.keep)


def _done(data: Path, keep: bool) -> None:
    if keep:
        _log(f"kept {data} (dagster_dev.log inside)")
    else:
        shutil.rmtree(data, ignore_errors=True)


def daily_assets(port: int, use_case: str) -> list[list[str]]:
    """The use case's daily partitioned assets, as the UI lists them."""
    nodes = dev_server.graphql(port, DAILY_ASSETS_QUERY)["assetNodes"]
    return sorted(n["assetKey"]["path"] for n in nodes
                  if n["assetKey"]["path"][0] == use_case and n["isPartitioned"])


def backfill(args) -> dict:
    import dagster as dg

    plan = dev_server.SoakPlan(history_days=args.backfill_days, dropped_days=0, rows_per_day=args.rows_per_day,
                               concept_drift_from=0)
    data = _fresh_data(plan, args.keep)
    _log(f"{code_state()}; {machine()} at the start")
    _log(f"data folder {data}; {args.backfill_days} days {plan.history[0]}..{plan.history[-1]}, "
         f"{plan.rows_per_day} rows/day")
    proc = None
    try:
        from mlops_assets.cli import prepare

        prepare()
        dev_server.prepare_soak_history(data, plan, log=_log)
        port, log_path = dev_server.free_port(), data / "dagster_dev.log"
        intervals = dict(kv.split("=", 1) for kv in args.env)
        proc = dev_server.start_dagster_dev(port, log_path, intervals)
        dev_server.wait_for(lambda: dev_server.webserver_up(port), 180, "the webserver", proc, log_path)
        assets = daily_assets(port, plan.use_case)
        _log(f"backfill of {len(assets)} daily assets over all partitions: {['/'.join(a) for a in assets]}")
        instance = dg.DagsterInstance.get()
        launched_at = time.time()
        result = dev_server.graphql(port, LAUNCH_BACKFILL, {"params": {
            "assetSelection": [{"path": a} for a in assets], "allPartitions": True}})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        backfill_id = result["backfillId"]
        runs_filter = dg.RunsFilter(tags={"dagster/backfill": backfill_id})
        active = [getattr(dg.DagsterRunStatus, s) for s in dev_server.ACTIVE_STATUSES]
        max_queue = 0

        def finished():
            nonlocal max_queue
            max_queue = max(max_queue, instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])))
            status = instance.get_backfill(backfill_id).status.value
            return status != "REQUESTED" and not instance.get_runs_count(
                dg.RunsFilter(tags={"dagster/backfill": backfill_id}, statuses=active)) and status

        status = dev_server.wait_for(finished, args.drain_bound_s, "the backfill", proc, log_path, poll_s=5)
        wall = time.time() - launched_at
        runs = instance.get_runs(filters=runs_filter)
        others = [r for r in instance.get_run_records(filters=dg.RunsFilter(
            created_after=dt.datetime.fromtimestamp(launched_at, tz=dt.timezone.utc)))
            if r.dagster_run.tags.get("dagster/backfill") != backfill_id]
        by_status: dict[str, int] = {}
        for r in runs:
            by_status[r.status.value] = by_status.get(r.status.value, 0) + 1
        ranges = sorted({(r.tags.get("dagster/asset_partition_range_start") or r.tags.get("dagster/partition"),
                          r.tags.get("dagster/asset_partition_range_end") or r.tags.get("dagster/partition"))
                         for r in runs}, key=str)
        figures = {"backfill_days": args.backfill_days, "assets": len(assets), "status": status, "runs": len(runs),
                   "runs_by_status": by_status, "wall_s": wall, "max_queue": max_queue,
                   "other_runs_meanwhile": dev_server._kinds(others), "distinct_partition_ranges": len(ranges)}
        print(f"backfill of {len(assets)} daily assets x {args.backfill_days} days: {status}; {len(runs)} runs "
              f"{by_status}; wall {wall:.0f} s; largest queue {max_queue}; other runs meanwhile "
              f"{figures['other_runs_meanwhile']}")
        print(f"first partition ranges: {ranges[:5]}")
        _log(f"{machine()} at the end")
        bad = [line for line in log_path.read_text().splitlines() if "BackfillPolicy" in line]
        if bad:
            print(f"BackfillPolicy warnings in the dagster dev log: {len(bad)}; first: {bad[0][:300]}")
        instance.dispose()
        return figures
    finally:
        if proc is not None:
            dev_server.stop_group(proc)
        _done(data, args.keep)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--history-days", type=int, default=60)
    p.add_argument("--dropped-days", type=int, default=30)
    p.add_argument("--cadence-s", type=float, default=20.0, help="seconds between two dropped day files")
    p.add_argument("--rows-per-day", type=int, default=300)
    p.add_argument("--concept-drift-from", type=int, default=15,
                   help="concept drift from this dropped day (1-based); 0: none")
    p.add_argument("--drain-bound-s", type=float, default=900,
                   help="after the last drop, wait at most this long for the loop to finish (backfill: for it)")
    p.add_argument("--backfill-days", type=int, default=0,
                   help="instead of the soak: a UI backfill of the daily chain over this many days")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="a variable for dagster dev, e.g. MLOPS_SENSOR_INTERVAL_S=5 (default: shipped intervals)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the data folder (and its dagster_dev.log)")
    args = p.parse_args(argv)
    figures = backfill(args) if args.backfill_days else soak(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
