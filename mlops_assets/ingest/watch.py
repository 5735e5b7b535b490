"""Which landing files need loading, and for which days: the pure part of the landing sensor.

The cursor maps each file path to the version (path, size, mtime) it had when its days were
last requested, and those days. A file is requested again only when its version changes, and
then for its old days as well as its new ones (rows that moved to another day must leave the
old one); a vanished file's days are requested so they are rebuilt without it. A file
modified less than `settle_seconds` ago is left for a later tick, as it may still be being
written; a file holding days after the last partition is not marked done, so those days are
requested once they exist.

A tick reads at most `max_reads` new or changed files, oldest first, and stops early when its
time budget is spent: a first tick on a folder of thousands of files must stay well inside
Dagster's sensor timeout. The files left over are not in the cursor, so the next tick takes them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlops_assets.ingest.landing import LandingFile, LandingFileError, fingerprint


@dataclass
class LandingPlan:
    days: dict[dt.date, list[str]] = field(default_factory=dict)  # day -> versions of the files behind the request
    skipped: list[str] = field(default_factory=list)  # human-readable reasons, for the tick log
    seen: list[str] = field(default_factory=list)
    cursor: dict[str, dict] = field(default_factory=dict)  # path -> {"version": ..., "days": [...]}
    deferred: int = 0  # new or changed files left for the next tick (read budget spent)
    rows: dict[dt.date, int] = field(default_factory=dict)  # day -> rows in the files read this tick

    def run_key(self, use_case: str, days: list[dt.date]) -> str:
        """Stable across ticks and restarts: the same files at the same versions give the
        same key, and Dagster never launches two runs with one key."""
        versions = sorted({v for day in days for v in self.days[day]})
        digest = hashlib.sha1("|".join([*(d.isoformat() for d in sorted(days)), *versions]).encode()).hexdigest()[:12]
        first, last = min(days), max(days)
        span = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
        return f"{use_case}:{span}:{digest}"

    def _want(self, day: dt.date, why: str) -> None:
        self.days.setdefault(day, []).append(why)


def plan_landing(files: list[LandingFile], cursor: dict[str, dict], now: dt.datetime, settle_seconds: float,
                 read_days: Callable[[LandingFile], dict[dt.date, int]],
                 first_day: dt.date, last_day: dt.date, max_reads: int | None = None,
                 budget_s: float | None = None) -> LandingPlan:
    plan = LandingPlan(cursor=dict(cursor))
    started, reads = time.monotonic(), 0
    in_range = lambda d: first_day <= d <= last_day  # noqa: E731
    present = {str(f.path) for f in files}
    for gone in sorted(set(cursor) - present):
        old_days = [dt.date.fromisoformat(d) for d in cursor[gone].get("days", [])]
        for d in old_days:
            if in_range(d):
                plan._want(d, f"{gone}@removed")
        plan.seen.append(f"{gone.rsplit('/', 1)[-1]}: removed; rebuilding its {len(old_days)} day(s) without it")
        del plan.cursor[gone]
    for f in sorted(files, key=lambda f: (f.mtime_ns, str(f.path))):  # oldest first: a backlog drains in order
        version = fingerprint(f)
        previous = cursor.get(str(f.path), {})
        if previous.get("version") == version:
            continue
        age = now.timestamp() - f.mtime_ns / 1e9
        if age < settle_seconds:
            plan.skipped.append(f"{f.path.name}: modified {age:.1f}s ago, may still be being written; waiting "
                                f"until it is {settle_seconds:.0f}s old")
            continue
        if (max_reads is not None and reads >= max_reads) or (
                budget_s is not None and reads and time.monotonic() - started > budget_s):
            plan.deferred += 1
            continue
        reads += 1
        try:
            days = read_days(f)
        except LandingFileError as exc:
            # Remember the broken version (keeping the days of the last good one) so the tick log
            # does not repeat it every tick; a fixed file has a new version and is read again.
            plan.skipped.append(f"not loadable, fix or replace it: {exc}")
            plan.cursor[str(f.path)] = {"version": version, "days": previous.get("days", [])}
            continue
        old_days = {dt.date.fromisoformat(d) for d in previous.get("days", [])}
        early = sorted(d for d in days if d < first_day)
        future = sorted(d for d in days if d > last_day)
        if early:
            plan.skipped.append(f"{f.path.name}: {sum(days[d] for d in early)} row(s) on {len(early)} day(s) "
                                f"before the first partition {first_day} ({early[0]}..{early[-1]}) are not loaded")
        if future:
            plan.skipped.append(f"{f.path.name}: {sum(days[d] for d in future)} row(s) on {len(future)} day(s) "
                                f"after the last partition {last_day} ({future[0]}..{future[-1]}); requested once "
                                "they exist")
        for d in sorted((set(days) | old_days)):
            if in_range(d):
                plan._want(d, version)
        for d, n in days.items():
            plan.rows[d] = plan.rows.get(d, 0) + n
        plan.seen.append(f"{f.path.name}: {sum(days.values())} rows over {len(days)} day(s)")
        if not future:
            plan.cursor[str(f.path)] = {"version": version, "days": sorted(d.isoformat() for d in days)}
    return plan


def drop_loaded(plan: LandingPlan, loaded: dict[dt.date, set[str]]) -> list[dt.date]:
    """Remove the days whose latest load already read these very file versions (e.g. loaded by
    a backfill or the demo before the sensor ever ran). Returns the days removed."""
    done = [d for d, fps in plan.days.items() if set(fps) <= loaded.get(d, set())]
    for d in done:
        del plan.days[d]
    return sorted(done)
