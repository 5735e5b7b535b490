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

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    from mlops_assets.partitions import daily_partitions

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
    with landing.in_utc(duckdb.connect()) as con:  # in memory: only the files are read
        for f in scan.files:
            if str(f.path) in unsettled:
                continue
            try:
                per_day = landing.file_days(con, f.path, uc.timestamp_column)
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
    with landing.in_utc(duckdb.connect()) as con:  # in memory: only the files are read
        for f in scan.files:
            if str(f.path) in unsettled:
                continue
            try:
                days.update(d for d in landing.file_days(con, f.path, uc.timestamp_column) if first <= d <= last)
            except landing.LandingFileError as exc:
                log(f"{uc.name}: label file not read: {exc}")
    return sorted(days)


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

    def __bool__(self) -> bool:
        return self.success


def failed_checks(evaluations, where: str) -> tuple[list[str], bool]:
    """Lines for the failed check evaluations of a run: asset, check, day and severity (and
    whether any blocking check failed)."""
    lines, blocking = [], False
    for ev in evaluations:
        if ev.passed:
            continue
        blocking |= bool(ev.blocking)
        day = ev.partition or where
        severity = getattr(ev.severity, "value", ev.severity)
        desc = (ev.description or "").strip().splitlines()
        lines.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name} FAILED for {day} "
                     f"({severity}{', blocking' if ev.blocking else ''})" + (f": {desc[0][:300]}" if desc else ""))
    return lines, blocking


def execute(defs, instance, job: str, selection=None, log=print, **kwargs) -> StepOutcome:
    """One Dagster run, in this process; logs its outcome, failed steps and failed checks."""
    from mlops_assets.recovery import PID_TAG

    started = time.perf_counter()
    tags = {**(kwargs.pop("tags", None) or {}), PID_TAG: str(os.getpid())}  # lets a crash be detected
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=selection, raise_on_error=False, tags=tags, **kwargs)
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
    return StepOutcome(result.success and not blocking, checks, blocking)


def run_pipeline(monitor_days: int = 1, only: list[str] | None = None, log=print) -> bool:
    """Per use case: load and build features for every day of its partitions the landing zone
    holds (one run over the range), train-evaluate-promote, then score and check drift for the
    latest `monitor_days` days. True only when everything succeeded, no blocking check failed,
    every landing file was read and every row found a partition (days still to come aside)."""
    import dagster as dg

    from mlops_assets.definitions import build_defs
    from mlops_assets.defs.training.sensors import training_chain
    from mlops_assets.lineage import BATCH_PREDICTIONS, DRIFT, LABELS, PERFORMANCE, SUMMARY, key
    from mlops_assets.recovery import fail_dead_runs
    from mlops_assets.use_cases.config import load_use_case_set

    defs, instance, ok = build_defs(), dg.DagsterInstance.get(), True
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
        log(f"{uc.name}: {len(listing.days)} day(s) of data, {listing.days[0]}..{listing.days[-1]} "
            f"({listing.rows} rows)")
        daily = defs.resolve_job_def(f"{uc.name}_daily")
        per_day = set(daily.asset_layer.selected_asset_keys)
        monitoring = {k for k in per_day if k.path[-1] in (DRIFT, BATCH_PREDICTIONS, PERFORMANCE)}
        building = list(per_day - monitoring)
        # Each step needs the one before; a failed use case does not stop the others.
        outcomes = [execute(defs, instance, f"{uc.name}_daily", building, log, tags={
            "dagster/asset_partition_range_start": listing.days[0].isoformat(),
            "dagster/asset_partition_range_end": listing.days[-1].isoformat()})]
        if outcomes[-1].success:
            outcomes.append(execute(defs, instance, f"{uc.name}_training", training_chain(uc), log))
        for day in listing.days[-monitor_days:] if outcomes[-1].success else []:
            outcomes.append(execute(defs, instance, f"{uc.name}_daily", list(monitoring), log,
                                    partition_key=day.isoformat()))
        if outcomes[-1].success:
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
