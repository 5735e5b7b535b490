"""The raw load of a range of days (landing.load_window) against one plain DuckDB statement.

N simulated churn rows over 50 daily CSV files (mlops_assets.simulate) are loaded into a fresh
DuckDB warehouse, each way in its own process and its own copy of the files' warehouse:

- platform: landing.load_window over the 50 days, as the raw asset runs it (file index, checks,
  the insert), from this checkout;
- before (with --before DIR): the same call from another checkout, e.g. the previous commit:
  `git worktree add --detach /tmp/raw_before HEAD~1`;
- plain: a script's `CREATE TABLE ... AS SELECT * FROM read_csv([all files], union_by_name = true,
  filename = true)`, no checks.

Figures are the best of --repeat runs (seconds); ratios are against the plain statement.

    uv run --frozen python mlops_assets_tests/benchmarks/bench_raw_load.py --before /tmp/raw_before
    uv run --frozen python mlops_assets_tests/benchmarks/bench_raw_load.py --rows 100000 1000000 --repeat 2
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = dt.date(2026, 1, 1)
DAYS = 50
REPO = Path(__file__).resolve().parents[2]


def _child(way: str, data: Path) -> None:
    """One timed load in this process; prints the seconds and the rows loaded."""
    os.environ["MLOPS_DATA_DIR"] = str(data)
    import duckdb

    from mlops_assets.use_cases.loader import load_use_cases

    folder = data / "landing" / "churn"
    warehouse = data / f"{way}_{time.time_ns()}.duckdb"
    con = duckdb.connect(str(warehouse))
    start = dt.datetime.combine(FIRST, dt.time())
    t0 = time.perf_counter()
    if way == "plain":
        files = ", ".join(f"'{p}'" for p in sorted(folder.glob("*.csv")))
        con.execute("CREATE SCHEMA raw")
        con.execute(f"CREATE TABLE raw.churn AS SELECT * FROM read_csv([{files}], union_by_name = true, "
                    "filename = true)")
    else:
        from mlops_assets.ingest import landing

        (uc,) = [u for u in load_use_cases() if u.name == "churn"]
        landing.load_window(con, uc, start, start + dt.timedelta(days=DAYS))
    seconds = time.perf_counter() - t0
    rows = con.execute("SELECT count(*) FROM raw.churn").fetchone()[0]
    con.close()
    warehouse.unlink()
    print(f"{seconds:.4f} {rows}")


def _run(way: str, data: Path, code: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(code), "MLOPS_DATA_DIR": str(data)}
    out = subprocess.run([sys.executable, __file__, "--child", way, str(data)], env=env, cwd=code,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--before", type=Path, help="another checkout (e.g. a worktree of the previous commit)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child[0], Path(args.child[1]))
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    ways = [("plain", REPO), ("platform", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"raw load of {DAYS} daily CSV files, best of {args.repeat} (seconds)")
    print(f"{'rows':>9}  " + "  ".join(f"{w:>9}" for w, _ in ways) + "  platform/plain"
          + ("  before/plain  before/platform" if args.before else ""))
    for n in args.rows:
        with tempfile.TemporaryDirectory(prefix="bench_raw_") as tmp:
            data = Path(tmp) / "data"
            write_days(data / "landing" / "churn", day_range(FIRST, DAYS), SimulationConfig(rows_per_day=n // DAYS))
            best = {}
            for _ in range(args.repeat):
                for way, code in ways:
                    seconds, rows = _run(way, data, code)
                    assert rows == n // DAYS * DAYS, (way, rows)  # a wrong load is no figure
                    best[way] = min(best.get(way, seconds), seconds)
        line = f"{n:>9}  " + "  ".join(f"{best[w]:>9.2f}" for w, _ in ways)
        line += f"  {best['platform'] / best['plain']:>14.2f}"
        if args.before:
            line += f"  {best['before'] / best['plain']:>12.2f}  {best['before'] / best['platform']:>15.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
