"""`run_pipeline`: what `mlops-assets demo` runs. Not a Dagster job but a short script of Dagster
runs on the current instance (each visible in the UI): per use case, load and build features
for every day its landing zone holds (one run over the range), then train, evaluate and
promote, then score and check drift for the latest days.

It reports what it did not do: files it could not read, rows dated outside the use case's
partitions, failed checks per use case and day. Its result is False when any of those (except
rows of days still to come, which a later run loads) or any failed step or blocking check
happened; the other use cases and good days are still done.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlops_assets.chain import handoffs

SETTLE_MAX_WAIT_S = 60.0


@dataclass
class DayListing:
    """What a use case's landing files hold, against its partitions [first, last]."""
    first: dt.date
    last: dt.date
    days: list[dt.date] = field(default_factory=list)  # days inside the partitions that hold rows
    rows: int = 0  # rows on those days
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> problem (named, not loaded)
    early: dict[str, tuple[int, dt.date, dt.date]] = field(default_factory=dict)  # path -> (rows, min day, max day) before first
    late: dict[str, tuple[int, dt.date, dt.date]] = field(default_factory=dict)  # path -> (...) after last
    notes: list[str] = field(default_factory=list)  # files the listing left out, and why

    def problems(self, open_ended: bool) -> list[str]:
        """Lines naming every file and row count no partition takes. Rows after the last
        partition of an open-ended use case are days still to come, loaded by a later run;
        anything else is an error."""
        lines = [f"not loaded, fix or replace it: {p}" for p in self.unreadable.values()]
        for path, (n, lo, hi) in sorted(self.early.items()):
            lines.append(f"{path}: {n} row(s) dated {lo}..{hi}, before the first partition {self.first}; not loaded")
        if not open_ended:
            for path, (n, lo, hi) in sorted(self.late.items()):
                lines.append(f"{path}: {n} row(s) dated {lo}..{hi}, after the last partition {self.last}; not loaded")
        return lines

    def pending(self, open_ended: bool) -> list[str]:
        if not open_ended:
            return []
        return [f"{path}: {n} row(s) dated {lo}..{hi}, after the last partition {self.last} (today, UTC); "
                f"not loaded now, a run on or after {lo} loads them" for path, (n, lo, hi) in sorted(self.late.items())]


def partition_bounds(uc) -> tuple[dt.date, dt.date]:
    """First and last day of the use case's daily partitions (the last moves with the clock
    unless the use case declares last_day)."""
    from mlops_assets.chain.partitions import daily_partitions

    parts = daily_partitions(uc)
    first, last = parts.get_first_partition_key(), parts.get_last_partition_key()
    if first is None or last is None:
        raise ValueError(f"use case {uc.name}: its partitions are empty (first day {uc.first_day} is in the future)")
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)


def settled_files(uc, settle_s: float, log: Callable[[str], None], max_wait_s: float = SETTLE_MAX_WAIT_S,
                  sleep=time.sleep, now=time.time, labels: bool = False):
    """The landing scan (with `labels`: the label folder's) once no file was modified within
    `settle_s` (the sensor's settle rule): a file still being written is not read half-way.
    Waits at most `max_wait_s`; files still changing then are left out and returned with their problem."""
    from mlops_assets.ingest import landing

    deadline = now() + max_wait_s
    said = False
    source, setting = (uc.labels, "labels.pattern") if labels else (uc.landing, "landing.pattern")
    while True:
        scan = landing.scan_landing(source.path(), source.pattern, setting)
        young = [f for f in scan.files if now() - f.mtime_ns / 1e9 < settle_s]
        if not young:
            return scan, {}
        if now() >= deadline:
            return scan, {str(f.path): f"{f.path}: still being modified after {max_wait_s:.0f}s (last change "
                                       f"{now() - f.mtime_ns / 1e9:.1f}s ago); not loaded this time"
                          for f in young}
        if not said:
            log(f"{uc.name}: waiting for {len(young)} file(s) modified less than {settle_s:.0f}s ago to settle "
                f"(e.g. {young[0].path.name})")
            said = True
        newest = max(f.mtime_ns / 1e9 for f in young)
        sleep(max(0.05, min(newest + settle_s - now(), deadline - now())))


def data_days(uc, first: dt.date, last: dt.date, *, settle_s: float | None = None,
              log: Callable[[str], None] = print, max_wait_s: float = SETTLE_MAX_WAIT_S) -> DayListing:
    """Days of [first, last] the landing files hold rows for; every file that cannot be read,
    changed while read, or holds rows outside [first, last], is named with its row count."""
    import duckdb

    from mlops_assets.ingest import landing

    settle = uc.landing.settle_seconds if settle_s is None else settle_s
    scan, unsettled = settled_files(uc, settle, log, max_wait_s)
    listing = DayListing(first, last, unreadable={**scan.refused, **unsettled}, notes=list(scan.ignored))
    days: set[dt.date] = set()
    with duckdb.connect() as con:  # in memory: only the files are read (file_days sets the zone)
        for f in scan.files:
            if str(f.path) in unsettled:
                continue
            try:
                per_day = landing.file_days(con, f.path, uc.timestamp_column, uc.timezone)
            except landing.LandingFileError as exc:
                listing.unreadable[str(f.path)] = str(exc)
                continue
            if not _same_version(f):
                listing.unreadable[str(f.path)] = landing.changed_while_read(f)
                continue
            for bucket, selected in ((listing.early, [d for d in per_day if d < first]),
                                     (listing.late, [d for d in per_day if d > last])):
                if selected:
                    bucket[str(f.path)] = (sum(per_day[d] for d in selected), min(selected), max(selected))
            inside = [d for d in per_day if first <= d <= last]
            days.update(inside)
            listing.rows += sum(per_day[d] for d in inside)
    listing.days = sorted(days)
    return listing


def label_days(uc, first: dt.date, last: dt.date, log: Callable[[str], None] = print,
               max_wait_s: float = SETTLE_MAX_WAIT_S) -> list[dt.date]:
    """Days of [first, last] the use case's label files hold labels for (none without a `labels:`
    section), once the files settled as for the landing files. A file that cannot be read is
    left out here: the labels asset's check names it."""
    import duckdb

    from mlops_assets.ingest import landing

    if getattr(uc, "labels", None) is None:
        return []
    scan, unsettled = settled_files(uc, uc.labels.settle_seconds, log, max_wait_s, labels=True)
    for problem in unsettled.values():
        log(f"{uc.name}: {problem}; left to the label sensor")
    days: set[dt.date] = set()
    with duckdb.connect() as con:  # in memory: only the files are read (file_days sets the zone)
        for f in scan.files:
            if str(f.path) in unsettled:
                continue
            try:
                days.update(d for d in landing.file_days(con, f.path, uc.timestamp_column, uc.timezone) if first <= d <= last)
            except landing.LandingFileError as exc:
                log(f"{uc.name}: label file not read: {exc}")
    return sorted(days)


def given_days(first: dt.date, last: dt.date, lo: dt.date, hi: dt.date) -> DayListing:
    """Every day of [lo, hi] within the partitions [first, last], as a listing (no file read)."""
    lo, hi = max(lo, first), min(hi, last)
    return DayListing(first, last, days=[lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)])


def ranges_outside(days: list[dt.date], covered: tuple[dt.date, dt.date] | None) -> list[tuple[dt.date, dt.date]]:
    """The ranges of `days` before and after the `covered` range (all of them when None): the
    label days the range run of the landing days does not load, as at most two range runs."""
    if covered is None:
        return [(days[0], days[-1])] if days else []
    before = [d for d in days if d < covered[0]]
    after = [d for d in days if d > covered[1]]
    return [(part[0], part[-1]) for part in (before, after) if part]


def _same_version(f) -> bool:
    """Whether the file still has the size and mtime it was listed with (else it changed while
    being read, and its rows may be half of it)."""
    try:
        st = f.path.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (f.size, f.mtime_ns)


@dataclass(frozen=True)
class StepOutcome:
    success: bool
    failed_checks: list[str]  # one line per failed check evaluation
    blocking_failed: bool
    run_id: str | None = None
    step_failures: list[str] = field(default_factory=list)  # the message of each failed step

    def __bool__(self) -> bool:
        return self.success


def failed_checks(evaluations, where: str) -> tuple[list[str], bool]:
    """Lines for the failed check evaluations of a run: asset, check, day and severity (and
    whether any blocking check failed)."""
    lines, blocking = [], False
    for ev in evaluations:
        # a range run's roll-up repeats its days' own results (partitions.day_results)
        if ev.passed or handoffs.RANGE_ROLLUP in (ev.metadata or {}):
            continue
        blocking |= bool(ev.blocking)
        day = ev.partition or where
        severity = getattr(ev.severity, "value", ev.severity)
        desc = (ev.description or "").strip().splitlines()
        lines.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} FAILED for {day} "
                     f"({severity}{', blocking' if ev.blocking else ''})" + (f": {desc[0][:300]}" if desc else ""))
    return lines, blocking


# Where the runs of this process send Dagster's log stream (dagster_logs_to); None: the console.
_run_log: logging.Handler | None = None
_run_stdout = None  # and their standard output


@contextlib.contextmanager
def dagster_logs_to(path: Path) -> Iterator[Path]:
    """Send what the runs executed here print to `path` rather than the terminal: Dagster's
    event stream (every run gets a file logger instead of its default console logger, so
    the events still go to the instance's event log, which the UI shows), the output of the
    steps (dbt's lines) and the Python loggers Dagster and MLflow write to. The terminal is
    left to the caller's progress lines."""
    global _run_log
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    handler.setLevel(logging.DEBUG)
    # Loggers with handlers of their own (mlflow's prints to stderr) lend them for the while.
    loggers = [logging.getLogger(name) for name in ("dagster", "mlflow", "alembic", "py.warnings")]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.handlers = [handler]
        lg.propagate = False
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
    logging.captureWarnings(True)  # a library's warning goes to the file too, with its place
    # The steps' output (dbt's lines) is captured by Dagster per step and mirrored to sys.stdout:
    # a file of its own here (the handler's stream may be closed and reopened by logging).
    global _run_stdout
    previous, _run_log = _run_log, handler
    previous_stdout, _run_stdout = _run_stdout, open(path, "a", buffering=1, encoding="utf-8")
    try:
        yield path
    finally:
        _run_stdout.close()
        _run_log, _run_stdout = previous, previous_stdout
        logging.captureWarnings(False)
        for lg, handlers, propagate, level in saved:
            lg.handlers, lg.propagate, lg.level = handlers, propagate, level
        handler.close()


def _file_logger(handler: logging.Handler):
    import dagster as dg

    @dg.logger(description="The run's events to the log file of mlops-assets demo (orchestrate.dagster_logs_to).")
    def demo_log_file(_init_context) -> logging.Logger:
        lg = logging.Logger("dagster", level=logging.DEBUG)  # not registered: one per run, like Dagster's own
        lg.addHandler(handler)
        return lg

    return demo_log_file


def _run_in_process(job_def, **kwargs):
    """execute_in_process, with the log stream sent to the file of dagster_logs_to when set."""
    handler = _run_log
    if handler is None:
        return job_def.execute_in_process(**kwargs)
    job_def = job_def.with_logger_defs({"file": _file_logger(handler)})
    # A logger runs only when the run config names it; with none named Dagster adds its console logger.
    run_config = dict(kwargs.pop("run_config", None) or {})
    run_config["loggers"] = {**run_config.get("loggers", {}), "file": {}}
    with contextlib.ExitStack() as stack:
        if _run_stdout:  # progress bars (MLflow's downloads) write to stderr: the log file too
            stack.enter_context(contextlib.redirect_stdout(_run_stdout))
            stack.enter_context(contextlib.redirect_stderr(_run_stdout))
        return job_def.execute_in_process(run_config=run_config, **kwargs)


def execute(defs, instance, job: str, selection=None, log=print, **kwargs) -> StepOutcome:
    """One Dagster run, in this process; logs its outcome, failed steps and failed checks."""
    from mlops_assets.instance.workers import PID_TAG

    started = time.perf_counter()
    tags = {**(kwargs.pop("tags", None) or {}), PID_TAG: str(os.getpid())}  # lets a crash be detected
    result = _run_in_process(defs.resolve_job_def(job), instance=instance, asset_selection=selection,
                             raise_on_error=False, tags=tags, **kwargs)
    where = kwargs.get("partition_key") or "..".join(
        tags[k] for k in ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end") if k in tags
    ) or "the run"
    checks, blocking = failed_checks(result.get_asset_check_evaluations(), where)
    status = "succeeded" if result.success and not checks else (
        f"succeeded, but {len(checks)} check(s) failed" if result.success else "FAILED")
    log(f"  {job} {where}: {status} in {time.perf_counter() - started:.0f}s (run {result.run_id})")
    for event in result.all_events:
        if event.is_step_failure:
            log(f"    step {event.step_key} failed: {event.event_specific_data.error.message.strip()}")
    for line in checks:
        log(f"    {line}")
    return StepOutcome(result.success and not blocking, checks, blocking, result.run_id,
                       [e.event_specific_data.error.message.strip() for e in result.all_events if e.is_step_failure])


def takes_a_range(defs, asset_key) -> bool:
    """Whether the asset materializes a range of days in one run (its backfill policy)."""
    policy = defs.resolve_assets_def(asset_key).backfill_policy
    return policy is not None and policy.max_partitions_per_run is None


def run_pipeline(monitor_days: int = 1, only: list[str] | None = None, log=print, *, score_days: int = 0,
                 defs=None, monitored: tuple[str, ...] | None = None, summarize: bool = True,
                 window: tuple[dt.date, dt.date] | None = None) -> bool:
    """Per use case: load and build features for every day of its partitions the landing zone
    holds (one run over the range), train-evaluate-promote, then score and check drift for the
    latest `monitor_days` days. With `score_days`, instead one run scores the latest
    `score_days` days (batch predictions, and their drift reports when that asset takes a range
    of days in one run): the days whose labels are still to come, so their served performance
    is reported when the labels arrive (the demo's replay). True only when everything
    succeeded, no blocking check failed, every landing file was read and every row found a
    partition (days still to come aside). `monitored` narrows the latest days' assets (default:
    predictions, drift and performance) and `summarize=False` leaves the monitoring summary out:
    `mlops-assets run` does the README's CI selections (drift and predictions of the last day).
    `window` (first, last): run those days instead of listing the landing files' days (which
    reads every file once more before the runs; the raw step validates the files anyway)."""
    import dagster as dg

    from mlops_assets.definitions import current_defs
    from mlops_assets.chain.retrain import training_chain
    from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT, LABELS, PERFORMANCE, SUMMARY, key
    from mlops_assets.instance.recovery import fail_dead_runs
    from mlops_assets.use_cases.loader import load_use_case_set

    defs, instance, ok = defs or current_defs(), dg.DagsterInstance.get(), True
    fail_dead_runs(instance, log)  # a killed earlier run must not hold the queue
    summary: list[str] = []
    loaded = load_use_case_set()
    for bad in loaded.invalid:  # the good use cases still run; the bad file is named and fails the result
        log(f"use case file not loaded: {bad.error}")
        summary.append(f"{bad.path}: NOT LOADED: {bad.error}")
        ok = False
    for uc in loaded.use_cases:
        if only is not None and uc.name not in only:
            continue
        first, last = partition_bounds(uc)
        if window is not None:
            listing = given_days(first, last, *window)
            if not listing.days:
                log(f"{uc.name}: {window[0]}..{window[1]} holds none of its partitions {first}..{last}")
                summary.append(f"{uc.name}: NOT RUN: no partition in {window[0]}..{window[1]}")
                ok = False
                continue
        else:
            listing = data_days(uc, first, last, log=log)
        open_ended = getattr(uc, "last_day", None) is None
        problems = listing.problems(open_ended)
        for line in listing.notes + listing.pending(open_ended) + problems:
            log(f"{uc.name}: {line}")
        uc_ok = not problems
        # Label files may hold days without landing rows (e.g. landing files archived after they
        # loaded): the range run below would not load those, so they load first, on their own.
        covered = (listing.days[0], listing.days[-1]) if listing.days else None
        for lo, hi in ranges_outside(label_days(uc, first, last, log), covered):
            log(f"{uc.name}: label files hold days {lo}..{hi} outside the landing files' days; loading their labels")
            step = execute(defs, instance, f"{uc.name}_daily", [key(uc, LABELS)], log, tags={
                "dagster/asset_partition_range_start": lo.isoformat(),
                "dagster/asset_partition_range_end": hi.isoformat()})
            uc_ok &= step.success
            summary.extend(f"  {line}" for line in step.failed_checks)
        if not listing.days:
            log(f"{uc.name}: no data in {uc.landing.path()} for its partitions {first}..{last}; skipped")
            summary.append(f"{uc.name}: nothing loaded" + (f"; {len(problems)} problem(s) above" if problems else ""))
            ok &= uc_ok
            continue
        log(f"{uc.name}: {len(listing.days)} day(s), {listing.days[0]}..{listing.days[-1]} "
            + ("(--partition-range)" if window is not None else f"({listing.rows} rows)"))
        daily = defs.resolve_job_def(f"{uc.name}_daily")
        per_day = set(daily.asset_layer.selected_asset_keys)
        monitoring = {k for k in per_day if k.path[-1] in (DRIFT, BATCH_PREDICTIONS, PERFORMANCE)}
        building = list(per_day - monitoring)
        if monitored is not None:
            monitoring = {k for k in monitoring if k.path[-1] in monitored}
        # Each step needs the one before; a failed use case does not stop the others.
        outcomes = [execute(defs, instance, f"{uc.name}_daily", building, log, tags={
            "dagster/asset_partition_range_start": listing.days[0].isoformat(),
            "dagster/asset_partition_range_end": listing.days[-1].isoformat()})]
        if outcomes[-1].success:
            outcomes.append(execute(defs, instance, f"{uc.name}_training", training_chain(uc), log))
        if score_days and outcomes[-1].success:
            scored = listing.days[-score_days:]
            ranged = [k for k in monitoring if k.path[-1] == BATCH_PREDICTIONS
                      or (k.path[-1] == DRIFT and takes_a_range(defs, k))]
            outcomes.append(execute(defs, instance, f"{uc.name}_daily", ranged, log, tags={
                "dagster/asset_partition_range_start": scored[0].isoformat(),
                "dagster/asset_partition_range_end": scored[-1].isoformat()}))
        for day in listing.days[-monitor_days:] if outcomes[-1].success and not score_days else []:
            outcomes.append(execute(defs, instance, f"{uc.name}_daily", list(monitoring), log,
                                    partition_key=day.isoformat()))
        if outcomes[-1].success and summarize:
            outcomes.append(execute(defs, instance, f"{uc.name}_monitoring_summary", [key(uc, SUMMARY)], log))
        checks = [line for o in outcomes for line in o.failed_checks]
        uc_ok &= all(o.success for o in outcomes)
        summary.append(f"{uc.name}: {'done' if uc_ok else 'INCOMPLETE'}; {len(checks)} failed check(s)"
                       + (f", {len(problems)} landing problem(s)" if problems else ""))
        summary.extend(f"  {line}" for line in checks)
        ok &= uc_ok
    log("summary: " + ("all use cases done" if ok else "NOT everything succeeded, see above"))
    for line in summary:
        log(f"  {line}")
    return ok


# --- the demo's replay: days arriving as events, through the sensors the daemon evaluates ---

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@dataclass
class ReplayReport:
    days: list[dt.date]
    runs: dict[str, int] = field(default_factory=dict)  # by what requested them: landing, labels, automation, retrain
    retrains: list[str] = field(default_factory=list)  # one line per retrain: trigger and outcome
    problems: list[str] = field(default_factory=list)  # failed runs and sensors

    @property
    def ok(self) -> bool:
        return not self.problems


class _SensorTicks:
    """A sensor of the loaded definitions, evaluated as the daemon evaluates it: a context on
    the instance with the cursor the previous tick returned."""

    def __init__(self, defs, instance, name: str):
        self.defs, self.instance, self.name = defs, instance, name
        self.sensor = defs.get_sensor_def(name)
        self.cursor: str | None = None

    def tick(self):
        import dagster as dg

        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs,
                                          sensor_name=self.name)
        # A sensor's log gets a console handler of its own on stderr when first used: to the log
        # file of dagster_logs_to with the runs' output, not to the terminal.
        with contextlib.redirect_stderr(_run_stdout) if _run_stdout else contextlib.nullcontext():
            data = self.sensor.evaluate_tick(context)
        changed = data.cursor is not None and data.cursor != self.cursor
        if data.cursor is not None:
            self.cursor = data.cursor
        return list(data.run_requests or []), changed

    def ticks(self, max_ticks: int = 20):
        """Ticks until one requests nothing and leaves the cursor as it was (a sensor may take a
        big folder in bounded batches, the rest on its next ticks)."""
        for _ in range(max_ticks):
            requests, changed = self.tick()
            yield from requests
            if not requests and not changed:
                return

    def job_name(self, request) -> str:
        return request.job_name or self.sensor.job_name


def request_days(request) -> list[dt.date]:
    """The days a run request covers: its partition key, or the range in its tags."""
    if request.partition_key:
        return [dt.date.fromisoformat(request.partition_key)]
    tags = request.tags or {}
    if RANGE_START in tags and RANGE_END in tags:
        lo, hi = dt.date.fromisoformat(tags[RANGE_START]), dt.date.fromisoformat(tags[RANGE_END])
        return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
    return []


def launch(defs, instance, request, job_name: str, sensor_name: str | None, log) -> StepOutcome:
    """A run request executed in this process as the daemon would launch it: its job, asset
    selection, partition (key or range) and tags, with the sensor's name and the run key."""
    tags = dict(request.tags or {})
    if sensor_name:
        tags["dagster/sensor_name"] = sensor_name
    if request.run_key:
        tags["dagster/run_key"] = request.run_key
    kwargs = {"partition_key": request.partition_key} if request.partition_key else {}
    return execute(defs, instance, job_name, request.asset_selection, log, tags=tags, **kwargs)


def _latest_meta(instance, asset_key, day: str | None = None) -> dict | None:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day] if day else None), limit=1).records
    if not records:
        return None
    return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


def landed_line(instance, uc, day: dt.date, outcome: StepOutcome) -> str:
    """`2026-11-24 landed 300 rows -> scored by v1, drift 0.12 ok`, from what the run recorded."""
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.lineage import BATCH_PREDICTIONS, DRIFT, RAW, key

    d = day.isoformat()
    raw = _latest_meta(instance, key(uc, RAW), d) or {}
    try:
        rows = handoffs.read_rows_per_day(raw).get(d, 0)
    except Exception:  # an older record without the per-day table: say less rather than fail
        rows = raw.get(handoffs.ROW_COUNT, "?")
    parts = []
    scored = _latest_meta(instance, key(uc, BATCH_PREDICTIONS), d)
    parts.append(f"scored by v{scored.get(handoffs.SCORED_MODEL_VERSION)}" if scored else "not scored (no champion)")
    drift = _latest_meta(instance, key(uc, DRIFT), d)
    if drift and handoffs.DRIFT_SHARE in drift:
        flagged = drift.get(handoffs.DRIFT_FLAGGED, float(drift[handoffs.DRIFT_SHARE]) >= uc.thresholds.drift_share)
        parts.append(f"drift {float(drift[handoffs.DRIFT_SHARE]):.2f} {'FLAGGED' if flagged else 'ok'}")
    else:
        parts.append("no drift report")
    status = "" if outcome.success else " (run FAILED, see the log)"
    return f"{d} landed {rows} rows -> {', '.join(parts)}{status}"


def performance_line(instance, uc, day: dt.date) -> str:
    """`labels for 2026-11-17 -> ROC AUC 0.81 (holdout 0.83) ok` (a regression: `R² 0.84 ...`)."""
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.lineage import PERFORMANCE, key

    d = day.isoformat()
    perf = _latest_meta(instance, key(uc, PERFORMANCE), d)
    if perf is None:
        return f"labels for {d} -> no performance report (the day was not scored)"
    # A binary use case reports ROC AUC; the others their task's primary metric (R², macro-F1, ...).
    metric = perf.get(handoffs.PERF_METRIC)
    value_key, holdout_key = ((handoffs.PERF_VALUE, handoffs.PERF_HOLDOUT_VALUE) if metric
                              else (handoffs.PERF_ROC_AUC, handoffs.PERF_HOLDOUT_ROC_AUC))
    if not perf.get(handoffs.PERF_EVALUATED) or value_key not in perf:
        return f"labels for {d} -> not evaluated (label coverage {float(perf.get(handoffs.PERF_COVERAGE, 0)):.0%})"
    holdout = perf.get(holdout_key)
    verdict = "ok" if perf.get(handoffs.PERF_PASSED) else "BELOW TOLERANCE"
    name = METRIC_NAMES.get(metric, metric) if metric else "ROC AUC"
    return (f"labels for {d} -> {name} {float(perf[value_key]):.2f}"
            + (f" (holdout {float(holdout):.2f})" if holdout is not None else "") + f" {verdict}")


METRIC_NAMES = {"r2": "R²", "mae": "MAE", "rmse": "RMSE", "mape": "MAPE", "macro_f1": "macro-F1",
                "accuracy": "accuracy", "log_loss": "log loss"}


def retrain_line(instance, uc, request, outcome: StepOutcome) -> str:
    """`retrain fired (performance) -> v2 promoted`, or why it was not."""
    from mlops_assets.chain.lineage import CANDIDATE, CHAMPION, key
    from mlops_assets.chain.history import TRIGGER_TAG

    trigger = (request.tags or {}).get(TRIGGER_TAG, "?")
    candidate = (_latest_meta(instance, key(uc, CANDIDATE)) or {}).get("registered_version", "?")
    champion = _latest_meta(instance, key(uc, CHAMPION)) or {}
    if outcome.success and champion.get("promoted") and str(champion.get("champion_version")) == str(candidate):
        result = f"v{candidate} promoted"
    else:
        why = ("; ".join(line.removeprefix("check ") for line in outcome.failed_checks if "blocking" in line)
               or next((m.splitlines()[0] for m in outcome.step_failures), None) or "see the log")
        result = f"v{candidate} NOT promoted: {str(why)[:160]}"
    return f"retrain fired ({trigger}) -> {result}"


class _Automation:
    """What the daemon's automation sensor requests for some assets (Dagster's own evaluation
    of their automation conditions, cursor kept between evaluations), as runs: one per day
    (a range run when the asset takes one) and one for the unpartitioned assets."""

    def __init__(self, defs, instance, keys):
        import dagster as dg

        self.defs, self.instance, self.keys = defs, instance, list(keys)
        self.selection = dg.AssetSelection.assets(*self.keys)
        self.cursor = None

    def requests(self):
        import dagster as dg

        result = dg.evaluate_automation_conditions(self.defs, self.instance, asset_selection=self.selection,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        tags = {"dagster/from_automation_condition": "true"}
        for asset_key in self.keys:
            parts = sorted(p for p in result.get_requested_partitions(asset_key) if p is not None)
            if None in result.get_requested_partitions(asset_key):
                yield dg.RunRequest(asset_selection=[asset_key], tags=tags)
            if parts and takes_a_range(self.defs, asset_key):
                yield dg.RunRequest(asset_selection=[asset_key],
                                    tags={**tags, RANGE_START: parts[0], RANGE_END: parts[-1]})
            else:
                yield from (dg.RunRequest(asset_selection=[asset_key], partition_key=p, tags=tags) for p in parts)


def age_files(paths, seconds: float) -> None:
    """Date the files' modification time `seconds` back (see replay)."""
    then = time.time() - seconds
    for p in paths:
        os.utime(p, (then, then))


def replay(days: list[dt.date], cfg, *, use_case: str = "churn", label_delay_days: int = 7,
           progress: Callable[[str], None] = print, log: Callable[[str], None] = lambda _: None,
           defs=None, instance=None) -> ReplayReport:
    """Replay `days` as the events they are in production, through the path the daemon takes.
    For each day: the simulator writes the day's landing file into the landing folder (and the
    label files of the days `label_delay_days` old by then into the label folder); the use
    case's landing sensor, then its label sensor, are evaluated from the loaded definitions with
    the cursor of their previous tick, and each run request they return is executed in this
    process as the daemon launches it (same job, asset selection, partition key or range,
    tags); then what the automation sensor requests for the performance report and the
    monitoring summary (nothing when the event runs carry them); then the retrain sensor, whose
    request, when a trigger fires, runs the training job. Every run is on the instance, so the
    UI shows them.

    The files are written whole (under a temporary name, then renamed), and their modification
    time is dated back past the sensors' settle_seconds: the settle rule is there for files
    still being copied in, which these are not, and waiting it out each day would only add
    settle_seconds x days to the replay.

    `progress` gets one line per event and day; `log` the runs' own outcome lines."""
    import dagster as dg

    from mlops_assets.definitions import build_defs
    from mlops_assets.chain.lineage import PERFORMANCE, SUMMARY, key
    from mlops_assets.simulate.files import day_file_name
    from mlops_assets.simulate.shipped import simulator
    from mlops_assets.use_cases.loader import get_use_case

    defs = defs or build_defs()
    instance = instance or dg.DagsterInstance.get()
    uc = get_use_case(use_case)
    write_days = simulator(uc.name).write_days  # `cfg` is that simulator's SimulationConfig
    report = ReplayReport(days=list(days))
    names = {"landing": f"{uc.name}_landing_sensor", "labels": f"{uc.name}_label_sensor",
             "retrain": f"{uc.name}_retrain_sensor"}
    sensors = {kind: _SensorTicks(defs, instance, name) for kind, name in names.items()
               if kind != "labels" or uc.labels is not None}
    automation = _Automation(defs, instance, [key(uc, PERFORMANCE), key(uc, SUMMARY)])
    label_folder = uc.labels.path() if uc.labels is not None else None
    settle = max(uc.landing.settle_seconds, uc.labels.settle_seconds if uc.labels else 0.0) + 1.0

    def run(kind: str, request, job: str, sensor: str | None) -> StepOutcome:
        outcome = launch(defs, instance, request, job, sensor, log)
        report.runs[kind] = report.runs.get(kind, 0) + 1
        if not outcome.success and kind != "retrain":  # a refused promotion is an outcome: its line says why
            report.problems.append(f"{kind} run {outcome.run_id} failed: "
                                   + "; ".join(m.splitlines()[0] for m in outcome.step_failures)[:300])
        return outcome

    for day in days:
        before = set(label_folder.glob("*")) if label_folder and label_folder.is_dir() else set()
        write_days(uc.landing.path(), [day], cfg, use_case=uc.name, label_folder=label_folder,
                   label_delay_days=label_delay_days)
        new_labels = sorted(set(label_folder.glob("*")) - before) if label_folder else []
        age_files([uc.landing.path() / day_file_name(uc.name, day), *new_labels], settle)

        labelled: list[dt.date] = []
        for kind in ("landing", "labels"):
            if kind not in sensors:
                continue
            ticks = sensors[kind]
            try:
                requests = list(ticks.ticks())
            except Exception as exc:  # a sensor error is a finding of the replay, not its end
                report.problems.append(f"{ticks.name} failed on {day}: {exc}")
                progress(f"{day} {ticks.name} FAILED: {str(exc).splitlines()[0][:200]}")
                continue
            for request in requests:
                outcome = run(kind, request, ticks.job_name(request), ticks.name)
                for d in request_days(request):
                    if kind == "landing":
                        progress(landed_line(instance, uc, d, outcome))
                    else:
                        labelled.append(d)
        for request in automation.requests():
            job = f"{uc.name}_monitoring_summary" if request.asset_selection == [key(uc, SUMMARY)] else f"{uc.name}_daily"
            run("automation", request, job, None)
        for d in sorted(set(labelled)):
            progress(performance_line(instance, uc, d))
        if "retrain" in sensors:
            try:
                requests = list(sensors["retrain"].ticks(max_ticks=1))
            except Exception as exc:
                report.problems.append(f"{names['retrain']} failed on {day}: {exc}")
                progress(f"{day} {names['retrain']} FAILED: {str(exc).splitlines()[0][:200]}")
                requests = []
            for request in requests:
                outcome = run("retrain", request, sensors["retrain"].job_name(request), names["retrain"])
                line = retrain_line(instance, uc, request, outcome)
                report.retrains.append(f"{day}: {line}")
                progress(line)
    return report
