"""Many use cases: how the code location, the sensor ticks and the UI's asset graph grow with
the number of use cases. Prints figures, asserts nothing.

For each count N (default 1 and 50) it writes N use cases into a fresh temporary folder, the way
extra use cases are added (MLOPS_USE_CASE_DIRS, one `<name>/defs.yaml` component file each, every
one with its own landing folder of simulated files and its own registered model name), and
measures, next to the demo use case that always loads from mlops_assets/defs/:

1. code-location load in a fresh interpreter: imports, building the Definitions, resolving the
   repository (asset graph, jobs) and its snapshot (what a code server sends the webserver); and
   `dagster definitions validate` as one whole command;
2. one tick of every landing sensor (`evaluate_tick` on a real instance: first with new files,
   then idle with the cursor) and the ticks of the `automation` sensor: Dagster's
   AutomationTickEvaluationContext over the asset graph the daemon builds from the code
   location's snapshot (first tick with an empty cursor; the next after every use case's raw
   days were recorded as materialized, so downstream conditions fire; then an idle one);
   each against its interval;
3. the UI's asset graph query over GraphQL against `dagster-webserver` started on the code
   location (median of several requests, after the first).

Run from the project root:
  uv run --frozen python mlops_assets_tests/benchmarks/bench_many_use_cases.py [--counts 1,10,50]
      [--repeats 3] [--skip-validate] [--skip-ui] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlops_assets_tests.ports import free_port  # noqa: E402
BIN = Path(sys.executable).parent
FIRST_DAY = dt.date(2026, 1, 1)
NUMERIC = ["tenure_months", "monthly_charges", "num_support_calls", "satisfaction_score"]
CATEGORICAL = ["plan_type", "contract"]


def use_case_name(i: int) -> str:
    return f"bench{i:03d}"


def defs_yaml(name: str, landing: Path, days: int) -> str:
    """A use case over the simulator's columns, features straight from the raw table (no dbt
    models to write), its own landing folder and registered model name."""
    return "\n".join([
        "type: mlops_assets.components.UseCase",
        "attributes:",
        f"  name: {name}",
        f"  description: generated use case {name} (bench_many_use_cases.py)",
        f"  landing: {{folder: {json.dumps(str(landing))}, pattern: '{name}_*.csv'}}",
        f"  first_day: {FIRST_DAY.isoformat()}",
        f"  last_day: {(FIRST_DAY + dt.timedelta(days=days - 1)).isoformat()}",
        "  entity_column: customer_id",
        "  timestamp_column: event_ts",
        "  target_column: churned",
        f"  features: {{dbt_model: null, numeric: [{', '.join(NUMERIC)}], categorical: [{', '.join(CATEGORICAL)}]}}",
        "  slice_columns: [plan_type]",
        f"  model: {{family: logistic_regression, params: {{max_iter: 200}}, registered_name: {name}_registered}}",
        "  split: {holdout_days: 1}",
        "",
    ])


def write_use_cases(root: Path, n: int, days: int = 3, rows_per_day: int = 40) -> Path:
    """N use-case folders under root/use_cases and their landing files under root/landing;
    returns the folder to put in MLOPS_USE_CASE_DIRS. Files are dated an hour back so that no
    landing sensor leaves them for a later tick (settle_seconds)."""
    from mlops_assets.simulate.churn import SimulationConfig, write_days

    cases = root / "use_cases"
    old = time.time() - 3600
    for i in range(1, n + 1):
        name = use_case_name(i)
        landing = root / "landing" / name
        landing.mkdir(parents=True, exist_ok=True)
        cfg = SimulationConfig(start_date=FIRST_DAY, rows_per_day=rows_per_day, seed=i)
        for path in write_days(landing, [FIRST_DAY + dt.timedelta(days=d) for d in range(days)], cfg, use_case=name):
            os.utime(path, (old, old))
        (cases / name).mkdir(parents=True, exist_ok=True)
        (cases / name / "defs.yaml").write_text(defs_yaml(name, landing, days))
    return cases


def bench_env(root: Path, cases: Path) -> dict[str, str]:
    data = root / "data"
    (data / "dagster_home").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_", "MLFLOW_"))}
    env.update(MLOPS_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster_home"),
               MLOPS_USE_CASE_DIRS=str(cases), DO_NOT_TRACK="1", PYTHONPATH=str(ROOT))
    return env


# --- 1. code-location load ---------------------------------------------------------------------

# The builders import their modules when first called; importing them first separates the
# fixed import cost from the build, which is what grows with the number of use cases.
LOAD_CHILD = """
import importlib, json, time
t0 = time.perf_counter()
import dagster as dg
for m in ("settings", "chain.resources", "chain.build", "components.use_case", "chain.alerts",
          "chain.raw", "chain.landing_sensor", "chain.labels", "chain.label_sensor",
          "chain.features", "chain.training", "chain.retrain", "chain.evaluation",
          "chain.governance", "chain.scoring", "chain.drift", "chain.performance", "chain.summary"):
    importlib.import_module("mlops_assets." + m)
t1 = time.perf_counter()
import mlops_assets.definitions as location  # builds `defs` at import, as Dagster loads it
t2 = time.perf_counter()
repo = location.defs.get_repository_def()
t3 = time.perf_counter()
from dagster._core.remote_representation.external_data import RepositorySnap
snap = RepositorySnap.from_def(repo)
t4 = time.perf_counter()
again = location.build_defs().get_repository_def()
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "build": t2 - t1, "repository": t3 - t2, "snapshot": t4 - t3,
                  "rebuild": t5 - t4, "total": t4 - t0, "assets": len(repo.assets_defs_by_key),
                  "sensors": len(repo.sensor_defs), "jobs": len(repo.job_names)}))
"""


def load_once(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"loading the code location failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def validate_once(env: dict) -> float:
    started = time.perf_counter()
    out = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "mlops_assets.definitions"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"dagster definitions validate failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return time.perf_counter() - started


# --- 2. sensor and automation ticks (child process: a fresh interpreter per count) ---------------

def ticks_child() -> None:
    """Runs inside the child: prints the tick figures as JSON."""
    import logging

    import dagster as dg
    from dagster._core.definitions.automation_tick_evaluation_context import AutomationTickEvaluationContext
    from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor

    from mlops_assets.definitions import build_defs

    repo = build_defs().get_repository_def()
    instance = dg.DagsterInstance.get()
    resources = repo.get_top_level_resources()  # the alert sensors take the `alerts` resource
    # Timed one after another, as Dagster's sensor daemon runs them by default; the project's
    # dagster.yaml spreads them over worker threads (see `sensor_workers`), reported beside.
    landing = [s for s in repo.sensor_defs if s.name.endswith("_landing_sensor")]
    others = [s for s in repo.sensor_defs if s not in landing and not isinstance(
        s, (dg.AutomationConditionSensorDefinition, dg.RunStatusSensorDefinition))]
    out: dict = {"landing_sensors": len(landing), "landing_interval_s": min(s.minimum_interval_seconds for s in landing),
                 "other_sensors": len(others)}
    cursors: dict[str, str | None] = {}
    for group, sensors in (("landing", landing), ("others", others)):
        for tick in ("first", "idle"):
            times, requested = [], 0
            for sensor in sensors:
                # the sensor's own resources are set up per tick, as the code server does
                own = {k: resources[k] for k in sensor.required_resource_keys}
                started = time.perf_counter()
                with dg.build_sensor_context(instance=instance, cursor=cursors.get(sensor.name), repository_def=repo,
                                             resources=own) as context:
                    data = sensor.evaluate_tick(context)
                times.append(time.perf_counter() - started)
                cursors[sensor.name] = data.cursor
                requested += len(data.run_requests or [])
            out[f"{group}_{tick}"] = {"total": sum(times), "max": max(times), "requested": requested}

    automation = repo.get_sensor_def("automation")
    out["automation_interval_s"] = automation.minimum_interval_seconds
    # The daemon evaluates this sensor (it is not a user-code one) on the asset graph it builds
    # from the code location's snapshot; the definitions' own graph is the other honest choice.
    from dagster._core.remote_representation.external import RemoteRepository
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._core.remote_representation.handle import RepositoryHandle

    remote = RemoteRepository(RepositorySnap.from_def(repo), RepositoryHandle.for_test(),
                              auto_materialize_use_sensors=True).asset_graph
    cursor = AssetDaemonCursor.empty()
    for tick in ("first", "after_raw", "idle"):
        if tick == "after_raw":  # every use case's raw lands all its days: downstream conditions now fire
            for key in repo.asset_graph.get_all_asset_keys():
                node = repo.asset_graph.get(key)
                if key.path[-1] == "raw" and node.partitions_def is not None:
                    for day in node.partitions_def.get_partition_keys():
                        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))
        started = time.perf_counter()
        context = AutomationTickEvaluationContext(
            evaluation_id=cursor.evaluation_id, instance=instance, asset_graph=remote, cursor=cursor,
            materialize_run_tags={}, observe_run_tags={}, auto_observe_asset_keys=set(),
            asset_selection=automation.asset_selection, asset_job_keys=automation.asset_job_keys,
            emit_backfills=automation.emit_backfills, default_condition=None,
            logger=logging.getLogger("bench.automation"))
        run_requests, cursor, _ = context.evaluate()
        out[f"automation_{tick}"] = {"total": time.perf_counter() - started, "keys": context.total_keys,
                                     "requested": len(run_requests)}
    print(json.dumps(out))


def ticks_once(env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-ticks"], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the tick child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- 3. the UI's asset graph query over GraphQL ---------------------------------------------------

# The asset graph page's data, as the UI asks for it: every asset node of the location with its
# dependencies, group, jobs and flags (the graph is laid out in the browser from these).
ASSET_GRAPH_QUERY = """
query AssetGraphQuery {
  assetNodes {
    id
    assetKey { path }
    groupName
    dependencyKeys { path }
    dependedByKeys { path }
    graphName
    jobNames
    opNames
    opVersion
    description
    computeKind
    kinds
    isPartitioned
    isExecutable
    isObservable
    isMaterializable
    hasAssetChecks
    tags { key value }
    repository { id name location { id name } }
  }
}
"""

STATUS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def post(url: str, query: str, timeout: float = 120) -> dict:
    request = urllib.request.Request(url, data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def stop_group(proc: subprocess.Popen, bound_s: float = 20) -> None:
    """SIGTERM to the webserver's process group (it and its code server), SIGKILL after the bound."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(bound_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # code-server children can outlive the webserver
    except ProcessLookupError:
        pass
    proc.wait()


def ui_query(env: dict, repeats: int, log_dir: Path, bound_s: float = 600) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    log = open(log_dir / "webserver.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-m", "mlops_assets.definitions", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"dagster-webserver exited ({proc.returncode}); see {log_dir / 'webserver.log'}")
            if time.perf_counter() - started > bound_s:
                raise SystemExit(f"the code location did not load within {bound_s:.0f} s; see {log_dir / 'webserver.log'}")
            try:
                entries = post(url, STATUS_QUERY, timeout=10)["data"]["workspaceOrError"]["locationEntries"]
            except (OSError, KeyError, ValueError):
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    raise SystemExit(f"the code location failed to load in the webserver: {errors[0]['message'][:2000]}")
                break
            time.sleep(0.5)
        ready = time.perf_counter() - started
        times, nodes = [], 0
        for _ in range(repeats + 1):  # the first request warms the webserver's caches
            t = time.perf_counter()
            result = post(url, ASSET_GRAPH_QUERY)
            times.append(time.perf_counter() - t)
            if result.get("errors"):
                raise SystemExit(f"AssetGraphQuery failed: {result['errors'][:2]}")
            nodes = len(result["data"]["assetNodes"])
        return {"ready": ready, "first": times[0], "median": statistics.median(times[1:]), "nodes": nodes}
    finally:
        stop_group(proc)
        log.close()


# --- driver ---------------------------------------------------------------------------------------

def median_dicts(rows: list[dict]) -> dict:
    """Key by key median of numbers (nested one level), for the repeats of one count."""
    out = {}
    for k, v in rows[0].items():
        if isinstance(v, dict):
            out[k] = median_dicts([r[k] for r in rows])
        else:
            out[k] = statistics.median(r[k] for r in rows) if isinstance(v, (int, float)) else v
    return out


def measure(n: int, args) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench_many_{n}_"))
    t = time.perf_counter()
    cases = write_use_cases(root, n, args.days, args.rows_per_day)
    print(f"  N={n}: wrote {n} use case(s) and {n * args.days} landing file(s) in {time.perf_counter() - t:.1f} s ({root})",
          flush=True)
    env = bench_env(root, cases)
    res: dict = {"n": n}
    res["load"] = median_dicts([load_once(env) for _ in range(args.repeats)])
    print(f"  N={n}: load {json.dumps(res['load'])}", flush=True)
    if not args.skip_validate:
        res["validate"] = statistics.median(validate_once(env) for _ in range(args.repeats))
        print(f"  N={n}: dagster definitions validate {res['validate']:.2f} s", flush=True)
    # each repeat in a fresh data folder: the first landing tick must see new files every time
    tick_rows = []
    for r in range(args.repeats):
        fresh = root / f"ticks_{r}"
        tick_rows.append(ticks_once(bench_env(fresh, cases)))
    res["ticks"] = median_dicts(tick_rows)
    print(f"  N={n}: ticks {json.dumps(res['ticks'])}", flush=True)
    if not args.skip_ui:
        res["ui"] = ui_query(env, args.ui_repeats, root)
        print(f"  N={n}: ui {json.dumps(res['ui'])}", flush=True)
    return res


def rows_of(results: list[dict]) -> list[tuple[str, list[float], str]]:
    """(label, figure per count, unit) of everything reported."""
    def get(path):
        vals = []
        for r in results:
            v = r
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            vals.append(v)
        return vals

    rows = [
        ("load: imports (dagster, mlops_assets, dagster_dbt)", get(["load", "imports"]), "s"),
        ("load: build the Definitions (module import)", get(["load", "build"]), "s"),
        ("load: resolve the repository (asset graph, jobs)", get(["load", "repository"]), "s"),
        ("load: repository snapshot (sent to the webserver)", get(["load", "snapshot"]), "s"),
        ("load: total of the four", get(["load", "total"]), "s"),
        ("load: build + resolve again, same process (warm)", get(["load", "rebuild"]), "s"),
        ("`dagster definitions validate` (whole command)", get(["validate"]), "s"),
        ("landing sensors: first tick, all (new files)", get(["ticks", "landing_first", "total"]), "s"),
        ("landing sensors: first tick, slowest sensor", get(["ticks", "landing_first", "max"]), "s"),
        ("landing sensors: idle tick, all", get(["ticks", "landing_idle", "total"]), "s"),
        ("landing sensors: idle tick, slowest sensor", get(["ticks", "landing_idle", "max"]), "s"),
        ("other sensors (label, retrain, check alerts): first tick, all", get(["ticks", "others_first", "total"]), "s"),
        ("other sensors: idle tick, all", get(["ticks", "others_idle", "total"]), "s"),
        ("automation tick: first (empty cursor)", get(["ticks", "automation_first", "total"]), "s"),
        ("automation tick: after every raw day landed", get(["ticks", "automation_after_raw", "total"]), "s"),
        ("automation tick: idle (nothing new)", get(["ticks", "automation_idle", "total"]), "s"),
        ("webserver start to code location loaded", get(["ui", "ready"]), "s"),
        ("AssetGraphQuery: first request", get(["ui", "first"]), "s"),
        ("AssetGraphQuery: median of the next", get(["ui", "median"]), "s"),
    ]
    return [r for r in rows if all(v is not None for v in r[1])]


def report(results: list[dict], args, started: dt.datetime, load_before: float) -> str:
    counts = [r["n"] for r in results]
    n1, nk = results[0]["n"], results[-1]["n"]
    head = "| figure | " + " | ".join(f"N={n}" for n in counts) + \
           f" | N={nk} / N={n1} | growth ratio (N={nk}) / ({nk // max(n1, 1)} x N={n1}) |"
    lines = [head, "|---|" + "---:|" * (len(counts) + 2)]
    for label, vals, unit in rows_of(results):
        ratio = vals[-1] / vals[0] if vals[0] else float("nan")
        growth = vals[-1] / (nk / max(n1, 1) * vals[0]) if vals[0] else float("nan")
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {ratio:.2f}x | {growth:.2f} |")
    per_uc = ["", "Per use case (the demo use case from mlops_assets/defs/ is loaded too, so N=k is k+1 chains):", "",
              "| figure | " + " | ".join(f"N={n}" for n in counts) + " | " +
              " | ".join(f"extra use case, N={a}->{b}" for a, b in zip(counts, counts[1:])) + " |",
              "|---|" + "---:|" * (2 * len(counts) - 1)]
    for label, vals, unit in rows_of(results):
        per = [v / n for v, n in zip(vals, counts)]
        slopes = [(b - a) / (nb - na) for a, b, na, nb in zip(vals, vals[1:], counts, counts[1:])]
        per_uc.append(f"| {label} | " + " | ".join(f"{v * 1000:.1f} ms" for v in per) + " | " +
                      " | ".join(f"{s * 1000:.1f} ms" for s in slopes) + " |")
    last = results[-1]["ticks"]
    serial_first = last["landing_first"]["total"] + last["others_first"]["total"]
    serial_idle = last["landing_idle"]["total"] + last["others_idle"]["total"]
    workers = sensor_workers()
    interval_lines = [
        "", "Ticks against their intervals (largest N):", "",
        f"- all {last['landing_sensors']} landing sensors, first tick: {last['landing_first']['total']:.2f} s in total "
        f"(slowest sensor {last['landing_first']['max']:.3f} s), idle tick {last['landing_idle']['total']:.2f} s; with the "
        f"{last['other_sensors']} other sensors the sensor daemon evaluates one after another: first {serial_first:.2f} s, "
        f"idle {serial_idle:.2f} s, against the landing interval of {last['landing_interval_s']} s "
        f"({100 * serial_first / last['landing_interval_s']:.0f}% and {100 * serial_idle / last['landing_interval_s']:.0f}%); "
        f"the project's dagster.yaml runs the sensors on {workers} worker threads, so a round is about "
        f"{serial_first / workers:.2f} s first and {serial_idle / workers:.2f} s idle "
        f"({100 * serial_first / workers / last['landing_interval_s']:.0f}% and "
        f"{100 * serial_idle / workers / last['landing_interval_s']:.0f}% of the interval; estimated from the "
        "serial sum, not timed under the daemon)",
        f"- automation sensor over {last['automation_first']['keys']} assets and checks: first tick "
        f"{last['automation_first']['total']:.2f} s, after every raw day landed "
        f"{last['automation_after_raw']['total']:.2f} s ({last['automation_after_raw']['requested']} run request(s)), "
        f"idle {last['automation_idle']['total']:.2f} s, against its interval of {last['automation_interval_s']} s "
        f"({100 * max(last[f'automation_{t}']['total'] for t in ('first', 'after_raw', 'idle')) / last['automation_interval_s']:.1f}% at most)",
    ]
    counts_line = "; ".join(f"N={r['n']}: {r['load']['assets']} assets, {r['load']['sensors']} sensors, "
                            f"{r['load']['jobs']} jobs" for r in results)
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    version = f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        f" with {len(git('status', '--porcelain', '--untracked-files=no').splitlines())} file(s) changed in the working tree"
        if git("status", "--porcelain", "--untracked-files=no") else "")
    cmd = "uv run --frozen python mlops_assets_tests/benchmarks/bench_many_use_cases.py " + shlex.join(sys.argv[1:])
    try:
        load_after = os.getloadavg()[0]
    except OSError:
        load_after = float("nan")
    busy = ("; **the machine was busy: these figures are not representative**"
            if max(load_before, load_after) > 0.75 * (os.cpu_count() or 1) else "")
    header = [
        "<!-- bench:many_use_cases -->",
        "## Many use cases: load, ticks and the asset graph query",
        "",
        f"`{cmd.strip()}`. Measured {started:%Y-%m-%d %H:%M} UTC on {version}; {os.cpu_count()} CPUs (nproc "
        f"{len(os.sched_getaffinity(0))}), Linux {platform.release()}, Python {platform.python_version()}; "
        f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end"
        f"{busy}. Each generated use case: "
        f"{args.days} days of {args.rows_per_day} simulated rows in its own landing folder, features from the raw "
        f"table, its own registered model. Medians of {args.repeats} run(s) per count (load and ticks, each in a "
        f"fresh interpreter), AssetGraphQuery median of {args.ui_repeats} requests after the first. {counts_line}.",
        "",
    ]
    return "\n".join(header + lines + per_uc + interval_lines + ["", "<!-- /bench:many_use_cases -->", ""])


def sensor_workers() -> int:
    """Worker threads the project's dagster.yaml gives the sensor daemon (1 without threads)."""
    import yaml

    from mlops_assets import settings
    from mlops_assets.instance import home as instance_home

    sensors = (yaml.safe_load(instance_home.dagster_yaml(settings.EMBEDDED)) or {}).get("sensors") or {}
    return int(sensors.get("num_workers", 1)) if sensors.get("use_threads") else 1


def main() -> None:
    if "--child-ticks" in sys.argv:
        ticks_child()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,50", help="use-case counts, comma-separated (default 1,50)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per count for load and ticks (medians)")
    parser.add_argument("--ui-repeats", type=int, default=5, help="AssetGraphQuery requests after the first")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rows-per-day", type=int, default=40)
    parser.add_argument("--skip-validate", action="store_true", help="leave out `dagster definitions validate`")
    parser.add_argument("--skip-ui", action="store_true", help="leave out the webserver and its GraphQL query")
    parser.add_argument("--markdown", type=Path, help="also write the BENCHMARKS.md section to this file")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    if not (ROOT / "dbt_project" / "target" / "manifest.json").exists():
        raise SystemExit("the dbt manifest is missing (the demo use case needs it): run `uv run mlops-assets prepare`")
    started = dt.datetime.now(dt.timezone.utc)
    load_before = os.getloadavg()[0]
    results = []
    for n in counts:
        print(f"== N={n} ==", flush=True)
        results.append(measure(n, args))
    text = report(results, args, started, load_before)
    print()
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
