"""The dbt step alone: time of the dbt models' Dagster step for one day, repeated, against dbt's
own work. Prints figures, asserts nothing.

In a fresh data folder: the simulator writes --days days, the raw asset loads them (one run),
then the dbt asset is materialized for each of the last --repeat days, one `dg.materialize` each
(in this process: no run launch, no code location load). dbt runs in this process too
(chain/dbt.py); for each step it prints the step's wall time, dbt's own elapsed time (the
invocation's dbt.log) and whether the step parsed the project (the first one in a process does,
the others reuse its manifest). Then `mlops-assets prepare` is timed fresh (manifest up to date:
no dbt parse) and stale (a model touched: dbt parse).

    uv run python mlops_assets_tests/benchmarks/bench_dbt_step.py --days 30 --repeat 4
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parse_kind(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    why = re.search(r"Unable to do partial parsing because ([^\"\\]+)", text)
    if why:
        return f"full parse ({why.group(1).strip()})"
    if "Partial parse save file not found" in text:
        return "full parse (no saved state)"
    return "partial parse" if text else "unknown (no dbt.log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--no-cli", action="store_true", help="skip the dbt-alone comparison")
    parser.add_argument("--no-steps", action="store_true", help="only the dbt-alone comparison")
    parser.add_argument("--no-prepare", action="store_true", help="skip timing `mlops-assets prepare`")
    args = parser.parse_args(argv)

    data = Path(tempfile.mkdtemp(prefix="bench_dbt_step_"))
    for k in ("MLFLOW_TRACKING_URI", "MLOPS_DUCKDB_PATH", "MLOPS_USE_CASE_DIRS"):
        os.environ.pop(k, None)
    os.environ.update({"MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "DO_NOT_TRACK": "1"})
    (data / "dagster_home").mkdir(parents=True)
    sys.path.insert(0, str(ROOT))

    import dagster as dg

    from mlops_assets import settings
    from mlops_assets.cli import prepare
    from mlops_assets.chain.build import dbt_assets_of
    from mlops_assets.chain.dbt import parse_count
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.resources import shared_resources
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
    from mlops_assets.use_cases.loader import load_use_cases

    settings.fill_env_defaults()
    prepare()
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    first = dt.date.today() - dt.timedelta(days=args.days)
    write_days(uc.landing.path(), day_range(first, args.days), SimulationConfig(start_date=first,
                                                                             rows_per_day=args.rows_per_day))
    instance = dg.DagsterInstance.get()
    raw = build_raw_asset(uc)
    (models,) = dbt_assets_of(uc)
    resources = shared_resources()
    last = first + dt.timedelta(days=args.days - 1)
    assert dg.materialize([raw], instance=instance, resources=resources,
                          tags={"dagster/asset_partition_range_start": first.isoformat(),
                                "dagster/asset_partition_range_end": last.isoformat()}).success
    target = settings.DBT_PROJECT_DIR / "target"
    print(f"{args.days} days x {args.rows_per_day} rows in {data}; dbt step per day:")
    walls = []
    for i in range(0 if args.no_steps else args.repeat):
        day = last - dt.timedelta(days=args.repeat - 1 - i)
        before = set(target.iterdir())
        parses = parse_count()
        t0 = time.perf_counter()
        result = dg.materialize([raw, models], selection=[k for k in models.keys], instance=instance,
                                resources=resources, partition_key=day.isoformat())
        wall = time.perf_counter() - t0
        assert result.success
        new = sorted(set(target.iterdir()) - before, key=lambda p: p.stat().st_mtime)
        log = new[-1] / "dbt.log" if new else Path("/nonexistent")
        elapsed = re.findall(r"Finished running .* in [^(]*\(([\d.]+)s\)", log.read_text(errors="replace")) \
            if log.exists() else []
        walls.append(wall)
        parsed = "parsed the project" if parse_count() > parses else "manifest reused"
        print(f"  {day}: step {wall:5.1f}s  dbt's own run {elapsed[-1] if elapsed else '?'}s  {parsed}", flush=True)
    if walls:
        print(f"median step {sorted(walls)[len(walls) // 2]:.1f}s; first {walls[0]:.1f}s, then "
              f"{min(walls[1:]) if len(walls) > 1 else float('nan'):.1f}..{max(walls[1:]) if len(walls) > 1 else float('nan'):.1f}s")
    if not args.no_cli:
        cli_comparison(last, args.repeat, data)
    if not args.no_prepare:
        prepare_comparison(args.repeat)
    return 0


def prepare_comparison(repeat: int) -> None:
    """`mlops-assets prepare` (its dbt part, in a new process as users run it) with the manifest
    up to date (no dbt parse) and with a model touched (dbt parse)."""
    import subprocess

    from mlops_assets import settings

    model = next((settings.DBT_PROJECT_DIR / "models" / "churn").glob("*.sql"))
    code = "from mlops_assets.cli import prepare; prepare()"
    print("mlops-assets prepare (python -c 'prepare()', process start included):")
    for mode in ("stale", "fresh") * repeat:
        if mode == "stale":
            os.utime(model)  # now: newer than the manifest
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"prepare failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        said = (proc.stdout.strip().splitlines() or ["?"])[-1]
        print(f"  {mode}: {wall:5.2f}s  {said[:110]}", flush=True)


def cli_comparison(last: dt.date, repeat: int, data: Path) -> None:
    """`dbt build` alone, the way dagster-dbt runs it (a fresh target folder seeded with the
    project's partial_parse.msgpack), day after day, alternating the two ways of passing the
    window: `--vars` (before) and the window variables (now)."""
    import json
    import shutil
    import subprocess

    from mlops_assets import settings
    from mlops_assets.chain.dbt import keep_parse_state
    from mlops_assets.chain.features import dbt_window_env
    from mlops_assets.chain.resources import dbt_executable

    project = settings.DBT_PROJECT_DIR
    seed = project / "target" / "partial_parse.msgpack"
    print("dbt build alone (subprocess wall time, parse kind):")
    times: dict[str, list[float]] = {"--vars": [], "window variables": []}
    for i in range(repeat):
        day = last - dt.timedelta(days=repeat - 1 - i)
        window = (day.isoformat(), (day + dt.timedelta(days=1)).isoformat())
        for mode in times:
            target = data / "dbt_targets" / f"{mode[:2].strip('-')}_{i}"
            target.mkdir(parents=True)
            if seed.exists():
                shutil.copy(seed, target / "partial_parse.msgpack")
            env = {**os.environ, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target),
                   "DBT_PROFILES_DIR": str(project)}
            env.pop("MLOPS_DBT_MIN_DATE", None)
            env.pop("MLOPS_DBT_MAX_DATE", None)
            # --target as dagster-dbt passes it (the parse state is kept per target name)
            args = [dbt_executable(), "build", "--select", "path:models/churn", "--target", settings.dbt_target()]
            if mode == "--vars":
                args += ["--vars", json.dumps({"min_date": window[0], "max_date": window[1]})]
            else:
                env.update(dbt_window_env(*window))
            t0 = time.perf_counter()
            proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"dbt build ({mode}) failed:\n{proc.stdout[-3000:]}")
            if mode != "--vars":
                keep_parse_state(target)
            times[mode].append(wall)
            print(f"  {day} {mode:17s} {wall:5.1f}s  {_parse_kind(target / 'dbt.log')}", flush=True)
    for mode, ts in times.items():
        print(f"  {mode}: median {sorted(ts)[len(ts) // 2]:.1f}s over {len(ts)}")


if __name__ == "__main__":
    sys.exit(main())
