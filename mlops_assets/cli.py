"""`mlops-assets`: set-up and day-to-day commands around the Dagster code location.

  prepare   build the dbt manifest (dbt parse); the code location loads it
  fields    print every use-case field with its type, default and meaning
  simulate  write days of the demo use case into its landing folder
  demo      prepare, simulate if the landing folder is empty, run the main job, say where to look
  ui        prepare, then start `dagster dev` with the embedded defaults
  serve     serve a use case's champion model over HTTP on 127.0.0.1, following promotions
  rollback  point a use case's champion alias back at a previously promoted version
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from mlops_assets import settings


def _log(msg: str) -> None:
    print(f"[mlops-assets] {msg}", flush=True)


def prepare() -> Path:
    """On the shared profile create its databases when missing; run `dbt parse` so the
    manifest matches the SQL on disk."""
    from mlops_assets.resources import dbt_executable

    if settings.is_shared():
        from mlops_assets.shared_databases import DatabaseSetupError, ensure_databases

        try:
            ensure_databases(settings.shared_database_urls(), log=_log)
        except DatabaseSetupError as exc:
            raise SystemExit(f"prepare: {exc}") from None
    manifest = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    # The variables of the dbt target (the profile's defaults unless set), e.g. MLOPS_WAREHOUSE_PG_*.
    env = {**os.environ, **settings.resource_env_values(), "DO_NOT_TRACK": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        [dbt_executable(), "parse", "--project-dir", str(settings.DBT_PROJECT_DIR),
         "--profiles-dir", str(settings.DBT_PROJECT_DIR), "--quiet",
         # The target named as the dbt step names it: dbt keeps a parse state only for the same one.
         "--target", settings.dbt_target()],
        capture_output=True, text=True, env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"dbt parse failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    _log(f"dbt manifest ready at {manifest} ({time.perf_counter() - started:.1f}s)")
    return manifest


def prepare_instance() -> None:
    """Give the Dagster instance (DAGSTER_HOME) the profile's warehouse pool limit, unless one
    was set on it already (mlops_assets/concurrency.py says why the dagster.yaml cannot); fail
    runs whose worker died and free the pool slots they still held."""
    import dagster as dg

    from mlops_assets.concurrency import WAREHOUSE_POOL, apply_pool_limits
    from mlops_assets.recovery import fail_dead_runs

    with dg.DagsterInstance.get() as instance:
        limit = apply_pool_limits(instance, settings.profile(), log=_log)
        fail_dead_runs(instance, _log)  # and free the slots a killed run still holds
    if limit is not None:
        _log(f"concurrency pool {WAREHOUSE_POOL}: {limit} slot(s) ({settings.profile()} profile)")


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def default_start(days: int, existing_days: list[dt.date], first_day: dt.date, today: dt.date) -> dt.date:
    """Where `simulate` starts without --start: after the last day already written; into an
    empty folder, so that the history ends today (UTC) and so the partitions up to today have
    data, but not before the use case's first day (nor the simulator's start)."""
    if existing_days:
        return max(existing_days) + dt.timedelta(days=1)
    return max(first_day, today - dt.timedelta(days=days - 1))


def demo_days(first_day: dt.date, start: dt.date | None, today: dt.date) -> int:
    """The demo's history: from its start (default: the use case's first day) to today, so the
    UI's day partitions are all filled rather than mostly empty bars before the data."""
    return max(1, (today - (start or first_day)).days + 1)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def simulate(days: int, rows_per_day: int, start: dt.date | None, seed: int,
             covariate_drift_from: dt.date | None, concept_drift_from: dt.date | None,
             fmt: str = "csv", folder: Path | None = None, label_delay_days: int | None = None) -> list[Path]:
    """Write `days` days of the demo use case. Without a start date, continue after the last
    day already in the landing folder, or, into an empty folder, end the history today (UTC).
    With `label_delay_days` (and a `labels:` section in the use case) the batch files leave the
    target empty and each day's labels land in the label folder once the day is that many days
    old, as of the newest day written. Returns the batch files."""
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
    from mlops_assets.use_cases.config import load_use_cases

    settings.ensure_local_env()
    uc = next(uc for uc in load_use_cases() if uc.name == "churn")
    if folder is None:
        folder = uc.landing.path()
    base = SimulationConfig()
    if start is None:
        existing = []
        for p in (sorted(folder.glob("churn_*.*")) if folder.is_dir() else []):
            try:
                existing.append(_date(p.stem.removeprefix("churn_")))
            except ValueError:  # not a simulator file name (e.g. a user's churn_extra.csv)
                continue
        start = default_start(days, existing, max(uc.first_day, base.start_date), utc_today())
    cfg = SimulationConfig(start_date=base.start_date, rows_per_day=rows_per_day, seed=seed,
                           covariate_drift_from=covariate_drift_from, concept_drift_from=concept_drift_from)
    label_folder = uc.labels.path() if label_delay_days is not None and uc.labels else None
    if label_delay_days is not None and label_folder is None:
        _log(f"{uc.source_file}: no `labels:` section, so the labels stay in the batch files")
    before = set(label_folder.glob("*")) if label_folder and label_folder.is_dir() else set()
    written = write_days(folder, day_range(start, days), cfg, fmt=fmt, label_folder=label_folder,
                         label_delay_days=label_delay_days or 0)
    _log(f"wrote {len(written)} day(s) x {rows_per_day} rows to {folder} "
         f"({written[0].name} .. {written[-1].name})" + (" with empty targets" if label_folder else ""))
    if label_folder:
        new_labels = sorted(set(label_folder.glob("*")) - before)
        _log(f"wrote {len(new_labels)} label file(s) to {label_folder} for the days at least {label_delay_days} "
             f"day(s) old" + (f" ({new_labels[0].name} .. {new_labels[-1].name})" if new_labels else ""))
    return written


def where_to_look() -> None:
    from mlops_assets.use_cases.config import load_use_cases

    _log("where to look next:")
    if settings.is_shared():
        print(f"  warehouse (Postgres): {settings.display_uri(settings.warehouse_url())}")
    else:
        print(f"  warehouse (DuckDB):   {settings.duckdb_path()}")
    store = settings.display_uri(settings.mlflow_tracking_uri())
    print(f"  MLflow store:         {store}")
    if store.startswith("sqlite:"):  # a local file: the user can browse it; a server has its own UI
        print(f"     browse it with:    uv run mlflow ui --backend-store-uri {store}")
    for uc in load_use_cases():
        print(f"  drift report ({uc.name}): {settings.drift_report_path(uc.name)}")
    print(f"  Dagster home:         {os.environ['DAGSTER_HOME']}")
    print("  lineage and history:  uv run mlops-assets ui   (then open http://127.0.0.1:3000)")
    print("  serve the champion:   uv run mlops-assets serve churn --port 8000")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="build the dbt manifest")
    sub.add_parser("fields", help="print every use-case field with its type, default and meaning (Markdown)")

    def sim_args(p, days, rows):
        p.add_argument("--days", type=int, default=days,
                       help="number of days to write" + ("" if days else "; default: every day from the use "
                            "case's first_day to today, so its day partitions have no empty days"))
        p.add_argument("--rows-per-day", type=int, default=rows)
        p.add_argument("--start", type=_date, default=None, help="first day (YYYY-MM-DD); default: after the last day written, or, into an empty folder, so that the days end today (UTC)")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--covariate-drift-from", type=_date, default=None, help="feature distributions move from this day")
        p.add_argument("--concept-drift-from", type=_date, default=None, help="the feature->target relation changes from this day")
        p.add_argument("--format", choices=["csv", "parquet"], default="csv")
        p.add_argument("--label-delay-days", type=int, default=7,
                       help="labels arrive in the use case's label folder this many days after their rows "
                            "(default 7); the batch files leave the target empty")
        p.add_argument("--labels-in-rows", action="store_true",
                       help="write each row's label in the batch file instead (no label files)")

    sim_args(sub.add_parser("simulate", help="write days of demo data into the landing folder"), 7, 500)
    demo = sub.add_parser("demo", help="prepare, simulate if empty, run the main job")
    sim_args(demo, None, 300)
    ui = sub.add_parser("ui", help="prepare, then run `dagster dev` with the embedded defaults")
    ui.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed on to `dagster dev`")
    serve = sub.add_parser("serve", help="serve a use case's champion over HTTP (POST /predict, GET /version)")
    serve.add_argument("use_case")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--poll-seconds", type=float, default=5.0, help="how often to look for a new champion")
    rollback = sub.add_parser("rollback", help="move the champion alias back to a previously promoted version")
    rollback.add_argument("use_case")
    rollback.add_argument("--to-version", default=None, help="default: the previous champion recorded on the current one")
    args = parser.parse_args(argv)

    try:
        applied = settings.ensure_local_env()
    except settings.SettingsError as exc:  # a bad MLOPS_PROFILE / URL: the message names the variable
        raise SystemExit(f"mlops-assets: {exc}") from None
    for k, v in applied.items():
        # Never a raw tracking URI: it may hold credentials (user:password@, ?token=).
        _log(f"{k}={settings.display_uri(v)} ({settings.profile()} default)")
    if args.command == "prepare":
        prepare()
        prepare_instance()
    elif args.command == "fields":
        from mlops_assets.use_cases.config import fields_markdown

        print(fields_markdown())
    elif args.command == "simulate":
        simulate(args.days, args.rows_per_day, args.start, args.seed, args.covariate_drift_from,
                 args.concept_drift_from, args.format,
                 label_delay_days=None if args.labels_in_rows else args.label_delay_days)
    elif args.command == "demo":
        prepare()
        prepare_instance()
        from mlops_assets.use_cases.config import load_use_cases

        demo_uc = next(uc for uc in load_use_cases() if uc.name == "churn")
        if not any(demo_uc.landing.path().glob(demo_uc.landing.pattern)):
            days = args.days or demo_days(demo_uc.first_day, args.start, utc_today())
            simulate(days, args.rows_per_day, args.start, args.seed, args.covariate_drift_from,
                     args.concept_drift_from, args.format,
                 label_delay_days=None if args.labels_in_rows else args.label_delay_days)
        else:
            _log(f"landing folder {demo_uc.landing.path()} already has data; not simulating")
        from mlops_assets.orchestrate import run_pipeline

        ok = run_pipeline(log=_log)
        where_to_look()
        return 0 if ok else 1
    elif args.command == "ui":
        prepare()
        prepare_instance()
        extra = args.dagster_args or []
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "mlops_assets.definitions",
               *(extra[1:] if extra[:1] == ["--"] else extra)]
        _log("starting " + " ".join(cmd))
        os.execv(cmd[0], cmd)
    elif args.command == "serve":
        from mlops_assets.serving.app import serve as serve_http

        serve_http(args.use_case, args.port, poll_seconds=args.poll_seconds)
    elif args.command == "rollback":
        return rollback_champion(args.use_case, args.to_version)
    return 0


def rollback_champion(use_case: str, to_version: str | None) -> int:
    from mlops_assets.governance import registry
    from mlops_assets.resources import MlflowResource
    from mlops_assets.use_cases.config import UseCaseError, get_use_case

    try:  # an unknown name is explained, including use-case files that failed to load
        name = get_use_case(use_case).registered_model_name
    except UseCaseError as exc:
        raise SystemExit(str(exc)) from exc
    mlflow = MlflowResource.from_settings()
    try:
        previous, current = registry.rollback(mlflow.client(), name, to_version)
    except registry.RegistryError as exc:
        raise SystemExit(f"rollback refused: {exc}") from exc
    _log(f"{name}: champion moved from v{previous} back to v{current} "
         f"({mlflow.model_version_url(name, current)}); servers pick it up at their next poll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
