"""`mlops-assets`: set-up and day-to-day commands around the Dagster code location.

  prepare   build the dbt manifest (dbt parse); the code location loads it
  fields    print every use-case field with its type, default and meaning
  simulate  write days of the demo use cases (churn, demand) into their landing folders
  demo      prepare, simulate the history of each demo use case whose landing folder is empty,
            load it and train, replay the last days as events through the sensors (churn 14,
            demand 2), summarise, say where to look
  run       CI's chain in one process: prepare, then per use case the landing days' raw data and
            features (one run over the range), train-evaluate-promote, and the last day's drift
            report and batch predictions; exit 1 when a run or a blocking check failed
  ui        prepare, then start `dagster dev` with the embedded defaults
  serve     serve a use case's champion model over HTTP on 127.0.0.1, following promotions
  rollback  point a use case's champion alias back at a previously promoted version
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlops_assets import settings
from mlops_assets.instance import home as instance_home


def _log(msg: str) -> None:
    print(f"[mlops-assets] {msg}", flush=True)


def prepare() -> Path:
    """On the shared profile create its databases when missing; run `dbt parse` so the
    manifest matches the SQL on disk, unless it already does (chain/dbt_freshness.py: newer
    than every dbt file, made for the same target and profile values)."""
    from mlops_assets.chain.dbt import parse_into_target
    from mlops_assets.chain.dbt_freshness import manifest_freshness, manifest_state, write_stamp

    if settings.is_shared():
        from mlops_assets.warehouse.shared import DatabaseSetupError, ensure_databases

        try:
            ensure_databases(settings.shared_database_urls(), log=_log)
        except DatabaseSetupError as exc:
            raise SystemExit(f"prepare: {exc}") from None
    project = settings.DBT_PROJECT_DIR
    manifest = project / "target" / "manifest.json"
    # The variables of the dbt target (the profile's defaults unless set), e.g. MLOPS_WAREHOUSE_PG_*.
    env = {**os.environ, **settings.resource_env_values(), "DO_NOT_TRACK": "1"}
    target = settings.dbt_target()
    freshness = manifest_freshness(manifest, project, project, target, env)
    if freshness.fresh:
        _log(f"dbt manifest up to date at {manifest} ({freshness.reason}; skipped dbt parse)")
        return manifest
    state = manifest_state(project, project, target, env)  # before the parse: a file saved meanwhile is newer
    started = time.perf_counter()
    # In this process (no dbt process to start; `mlops-assets run`'s dbt steps then find dbt
    # imported), with the target named as the dbt step names it: dbt keeps a parse state only
    # for the same one.
    errors = parse_into_target(project, project, target, {**settings.resource_env_values(), "DO_NOT_TRACK": "1"})
    if errors:
        raise SystemExit("dbt parse failed:\n" + "\n".join(errors))
    write_stamp(manifest, state)
    _log(f"dbt manifest ready at {manifest} ({time.perf_counter() - started:.1f}s; parsed because {freshness.reason})")
    return manifest


def prepare_instance() -> None:
    """Give the Dagster instance (DAGSTER_HOME) the profile's warehouse pool limit, unless one
    was set on it already (mlops_assets/instance/concurrency.py says why the dagster.yaml cannot); fail
    runs whose worker died and free the pool slots they still held."""
    import dagster as dg

    from mlops_assets.instance.concurrency import WAREHOUSE_POOL, apply_pool_limits
    from mlops_assets.instance.recovery import fail_dead_runs

    with dg.DagsterInstance.get() as instance:
        limit = apply_pool_limits(instance, settings.profile(), log=_log)
        fail_dead_runs(instance, _log)  # and free the slots a killed run still holds
    if limit is not None:
        _log(f"concurrency pool {WAREHOUSE_POOL}: {limit} slot(s) ({settings.profile()} profile)")


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def _day_range(s: str) -> tuple[dt.date, dt.date]:
    """FIRST...LAST, as Dagster's CLI writes a partition range."""
    try:
        lo, hi = (dt.date.fromisoformat(part) for part in s.split("..."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: expected FIRST...LAST, two days YYYY-MM-DD") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"{s!r}: FIRST is after LAST")
    return lo, hi


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
             fmt: str = "csv", folder: Path | None = None, label_delay_days: int | None = None,
             concept_drift_strength: float = 1.0, use_case: str = "churn") -> list[Path]:
    """Write `days` days of a simulated demo use case (churn or demand). Without a start date,
    continue after the last day already in the landing folder, or, into an empty folder, end the
    history today (UTC). With `label_delay_days` (and a `labels:` section in the use case) the
    batch files leave the target empty and each day's labels land in the label folder once the
    day is that many days old, as of the newest day written. `rows_per_day` is churn's (demand
    writes one row per store and product). Returns the batch files."""
    from mlops_assets.simulate.files import day_range
    from mlops_assets.simulate.shipped import simulation_config, simulator
    from mlops_assets.use_cases.loader import get_use_case

    instance_home.ensure_local_env()
    module = simulator(use_case)
    uc = get_use_case(use_case)
    if folder is None:
        folder = uc.landing.path()
    cfg = simulation_config(use_case, seed=seed, rows_per_day=rows_per_day, covariate_drift_from=covariate_drift_from,
                            concept_drift_from=concept_drift_from, concept_drift_strength=concept_drift_strength)
    if start is None:
        existing = module.simulated_days(folder, use_case)  # a user's churn_extra.csv is not a day
        start = default_start(days, existing, max(uc.first_day, cfg.start_date), utc_today())
    label_folder = uc.labels.path() if label_delay_days is not None and uc.labels else None
    if label_delay_days is not None and label_folder is None:
        _log(f"{uc.source_file}: no `labels:` section, so the labels stay in the batch files")
    before = set(label_folder.glob("*")) if label_folder and label_folder.is_dir() else set()
    written = module.write_days(folder, day_range(start, days), cfg, use_case=use_case, fmt=fmt,
                                label_folder=label_folder, label_delay_days=label_delay_days or 0)
    rows = len(module.simulate_day(start, cfg))
    _log(f"{use_case}: wrote {len(written)} day(s) x {rows} rows to {folder} "
         f"({written[0].name} .. {written[-1].name})" + (" with empty targets" if label_folder else ""))
    if label_folder:
        new_labels = sorted(set(label_folder.glob("*")) - before)
        _log(f"{use_case}: wrote {len(new_labels)} label file(s) to {label_folder} for the days at least "
             f"{label_delay_days} day(s) old" + (f" ({new_labels[0].name} .. {new_labels[-1].name})" if new_labels else ""))
    return written


def simulated_use_cases(selected: list[str] | None, refuse_others: bool = True) -> list:
    """The loaded use cases a simulator writes (churn, demand), those named in `selected` when given;
    with `refuse_others`, a selected name that is no simulated use case is refused."""
    from mlops_assets.simulate.shipped import SIMULATORS
    from mlops_assets.use_cases.loader import load_use_cases

    if selected and refuse_others:
        unknown = sorted(set(selected) - set(SIMULATORS))
        if unknown:
            raise SystemExit(f"no simulator for {', '.join(unknown)}; the simulated demo use cases are "
                             f"{', '.join(sorted(SIMULATORS))}")
    return [uc for uc in load_use_cases() if uc.name in SIMULATORS and (not selected or uc.name in selected)]


REPLAY_DAYS = 14
# The demo's concept drift: from this many days before the replay, the feature -> target relation
# changes. Those days are scored with the history; their labels arrive in the replay's first
# week, so the performance check fails on three labelled days in a row and the retrain sensor fires.
DEMO_CONCEPT_DRIFT_LEAD_DAYS = 3
# Half the simulator's full change: the served ROC AUC falls from about 0.76 to 0.65 (beyond the
# 0.05 tolerance), while the model stays learnable; at full strength it falls to about 0.5 and no
# retrain on a few new days can reach the 0.7 quality gate.
DEMO_CONCEPT_DRIFT_STRENGTH = 0.5


def demo_plan(first_day: dt.date, today: dt.date, replay_days: int, days: int | None = None,
              start: dt.date | None = None) -> tuple[dt.date, int, list[dt.date]]:
    """(history start, history days, replayed days) of the demo: the replay ends with the last
    whole day (yesterday, UTC) and the history ends the day before the replay starts."""
    from mlops_assets.simulate.files import day_range

    last = today - dt.timedelta(days=1)
    replayed = day_range(last - dt.timedelta(days=replay_days - 1), replay_days) if replay_days > 0 else []
    history_end = replayed[0] - dt.timedelta(days=1) if replayed else today
    if start is None:
        start = history_end - dt.timedelta(days=days - 1) if days else first_day
    start = max(start, first_day)
    return start, max(1, (history_end - start).days + 1), replayed


def demo_log_path() -> Path:
    return settings.data_dir() / "logs" / "demo.log"


# The second shipped use case (demand, a regression) replays only a few days after the churn
# replay: enough for its labels to arrive on days it scored and a performance report per day, at
# little cost to the demo's time; it has no drift knob set, so it stays calm.
SECOND_REPLAY_DAYS = 2
# and a history of this many days rather than every day from its first_day: a day partition
# costs about the same whatever its rows, and its model needs no more (training window 120 days).
SECOND_HISTORY_DAYS = 90


def demo(args) -> int:
    """prepare; into an empty landing folder simulate the history of each simulated use case
    (churn from its first_day, demand its last SECOND_HISTORY_DAYS days; with labels 7 days late,
    and for churn a concept drift that starts a few days before the replay); load it, train and score the days whose labels are still to come; replay
    the last days as events through the sensors (orchestrate.replay: churn's 14, demand's
    SECOND_REPLAY_DAYS); summarise. Dagster's log stream goes to a file, the terminal gets one
    line per step and day."""
    from mlops_assets.orchestrate import age_files, dagster_logs_to, replay, run_pipeline
    from mlops_assets.simulate.shipped import simulation_config
    from mlops_assets.use_cases.config import UseCaseError

    started = time.perf_counter()
    prepare()
    prepare_instance()
    label_delay = None if args.labels_in_rows else args.label_delay_days
    strength = args.concept_drift_strength if args.concept_drift_strength is not None else DEMO_CONCEPT_DRIFT_STRENGTH
    cases = simulated_use_cases(args.use_cases, refuse_others=False)
    if args.use_cases:
        left_out = [name for name in ("churn", "demand") if name not in args.use_cases]
        if left_out:
            _log(f"only {', '.join(args.use_cases)}: not simulating or replaying {', '.join(left_out)}")
    plans: dict[str, tuple] = {}  # use case -> (its use case, replayed days, simulation config)
    for uc in cases:
        if any(uc.landing.path().glob(uc.landing.pattern)):
            _log(f"{uc.name}: landing folder {uc.landing.path()} already has data; not simulating, nothing to replay")
            continue
        replay_days = args.replay_days if uc.name == "churn" else min(args.replay_days, SECOND_REPLAY_DAYS)
        if replay_days and (label_delay is None or uc.labels is None):
            _log(f"{uc.name}: the replay needs labels that arrive later (a `labels:` section, no --labels-in-rows); "
                 "not replaying")
            replay_days = 0
        history = args.days or (SECOND_HISTORY_DAYS if uc.name != "churn" and args.start is None else None)
        start, days, replayed = demo_plan(uc.first_day, utc_today(), replay_days, history, args.start)
        concept, cov = (args.concept_drift_from, args.covariate_drift_from) if uc.name == "churn" else (None, None)
        if uc.name == "churn" and replayed and concept is None and cov is None:
            concept = replayed[0] - dt.timedelta(days=DEMO_CONCEPT_DRIFT_LEAD_DAYS)
            _log(f"concept drift from {concept} (strength {strength}): the relation of the features to churn changes from that day")
        written = simulate(days, args.rows_per_day, start, args.seed, cov, concept, args.format,
                           label_delay_days=label_delay, concept_drift_strength=strength, use_case=uc.name)
        # Written whole (renamed into place): no need to wait out the settle time (orchestrate.replay).
        age_files([*written, *(uc.labels.path().glob("*") if uc.labels and label_delay is not None else [])],
                  max(uc.landing.settle_seconds, uc.labels.settle_seconds if uc.labels else 0) + 1)
        plans[uc.name] = (uc, replayed, simulation_config(
            uc.name, seed=args.seed, rows_per_day=args.rows_per_day, covariate_drift_from=cov,
            concept_drift_from=concept, concept_drift_strength=strength))
    path = demo_log_path()
    _log(f"Dagster's log stream goes to {path} (every run and its events are in the UI too)")
    reports = []
    with dagster_logs_to(path):
        from mlops_assets.definitions import current_defs

        defs = current_defs()
        # The days whose labels arrive during the replay (up to label_delay days before it) must
        # have been served before: score the last label_delay history days.
        replaying = any(replayed for _, replayed, _ in plans.values())
        score = (label_delay or 0) if replaying else 0
        ok = run_pipeline(only=args.use_cases, log=_log, score_days=score, defs=defs)
        for name, (uc, replayed, cfg) in plans.items():
            if not replayed:
                continue
            if not ok:
                _log(f"{name}: the history did not load cleanly (see above); not replaying")
                continue
            _log(f"{name}: replaying {len(replayed)} day(s), {replayed[0]}..{replayed[-1]}, as they would arrive: "
                 f"a day's file lands, its labels {label_delay} days later")
            prefix = "" if name == "churn" else f"{name}: "
            try:
                reports.append((uc, replay(replayed, cfg, use_case=name, label_delay_days=label_delay, defs=defs,
                                           progress=lambda line, p=prefix: print(f"[demo] {p}{line}", flush=True))))
            except UseCaseError as exc:  # its file changed and no longer loads: the other use cases still count
                _log(f"{name}: replay stopped: {exc}")
                ok = False
    for uc, report in reports:
        demo_summary(uc, report)
        ok &= report.ok
    where_to_look()
    _log(f"demo done in {time.perf_counter() - started:.0f}s; Dagster's log: {path}")
    return 0 if ok else 1


def run_chain(use_cases: list[str] | None, window: tuple[dt.date, dt.date] | None = None) -> int:
    """The README's CI path in one process, with the same three selections as its `dagster asset
    materialize` commands: Dagster's CLI needs a command (a process, a code-location load and the
    imports of the steps) for each, because a partition range cannot go with unpartitioned
    assets in one selection (BENCHMARKS.md). The runs are recorded in DAGSTER_HOME like theirs."""
    from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT
    from mlops_assets.orchestrate import run_pipeline

    from mlops_assets.use_cases.loader import load_use_case_set

    loaded = load_use_case_set()
    known = [uc.name for uc in loaded.use_cases]
    unknown = [name for name in use_cases or [] if name not in known]
    if unknown:
        broken = "".join(f"\n  not loaded: {bad.error}" for bad in loaded.invalid)
        raise SystemExit(f"mlops-assets run: no use case {', '.join(map(repr, unknown))}; "
                         f"the use cases are {', '.join(known) or 'none'}{broken}")
    started = time.perf_counter()
    prepare()
    prepare_instance()
    ok = run_pipeline(only=use_cases, log=_log, monitored=(DRIFT, BATCH_PREDICTIONS), summarize=False, window=window)
    _log(f"run {'done' if ok else 'FAILED'} in {time.perf_counter() - started:.0f}s")
    return 0 if ok else 1


def demo_summary(uc, report) -> None:
    """What the replay left in the instance: days scored, drift, performance, retrains."""
    import dagster as dg

    from mlops_assets.chain import handoffs
    from mlops_assets.chain.summary import latest_per_day
    from mlops_assets.chain.lineage import DRIFT, PERFORMANCE, SUMMARY, key

    with dg.DagsterInstance.get() as instance:
        perf = latest_per_day(instance, key(uc, PERFORMANCE))
        drift = latest_per_day(instance, key(uc, DRIFT))
        summary = instance.fetch_materializations(key(uc, SUMMARY), limit=1).records
    evaluated = {d: m for d, m in perf.items() if m.get(handoffs.PERF_EVALUATED)}
    below = sorted(d for d, m in evaluated.items() if not m.get(handoffs.PERF_PASSED))
    days = [d.isoformat() for d in report.days]
    flagged = [d for d in days if drift.get(d, {}).get(handoffs.DRIFT_FLAGGED)]
    runs = ", ".join(f"{n} {kind}" for kind, n in sorted(report.runs.items()))
    _log(f"{uc.name} replay: {len(days)} day(s) {days[0]}..{days[-1]}; runs: {runs or 'none'}")
    _log(f"  drift reports for {sum(d in drift for d in days)} replayed day(s), flagged on {len(flagged)}"
         + (f" ({', '.join(flagged)})" if flagged else ""))
    _log(f"  performance evaluated for {len(evaluated)} day(s), below tolerance on {len(below)}"
         + (f" ({below[0]}..{below[-1]})" if below else ""))
    _log(f"  retrains: {len(report.retrains)}" + "".join(f"\n    {line}" for line in report.retrains))
    if summary:
        md = summary[0].asset_materialization.metadata
        rows = md.get("dagster/row_count")
        _log(f"  monitoring summary: {getattr(rows, 'value', rows)} day(s), latest "
             f"{getattr(md.get('latest_day'), 'value', '?')}: {settings.reports_dir() / uc.name / 'monitoring_summary.html'}")
    for problem in report.problems:
        _log(f"  PROBLEM: {problem}")


def where_to_look() -> None:
    from mlops_assets.use_cases.loader import load_use_cases

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
    print("  serve a champion:     uv run mlops-assets serve churn --port 8000   (or demand, the regression)")


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
        p.add_argument("--concept-drift-strength", type=float, default=None,
                       help="how far it changes, 0..1 (simulate: 1.0; demo: 0.5, so that the served ROC AUC falls "
                            "beyond the tolerance and a model retrained on the new days can pass the gates)")
        p.add_argument("--format", choices=["csv", "parquet"], default="csv")
        p.add_argument("--label-delay-days", type=int, default=7,
                       help="labels arrive in the use case's label folder this many days after their rows "
                            "(default 7); the batch files leave the target empty")
        p.add_argument("--labels-in-rows", action="store_true",
                       help="write each row's label in the batch file instead (no label files)")

    simulate_parser = sub.add_parser("simulate", help="write days of demo data (churn and demand) into the landing folders")
    sim_args(simulate_parser, 7, 500)
    simulate_parser.add_argument("--use-case", action="append", dest="use_cases", metavar="NAME",
                                 choices=["churn", "demand"],
                                 help="write only this simulated use case's days (repeatable; default: churn and demand)")
    demo_parser = sub.add_parser("demo", help="prepare, simulate if empty, load the history, replay the last days")
    sim_args(demo_parser, None, 300)
    demo_parser.add_argument("--replay-days", type=int, default=REPLAY_DAYS,
                             help=f"days replayed as events after the history (default {REPLAY_DAYS}; 0: none)")
    demo_parser.add_argument("--use-case", action="append", dest="use_cases", metavar="NAME",
                             help="run only this use case's chain (repeatable; default: every use case). The "
                                  "simulator and the replay write the demo use cases among them (churn, demand)")
    run_parser = sub.add_parser("run", help="prepare, then CI's three Dagster runs per use case in this one process")
    run_parser.add_argument("--use-case", action="append", dest="use_cases", metavar="NAME",
                            help="run only this use case's chain (repeatable; default: every use case)")
    run_parser.add_argument("--partition-range", type=_day_range, default=None, metavar="FIRST...LAST",
                            help="the days to load, train on and score the last of (YYYY-MM-DD...YYYY-MM-DD); "
                                 "default: the days the landing files hold, which reads every file once more first")
    ui = sub.add_parser("ui", help="prepare, then run `dagster dev` with the embedded defaults")
    ui.add_argument("--no-mlflow-ui", action="store_true",
                    help="do not start the MLflow UI at MLOPS_MLFLOW_UI_URL beside Dagster")
    ui.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed on to `dagster dev`")
    serve = sub.add_parser("serve", help="serve a use case's champion over HTTP (POST /predict, GET /version)")
    serve.add_argument("use_case", nargs="?", default=None,
                       help="the use case; may be left out when there is one (or the demo's, churn)")
    serve.add_argument("--example", action="store_true",
                       help="print a valid request body (landing-shaped rows) and exit, e.g. "
                            "`mlops-assets serve churn --example | curl -d @- -H 'Content-Type: application/json' "
                            "http://127.0.0.1:8000/predict`")
    serve.add_argument("--features", action="store_true",
                       help="with --example: the same rows with their features computed by the use case's dbt SQL, "
                            "as `mlflow models serve` takes them ({\"dataframe_records\": [...]})")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--poll-seconds", type=float, default=5.0, help="how often to look for a new champion")
    rollback = sub.add_parser("rollback", help="move the champion alias back to a previously promoted version")
    rollback.add_argument("use_case")
    rollback.add_argument("--to-version", default=None, help="default: the previous champion recorded on the current one")
    args = parser.parse_args(argv)

    try:
        applied = instance_home.ensure_local_env()
    except settings.SettingsError as exc:  # a bad MLOPS_PROFILE / URL: the message names the variable
        raise SystemExit(f"mlops-assets: {exc}") from None
    for k, v in applied.items():
        if getattr(args, "example", False):
            break  # stdout is the request body (piped to curl)
        # Never a raw tracking URI: it may hold credentials (user:password@, ?token=).
        _log(f"{k}={settings.display_uri(v)} ({settings.profile()} default)")
    if args.command == "prepare":
        prepare()
        prepare_instance()
    elif args.command == "fields":
        from mlops_assets.use_cases.fields import fields_markdown

        print(fields_markdown())
    elif args.command == "simulate":
        for uc in simulated_use_cases(args.use_cases):
            simulate(args.days, args.rows_per_day, args.start, args.seed, args.covariate_drift_from,
                     args.concept_drift_from, args.format,
                     label_delay_days=None if args.labels_in_rows else args.label_delay_days,
                     concept_drift_strength=args.concept_drift_strength if args.concept_drift_strength is not None else 1.0,
                     use_case=uc.name)
    elif args.command == "demo":
        return demo(args)
    elif args.command == "run":
        return run_chain(args.use_cases, args.partition_range)
    elif args.command == "ui":
        prepare()
        prepare_instance()
        extra = args.dagster_args or []
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "mlops_assets.definitions",
               *(extra[1:] if extra[:1] == ["--"] else extra)]
        _log("starting " + " ".join(cmd))
        # The MLflow UI beside Dagster, so that the links the assets write (MLOPS_MLFLOW_UI_URL)
        # open; started on a thread, so dagster dev does not wait for it.
        mlflow_ui: list = []
        if not args.no_mlflow_ui:
            _start_mlflow_ui(mlflow_ui)
        try:
            return run_supervised(cmd, beside=mlflow_ui)
        finally:
            _stop_mlflow_ui(mlflow_ui)
    elif args.command == "serve":
        from mlops_assets.serving.app import example
        from mlops_assets.serving.app import serve as serve_http

        if args.example:
            print(example(args.use_case, features=args.features), flush=True)
            return 0
        if args.features:
            raise SystemExit("--features goes with --example")
        serve_http(args.use_case, args.port, poll_seconds=args.poll_seconds)
    elif args.command == "rollback":
        return rollback_champion(args.use_case, args.to_version)
    return 0


STOP_GRACE_S = 6.0  # then SIGKILL: the whole stop stays well within 10 s on a loaded machine


def _start_mlflow_ui(into: list) -> None:
    """Launch the MLflow UI (owned at once, so stopping the ui stops it too) and say on a thread
    when it answers: dagster dev does not wait for it."""
    from mlops_assets.mlflow_ui import launch_mlflow_ui, wait_until_up

    proc = launch_mlflow_ui(log=print)
    if proc is None:
        return
    into.append(proc)

    def report():
        try:
            wait_until_up(proc, log=print)
        except RuntimeError as exc:  # the Dagster UI works without it; links need one started by hand
            _log(f"MLflow UI not started: {exc}")

    threading.Thread(target=report, daemon=True).start()


def _stop_mlflow_ui(started: list, grace_s: float = 2.0) -> None:
    """Stop the MLflow UI's tree (it runs in a session of its own) like dagster dev's."""
    for proc in started:
        stop_tree(proc, grace_s)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc (children that moved to a session of their
    own included; a process whose parent died is re-parented and escapes this, hence the group)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_members(pgid: int) -> set[int]:
    members = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        members.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return members


def _signal_all(pgid: int, pids: set[int], sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_tree(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S, log=_log) -> None:
    """SIGTERM `proc`'s process group (it leads one) and every descendant, wait up to `grace_s`,
    then SIGKILL what is left."""
    pids = descendants(proc.pid) | _group_members(proc.pid)
    _signal_all(proc.pid, pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap dagster dev, so that its zombie does not count as left
        pids |= descendants(proc.pid) | _group_members(proc.pid)  # started while stopping
        left = {p for p in pids | {proc.pid} if _alive(p)}
        if not left:
            return
        time.sleep(0.1)
    left = {p for p in pids | descendants(proc.pid) | _group_members(proc.pid) | {proc.pid} if _alive(p)}
    log(f"{len(left)} process(es) still running {grace_s:.0f}s after SIGTERM: killing them")
    _signal_all(proc.pid, left, signal.SIGKILL)
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pass


def run_supervised(cmd: list[str], grace_s: float = STOP_GRACE_S, beside: list | None = None) -> int:
    """Run `cmd` (dagster dev) in a process group of its own and stay its parent: on Ctrl-C or
    SIGTERM the whole tree (daemon, code servers, run workers) gets SIGTERM, and SIGKILL what is
    left after `grace_s`. (exec'ing dagster dev instead left its children running when it was
    stopped with SIGTERM.) Returns dagster dev's exit code, or 0 when stopped by a signal."""
    proc = subprocess.Popen(cmd, start_new_session=True)
    stopping: list[int] = []

    def on_signal(signum, _frame):
        if stopping:  # a second Ctrl-C: stop_tree is on it already
            return
        stopping.append(signum)
        _log(f"{signal.Signals(signum).name}: stopping dagster dev and its processes")
        # The processes started beside dagster dev (the MLflow UI) stop at the same time, not
        # after dagster dev's grace period: the whole stop stays within one grace period.
        side = threading.Thread(target=_stop_mlflow_ui, args=(list(beside or []),))
        side.start()
        stop_tree(proc, grace_s)
        side.join()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
        if not stopping:  # dagster dev ended on its own: its children must not outlive it
            stop_tree(proc, grace_s)
        return 0 if stopping else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def rollback_champion(use_case: str, to_version: str | None) -> int:
    from mlops_assets.governance import registry
    from mlops_assets.chain.resources import MlflowResource
    from mlops_assets.use_cases.loader import UseCaseError, get_use_case

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
