"""How long a run takes to start: from the command (or the UI's launch) to the raw step's start.

Two ways a run starts, each measured --repeat times on an idle instance, the raw asset of one
day (the step itself does not matter here, only when it starts):

- `dagster asset materialize -m mlops_assets.definitions --select churn/raw --partition DAY`:
  from the command's start (this script's clock before it spawns the process) to the
  STEP_START event of `churn__raw` in the instance's event log.
- a run launched as the UI launches one (GraphQL `launchPipelineExecution` against `dagster dev`):
  from the mutation's send to STEP_START; the daemon's queue, the launcher and the run worker
  (a new process that loads the code location) are on that path. The phases come from the
  run's events: queued -> dequeued (daemon) -> RUN_START (worker up) -> STEP_START.

Sensors are left with long intervals so that nothing else runs meanwhile; the landing folder is
empty, so the raw step loads 0 rows. Prints figures, asserts nothing; the goal (issue: <= 5 s on
an idle machine) is printed beside them.

    uv run --frozen python mlops_assets_tests/benchmarks/bench_run_start.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlops_assets_tests import dev_server  # noqa: E402
from mlops_assets_tests.ports import free_port  # noqa: E402

BIN = Path(sys.executable).parent
GOAL_S = 5.0
LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
QUIET = {"MLOPS_SENSOR_INTERVAL_S": "3600", "MLOPS_RETRAIN_SENSOR_INTERVAL_S": "3600",
         "MLOPS_ALERT_SENSOR_INTERVAL_S": "3600", "MLOPS_AUTOMATION_INTERVAL_S": "3600"}


def env_for(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH")}
    return {**env, **QUIET, "MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"),
            "DO_NOT_TRACK": "1"}


def phases(instance, run_id: str, t0: float) -> dict[str, float]:
    """Seconds from t0 to each phase event of the run (the ones that happened)."""
    import dagster as dg

    out = {}
    names = {dg.DagsterEventType.RUN_ENQUEUED: "queued", dg.DagsterEventType.RUN_DEQUEUED: "dequeued",
             dg.DagsterEventType.RUN_STARTING: "launched", dg.DagsterEventType.RUN_START: "worker_started",
             dg.DagsterEventType.STEP_START: "raw_step_start"}
    for record in instance.get_records_for_run(run_id).records:
        entry = record.event_log_entry
        if entry.dagster_event and entry.dagster_event.event_type in names:
            out.setdefault(names[entry.dagster_event.event_type], entry.timestamp - t0)
    return out


def wait_done(instance, run_id: str, bound_s: float = 300) -> None:
    import dagster as dg

    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run and run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                                  dg.DagsterRunStatus.CANCELED):
            return
        time.sleep(0.5)
    raise SystemExit(f"run {run_id} did not end within {bound_s:.0f}s")


def cli_starts(data: Path, days: list[dt.date]) -> list[dict]:
    import dagster as dg

    env, out = env_for(data), []
    for day in days:
        t0 = time.time()
        proc = subprocess.run([str(BIN / "dagster"), "asset", "materialize", "-m", "mlops_assets.definitions",
                               "--select", "churn/raw", "--partition", day.isoformat()],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"dagster asset materialize failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        os.environ.update({"DAGSTER_HOME": env["DAGSTER_HOME"]})
        with dg.DagsterInstance.get() as instance:
            run = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": day.isoformat()}), limit=1)[0]
            out.append(phases(instance, run.dagster_run.run_id, t0))
        print(f"  cli {day}: raw step started {out[-1]['raw_step_start']:.2f}s after the command", flush=True)
    return out


def ui_starts(data: Path, days: list[dt.date], log: Path) -> list[dict]:
    import dagster as dg

    env = env_for(data)
    port = free_port()
    saved = dict(os.environ)
    os.environ.update(env)
    proc = dev_server.start_dagster_dev(port, log, QUIET)
    out = []
    try:
        dev_server.wait_for(lambda: dev_server.webserver_up(port), 180, "dagster dev's webserver", proc, log)
        time.sleep(10)  # the daemon's first sensor ticks and the code server settle
        with dg.DagsterInstance.get() as instance:
            for day in days:
                params = {"selector": {"repositoryLocationName": "mlops_assets.definitions",
                                       "repositoryName": "__repository__", "pipelineName": "churn_daily",
                                       "assetSelection": [{"path": ["churn", "raw"]}]},
                          "mode": "default",
                          "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day.isoformat()}]}}
                t0 = time.time()
                result = dev_server.graphql(port, LAUNCH, {"p": params})["launchPipelineExecution"]
                if result["__typename"] != "LaunchRunSuccess":
                    raise SystemExit(f"launch failed: {result}")
                run_id = result["run"]["runId"]
                wait_done(instance, run_id)
                out.append(phases(instance, run_id, t0))
                print("  ui  {}: {}".format(day, ", ".join(f"{k} {v:.2f}s" for k, v in out[-1].items())), flush=True)
                time.sleep(2)
    finally:
        dev_server.stop_group(proc)
        os.environ.clear()
        os.environ.update(saved)
    return out


def report(name: str, rows: list[dict]) -> None:
    starts = [r["raw_step_start"] for r in rows if "raw_step_start" in r]
    med = statistics.median(starts)
    print(f"{name}: command/launch to raw step start, median {med:.2f}s (min {min(starts):.2f}, max {max(starts):.2f}, "
          f"n={len(starts)}); goal {GOAL_S:g}s: {'met' if med <= GOAL_S else 'not met'}")
    for phase in ("queued", "dequeued", "launched", "worker_started"):
        values = [r[phase] for r in rows if phase in r]
        if values:
            print(f"    {phase:15s} median {statistics.median(values):.2f}s after the command")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["cli", "ui"], default=None)
    args = parser.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="bench_run_start_"))
    (data / "dagster_home").mkdir()
    (data / "landing" / "churn").mkdir(parents=True)
    try:
        prep = subprocess.run([str(BIN / "mlops-assets"), "prepare"], cwd=ROOT, env=env_for(data),
                              capture_output=True, text=True)
        if prep.returncode:
            raise SystemExit(f"mlops-assets prepare failed:\n{prep.stdout}\n{prep.stderr}")
        print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}", flush=True)
        first = dt.date(2026, 3, 1)
        days = [first + dt.timedelta(days=i) for i in range(2 * args.repeat)]
        if args.only in (None, "cli"):
            report("dagster asset materialize", cli_starts(data, days[:args.repeat]))
        if args.only in (None, "ui"):
            report("launched from the UI (GraphQL) under dagster dev",
                   ui_starts(data, days[args.repeat:], data / "dagster_dev.log"))
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
