"""The platform's CI path against a plain script doing the same work, on the same files.

For each size (default 100k and 1M rows of the demo over --days days), the simulator writes the
landing files once into a temporary folder; then, pair by pair with the order alternating, the
platform and plain_pipeline.py each run in a fresh data folder on hard links to those same
files. The platform is driven only through its public commands, as the README's CI section does:

    mlops-assets prepare
    dagster asset materialize -m mlops_assets.definitions --select raw,stg,features --partition-range FIRST...LAST
    dagster asset materialize ... --select training_set,candidate_model,model_evaluation,champion_model
    dagster asset materialize ... --select drift_report,batch_predictions --partition LAST

Reported per step and in total: wall times, the ratio platform / plain, and peak memory of each
side (see `measure` for what the two memory figures mean). Prints a table and writes the figures,
with machine and date, into BENCHMARKS.md (only the sections this run measured are replaced).

--latency and --history add the two continuous-training figures of bench_continuous.py (a landed
file's drift report under `dagster dev`; one new day at 30/180/365 days of history), by calling
its functions.

    uv run python mlops_assets_tests/benchmarks/bench_vs_script.py                 # 100k and 1M rows
    uv run python mlops_assets_tests/benchmarks/bench_vs_script.py --quick         # 10k rows, for development
    uv run python mlops_assets_tests/benchmarks/bench_vs_script.py --rows 100000 --repeat 3 --latency --history
    uv run python mlops_assets_tests/benchmarks/bench_vs_script.py --no-pairs --latency --no-write  # latency only
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as _platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
USE_CASE = "churn"

# The README's CI commands, in order; the plain script's steps are grouped the same way
# (plain_pipeline.STEP_GROUPS).
GROUPS = [
    ("prepare", "prepare (dbt parse)", None),
    ("load_features", "raw + dbt features over the range", ["raw", "stg_churn", "features_churn"]),
    ("training", "training chain (set, model, evaluation, promotion)",
     ["training_set", "candidate_model", "model_evaluation", "champion_model"]),
    ("last_day", "last day: drift report + batch predictions", ["drift_report", "batch_predictions"]),
]
GOALS_TOTAL = {100_000: 1.5, 1_000_000: 1.2}  # issue 10: whole chain within this ratio of the plain script
GOAL_MEMORY = 1.5
GOAL_LATENCY_S = 60.0
GOAL_NEW_DAY_S = 10.0


# ---- running a process tree and measuring it -------------------------------------------------------

@dataclass
class Measured:
    wall_s: float
    returncode: int
    maxrss_mb: float       # largest single process of the tree (kernel's ru_maxrss via wait4)
    tree_peak_mb: float    # largest sum of RSS over the tree's live processes, sampled
    log: Path


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # exited meanwhile
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree_rss_bytes(root: int) -> int:
    kids, todo, total = _children_map(), [root], 0
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except OSError:
            pass
    return total


def measure(cmd: list[str], env: dict, log: Path, sample_every: float = 0.5) -> Measured:
    """Run `cmd`, output to `log`. Two memory figures, both of the whole process tree:

    - maxrss_mb: from wait4(), the kernel's peak resident set of the child or of any descendant
      it waited for, whichever is largest. It is a max over processes, not a sum: two processes
      alive at once (e.g. dagster and its dbt subprocess) count as the larger of the two.
    - tree_peak_mb: the largest sum of the RSS of every live process of the tree, sampled every
      `sample_every` seconds from /proc. It sees concurrent processes but can miss a short peak,
      and counts pages shared between processes (forked children, shared libraries) twice.
    """
    peak = [0]
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(sample_every):
                peak[0] = max(peak[0], _tree_rss_bytes(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            # Poll the zombie-free way: wait4 on this pid only, which also returns its rusage.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            done.set()
            sampler.join()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, proc.returncode, usage.ru_maxrss / 1024, peak[0] / 2**20, log)


def _check(m: Measured, what: str) -> None:
    if m.returncode != 0:
        tail = m.log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{what} failed (exit {m.returncode}); log {m.log}:\n{tail}")


# ---- data ---------------------------------------------------------------------------------------

def base_env(data: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH", "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_USE_CASE_DIRS")}
    return {**env, "MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1"}


def simulate(rows: int, days: int, tmp: Path) -> tuple[Path, dt.date, dt.date]:
    """Write `rows` rows over `days` days ending today (UTC) with the simulator's command; return
    the landing folder and the first and last day."""
    last = dt.datetime.now(dt.timezone.utc).date()
    first = last - dt.timedelta(days=days - 1)
    src = tmp / f"source_{rows}"
    log = tmp / f"simulate_{rows}.log"
    # Labels in the landing rows: the README's CI path has no labels asset, and both sides must
    # train on the same labelled rows (the simulator's default sends labels days later, apart).
    m = measure([str(BIN / "mlops-assets"), "simulate", "--days", str(days), "--rows-per-day", str(rows // days),
                 "--start", first.isoformat(), "--labels-in-rows"], base_env(src), log)
    _check(m, f"simulate {rows} rows")
    return src / "landing" / USE_CASE, first, last


def link_files(source: Path, target: Path) -> None:
    """The same files for every run: hard links (copies across file systems)."""
    target.mkdir(parents=True)
    for f in sorted(source.iterdir()):
        try:
            os.link(f, target / f.name)
        except OSError:
            shutil.copy2(f, target / f.name)


# ---- the two sides ------------------------------------------------------------------------------

@dataclass
class SideResult:
    wall_s: float
    groups_s: dict[str, float]             # per CI command (platform) or step group (plain)
    detail_s: dict[str, float]             # per Dagster step / plain step
    maxrss_mb: float
    tree_peak_mb: float
    rows: dict[str, int] = field(default_factory=dict)
    in_steps_s: dict[str, float] = field(default_factory=dict)  # platform: step time inside each run


def _dagster_runs(env: dict) -> list[dict]:
    """Every run of the instance, oldest first: its step times ("steps") and its wall time from
    start to end ("wall"). A child process: the benchmark itself imports nothing of Dagster."""
    code = ("import dagster as dg, json\n"
            "i = dg.DagsterInstance.get()\n"
            "runs = sorted(i.get_run_records(), key=lambda r: r.create_timestamp.timestamp())\n"
            "print(json.dumps([{'steps': {s.step_key: s.end_time - s.start_time for s in"
            " i.get_run_step_stats(r.dagster_run.run_id) if s.end_time and s.start_time},"
            " 'wall': (r.end_time or 0) - (r.start_time or 0)} for r in runs]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _count(db: Path, sql: str) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def run_platform(landing: Path, first: dt.date, last: dt.date, work: Path, path: str = "one") -> SideResult:
    """The platform's CI path: `one` is `mlops-assets run` (the three runs in one process), `three`
    is `mlops-assets prepare` and three `dagster asset materialize` commands."""
    data = work / "data"
    link_files(landing, data / "landing" / USE_CASE)
    env = base_env(data)
    (data / "dagster_home").mkdir(parents=True)
    if path == "one":
        return _platform_one_command(data, env, work, first, last)
    materialize = [str(BIN / "dagster"), "asset", "materialize", "-m", "mlops_assets.definitions", "--select"]
    commands = {
        "prepare": [str(BIN / "mlops-assets"), "prepare"],
        "load_features": materialize + [",".join(f"{USE_CASE}/{a}" for a in GROUPS[1][2]),
                                        "--partition-range", f"{first}...{last}"],
        "training": materialize + [",".join(f"{USE_CASE}/{a}" for a in GROUPS[2][2])],
        "last_day": materialize + [",".join(f"{USE_CASE}/{a}" for a in GROUPS[3][2]), "--partition", last.isoformat()],
    }
    groups, maxrss, tree = {}, 0.0, 0.0
    for name, cmd in commands.items():
        m = measure(cmd, env, work / f"platform_{name}.log")
        _check(m, f"platform step {name}: {' '.join(cmd)}")
        groups[name] = m.wall_s
        maxrss, tree = max(maxrss, m.maxrss_mb), max(tree, m.tree_peak_mb)
        print(f"  platform {name:14s} {m.wall_s:7.1f}s  maxrss {m.maxrss_mb:6.0f} MB", flush=True)
    runs = _dagster_runs(env)
    if len(runs) != 3:
        raise SystemExit(f"expected 3 Dagster runs in {data / 'dagster_home'}, found {len(runs)}")
    detail = {k: v for run in runs for k, v in run["steps"].items()}
    in_steps = {name: sum(run["steps"].values()) for name, run in zip(["load_features", "training", "last_day"], runs)}
    return SideResult(sum(groups.values()), groups, detail, maxrss, tree, _platform_rows(data, last), in_steps)


def _platform_one_command(data: Path, env: dict, work: Path, first: dt.date, last: dt.date) -> SideResult:
    """`mlops-assets run`: per group, the wall time of its Dagster run; `prepare` holds the rest
    (interpreter, imports, code location, dbt manifest check, the time between runs)."""
    cmd = [str(BIN / "mlops-assets"), "run", "--use-case", USE_CASE, "--partition-range", f"{first}...{last}"]
    m = measure(cmd, env, work / "platform_run.log")
    _check(m, f"platform: {' '.join(cmd)}")
    runs = _dagster_runs(env)
    if len(runs) != 3:
        raise SystemExit(f"expected 3 Dagster runs in {data / 'dagster_home'}, found {len(runs)}")
    names = ["load_features", "training", "last_day"]
    groups = {name: run["wall"] for name, run in zip(names, runs)}
    groups = {"prepare": m.wall_s - sum(groups.values()), **groups}
    detail = {k: v for run in runs for k, v in run["steps"].items()}
    in_steps = {name: sum(run["steps"].values()) for name, run in zip(names, runs)}
    print(f"  platform run           {m.wall_s:7.1f}s  maxrss {m.maxrss_mb:6.0f} MB", flush=True)
    return SideResult(m.wall_s, groups, detail, m.maxrss_mb, m.tree_peak_mb, _platform_rows(data, last), in_steps)


def _platform_rows(data: Path, last: dt.date) -> dict[str, int]:
    db = data / "warehouse.duckdb"
    rows = {"raw_rows": _count(db, f"SELECT count(*) FROM raw.{USE_CASE}"),
            "feature_rows": _count(db, f"SELECT count(*) FROM main.features_{USE_CASE}"),
            "prediction_rows": _count(db, f"SELECT count(*) FROM predictions.{USE_CASE} "
                                          f"WHERE CAST(event_ts AS DATE) = DATE '{last}'")}
    return rows


def run_plain(landing: Path, work: Path, pipeline: str) -> SideResult:
    sys.path.insert(0, str(HERE))
    from plain_pipeline import STEP_GROUPS

    out = work / "plain.json"
    cmd = [sys.executable, str(HERE / "plain_pipeline.py"), "--landing", str(landing), "--work", str(work / "plain"),
           "--json", str(out), "--pipeline", pipeline]
    m = measure(cmd, base_env(work / "plain_data"), work / "plain.log")
    _check(m, "plain script")
    result = json.loads(out.read_text())
    groups = {"prepare": 0.0, "load_features": 0.0, "training": 0.0, "last_day": 0.0}
    for step, s in result["steps"].items():
        groups[STEP_GROUPS[step]] += s
    print(f"  plain    total          {m.wall_s:7.1f}s  maxrss {m.maxrss_mb:6.0f} MB  "
          f"(holdout ROC AUC {result['holdout']['roc_auc']:.3f})", flush=True)
    rows = {k: int(result[k]) for k in ("raw_rows", "feature_rows", "prediction_rows")}
    return SideResult(m.wall_s, groups, dict(result["steps"]), m.maxrss_mb, m.tree_peak_mb, rows)


# ---- summary ------------------------------------------------------------------------------------

def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


PATH_TEXT = {
    "one": ("`mlops-assets run --use-case churn --partition-range FIRST...LAST` (one process: the three Dagster runs in process); per step the "
            "wall time of its Dagster run", "start-up outside the runs (interpreter, imports, code location, "
            "prepare)"),
    "three": ("`mlops-assets prepare` and the three `dagster asset materialize` commands, each its own process; "
              "per step the command's wall time", "prepare (dbt parse)"),
}


def summarize(rows: int, pairs: list[tuple[SideResult, SideResult]], path: str = "one") -> tuple[list[str], dict]:
    """Markdown table lines and the headline figures, medians over the pairs."""
    P = [p for p, _ in pairs]
    Q = [q for _, q in pairs]
    lines = ["| step | platform s | of which in Dagster steps s | plain s | platform / plain |",
             "|---|---:|---:|---:|---:|"]
    for name, label, _ in GROUPS:
        label = PATH_TEXT[path][1] if name == "prepare" else label
        p = _median([r.groups_s[name] for r in P])
        q = _median([r.groups_s[name] for r in Q])
        inside = _median([r.in_steps_s[name] for r in P]) if name != "prepare" else float("nan")
        lines.append(f"| {label} | {p:.1f} | {'-' if inside != inside else f'{inside:.1f}'} | "
                     f"{'-' if name == 'prepare' else f'{q:.1f}'} | {'-' if name == 'prepare' else _ratio(p, q)} |")
    plain_outside = _median([r.wall_s - sum(r.groups_s.values()) for r in Q])
    lines.append(f"| plain script start-up (interpreter, duckdb, use case config) | - | - | {plain_outside:.1f} | - |")
    pt, qt = _median([r.wall_s for r in P]), _median([r.wall_s for r in Q])
    goal = GOALS_TOTAL.get(rows)
    lines.append(f"| **total** | **{pt:.1f}** | {_median([sum(r.in_steps_s.values()) for r in P]):.1f} | **{qt:.1f}** | "
                 f"**{_ratio(pt, qt)}** |")
    pm, qm = _median([r.maxrss_mb for r in P]), _median([r.maxrss_mb for r in Q])
    pp, qp = _median([r.tree_peak_mb for r in P]), _median([r.tree_peak_mb for r in Q])
    lines.append(f"| peak RSS, largest process (MB) | {pm:.0f} | | {qm:.0f} | {_ratio(pm, qm)} |")
    lines.append(f"| peak RSS, process tree sum, sampled (MB) | {pp:.0f} | | {qp:.0f} | {_ratio(pp, qp)} |")
    headline = {"rows": rows, "pairs": len(pairs), "platform_s": pt, "plain_s": qt, "ratio": pt / qt,
                "goal": goal, "memory_ratio": pm / qm, "platform_totals": [round(r.wall_s, 1) for r in P],
                "plain_totals": [round(r.wall_s, 1) for r in Q]}
    return lines, headline


def detail_lines(pairs: list[tuple[SideResult, SideResult]]) -> list[str]:
    """Dagster's own step times and the plain script's, medians: where the time goes inside."""
    keys_p = list(dict.fromkeys(k for p, _ in pairs for k in p.detail_s))
    keys_q = list(dict.fromkeys(k for _, q in pairs for k in q.detail_s))
    cell = lambda rs, k: f"{_median([r.detail_s[k] for r in rs if k in r.detail_s]):.1f}"  # noqa: E731
    P, Q = [p for p, _ in pairs], [q for _, q in pairs]
    left = [f"{k} {cell(P, k)}" for k in keys_p]
    right = [f"{k} {cell(Q, k)}" for k in keys_q]
    return [f"Dagster steps (s): {', '.join(left)}.", f"Plain script steps (s): {', '.join(right)}."]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1).strip()
    except (OSError, AttributeError):
        pass
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 2**20:.1f} GiB RAM"
    except (OSError, AttributeError):
        ram = "RAM unknown"
    return f"{os.cpu_count()} CPUs ({cpu}), {ram}, {_platform.system()} {_platform.release()}, Python " \
           f"{_platform.python_version()}"


def load_note(at_start: tuple[float, float, float]) -> str:
    """The 1-minute load average before the benchmark started (the one that says whether others
    were using the machine) and at the end (which includes the benchmark's own processes)."""
    end = os.getloadavg()
    busy = at_start[0] > 0.5 * (os.cpu_count() or 1)
    return (f"load average (1 min) {at_start[0]:.1f} at the start, {end[0]:.1f} at the end"
            + ("; **the machine was busy: these figures are not representative**" if busy else ""))


def update_benchmarks_md(sections: dict[str, str], path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) each section between its markers; keep the others."""
    text = path.read_text() if path.exists() else (
        "# Benchmarks\n\nFigures of `mlops_assets_tests/benchmarks/bench_vs_script.py` (see the README's "
        "Benchmarks section). Each section is replaced by the run that measured it.\n")
    for name, body in sections.items():
        start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
        block = f"{start}\n{body.rstrip()}\n{end}"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def _stamp(load_at_start: tuple[float, float, float]) -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}; {load_note(load_at_start)}"


def _met(value: float, goal: float | None) -> str:
    if goal is None:
        return "no goal at this size"
    return f"goal {goal:g}x: {'met' if value <= goal else 'not met'}"


# ---- continuous-training figures (bench_continuous.py) -----------------------------------------

def continuous(latency: bool, history: bool, histories: list[int], rows_per_day: int,
               load_at_start: tuple[float, float, float]) -> dict[str, str]:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import bench_continuous as bc

    saved = dict(os.environ)  # bench_continuous points the environment at its own data folders
    sections = {}
    try:
        if history:
            rows = []
            for n in histories:
                print(f"== one new day after {n} days of history ==", flush=True)
                r = bc.one_new_day(n, rows_per_day)
                rows.append(f"| {n} | {r['load_and_features_s']:.1f} | {r['drift_and_scoring_s']:.1f} | "
                            f"{r['total_s']:.1f} | {'met' if r['total_s'] <= GOAL_NEW_DAY_S else 'not met'} |")
                print(rows[-1], flush=True)
            sections["history"] = "\n".join([
                "## One new day at growing history", "",
                f"{rows_per_day} rows per day; the day's raw + dbt run, then its drift report and batch "
                f"predictions, in one process (`bench_continuous.one_new_day`). Goal: within "
                f"{GOAL_NEW_DAY_S:g} s at any history. Measured {_stamp(load_at_start)}.", "",
                "| history (days) | raw + dbt s | drift + scoring s | total s | goal |", "|---:|---:|---:|---:|---|",
                *rows])
        if latency:
            print("== landing file -> drift report under dagster dev ==", flush=True)
            s = bc.landing_latency(14, rows_per_day, 900)
            sections["latency"] = "\n".join([
                "## Landing file to drift report", "",
                f"`dagster dev` with the shipped sensor and automation intervals, 14 days of history, "
                f"{rows_per_day} rows per day; time from the new day's file appearing to its drift report "
                f"(`bench_continuous.landing_latency`). Goal: within {GOAL_LATENCY_S:g} s.", "",
                f"Measured {_stamp(load_at_start)}: **{s:.0f} s** ({'met' if s <= GOAL_LATENCY_S else 'not met'})."])
            print(f"latency {s:.0f}s", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return sections


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="total rows per data set")
    parser.add_argument("--quick", action="store_true",
                        help="10k rows, for development; figures are printed, BENCHMARKS.md is left alone")
    parser.add_argument("--days", type=int, default=50, help="days the rows are spread over")
    parser.add_argument("--repeat", type=int, default=1, help="pairs per size (medians are reported)")
    parser.add_argument("--pipeline", choices=["plain", "platform"], default="plain",
                        help="the plain script's preprocessing (see plain_pipeline.py)")
    parser.add_argument("--path", choices=["one", "three"], default="one",
                        help="the platform's CI path: `mlops-assets run` (one process, the README's CI block) or "
                             "`mlops-assets prepare` and three `dagster asset materialize` commands")
    parser.add_argument("--latency", action="store_true", help="also: landing file to drift report under dagster dev")
    parser.add_argument("--history", action="store_true", help="also: one new day at --histories days of history")
    parser.add_argument("--histories", default="30,180,365")
    parser.add_argument("--history-rows-per-day", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--no-pairs", action="store_true",
                        help="skip the platform/plain pairs: only the --latency and --history figures")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folders (logs, stores)")
    args = parser.parse_args(argv)
    sizes = [] if args.no_pairs else [10_000] if args.quick else args.rows
    if args.repeat < 1 or args.days < 8 or any(r < args.days * 20 for r in sizes):
        raise SystemExit("need --repeat >= 1, --days >= 8 (7 are held out) and at least 20 rows per day")

    load_at_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_vs_script_"))
    print(f"data folders under {tmp}", flush=True)
    sections: dict[str, str] = {}
    results = {}
    pair_index = 0
    try:
        for rows in sizes:
            landing, first, last = simulate(rows, args.days, tmp)
            pairs = []
            for i in range(args.repeat):
                work = tmp / f"run_{rows}_{i}"
                work.mkdir()
                platform_first = pair_index % 2 == 0  # alternate which side runs first, over all pairs
                pair_index += 1
                print(f"== {rows} rows, pair {i + 1}/{args.repeat} ({'platform' if platform_first else 'plain'} first) ==",
                      flush=True)
                sides = {}
                for side in (["platform", "plain"] if platform_first else ["plain", "platform"]):
                    sides[side] = (run_platform(landing, first, last, work / "platform", args.path) if side == "platform"
                                   else run_plain(landing, work, args.pipeline))
                if sides["platform"].rows != sides["plain"].rows:
                    raise SystemExit(f"the two sides processed different rows: platform {sides['platform'].rows}, "
                                     f"plain {sides['plain'].rows}")
                pairs.append((sides["platform"], sides["plain"]))
            table, head = summarize(rows, pairs, args.path)
            results[rows] = head
            print(f"\n{rows:,} rows ({args.days} days, {len(pairs)} pair(s), medians):")
            print("\n".join(table))
            print("\n".join(detail_lines(pairs)) + "\n", flush=True)
            stamp = _stamp(load_at_start)
            sections[f"vs_script_{rows}"] = "\n".join([
                f"## Platform vs plain script, {rows:,} rows", "",
                f"{rows:,} demo rows over {args.days} days, {len(pairs)} pair(s) in alternating order "
                f"(medians), plain script preprocessing `{args.pipeline}`. Platform: {PATH_TEXT[args.path][0]}. "
                f"Measured {stamp}.", "",
                *table, "",
                f"Total: platform {head['platform_s']:.1f} s, plain {head['plain_s']:.1f} s, "
                f"**{head['ratio']:.2f}x** ({_met(head['ratio'], head['goal'])}); peak memory (largest process) "
                f"{head['memory_ratio']:.2f}x ({_met(head['memory_ratio'], GOAL_MEMORY)}).", "",
                *detail_lines(pairs)])
        if args.latency or args.history:
            sections.update(continuous(args.latency, args.history, [int(x) for x in args.histories.split(",")],
                                       args.history_rows_per_day, load_at_start))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if not (args.no_write or args.quick):
        update_benchmarks_md(sections)
        print(f"wrote {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
