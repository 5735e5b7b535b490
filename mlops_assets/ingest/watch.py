"""Which landing files need loading, and for which days: the pure part of the landing sensor.

The cursor maps each file path to the fingerprint (size and mtime) it had when its days were
last requested. A file is requested again only when its fingerprint changes; a file modified
less than `settle_seconds` ago is left for a later tick, as it may still be being written.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from mlops_assets.ingest.landing import LandingFile, LandingFileError, fingerprint


@dataclass
class LandingPlan:
    days: dict[dt.date, list[str]] = field(default_factory=dict)  # day -> fingerprints of the files that brought it
    skipped: list[str] = field(default_factory=list)  # human-readable reasons, for the tick log
    seen: list[str] = field(default_factory=list)
    cursor: dict[str, str] = field(default_factory=dict)

    def run_key(self, use_case: str, day: dt.date) -> str:
        """Stable across ticks and restarts: the same files at the same fingerprints give the
        same key, and Dagster never launches two runs with one key."""
        digest = hashlib.sha1("|".join(sorted(self.days[day])).encode()).hexdigest()[:12]
        return f"{use_case}:{day.isoformat()}:{digest}"


def plan_landing(files: list[LandingFile], cursor: dict[str, str], now: dt.datetime, settle_seconds: float,
                 read_days: Callable[[LandingFile], dict[dt.date, int]],
                 first_day: dt.date, last_day: dt.date) -> LandingPlan:
    plan = LandingPlan(cursor=dict(cursor))
    present = {str(f.path) for f in files}
    for gone in set(cursor) - present:
        del plan.cursor[gone]
    for f in files:
        fp = fingerprint(f)
        if cursor.get(str(f.path)) == fp:
            continue
        age = now.timestamp() - f.mtime_ns / 1e9
        if age < settle_seconds:
            plan.skipped.append(f"{f.path.name}: modified {age:.1f}s ago, may still be being written; waiting "
                                f"until it is {settle_seconds:.0f}s old")
            continue
        try:
            days = read_days(f)
        except LandingFileError as exc:
            # Remember the broken version so the tick log does not repeat it every tick; a fixed
            # file has a new fingerprint and is read again.
            plan.skipped.append(f"not loadable, fix or replace it: {exc}")
            plan.cursor[str(f.path)] = fp
            continue
        outside = sorted(d for d in days if not first_day <= d <= last_day)
        if outside:
            plan.skipped.append(f"{f.path.name}: {len(outside)} day(s) outside the partitions "
                                f"{first_day}..{last_day} ({outside[0]}..{outside[-1]}) not requested")
        wanted = [d for d in days if first_day <= d <= last_day]
        for d in wanted:
            plan.days.setdefault(d, []).append(fp)
        plan.seen.append(f"{f.path.name}: {sum(days.values())} rows over {len(days)} day(s)")
        plan.cursor[str(f.path)] = fp
    return plan


def drop_loaded(plan: LandingPlan, loaded: dict[dt.date, set[str]]) -> list[dt.date]:
    """Remove the days whose latest load already read these very file versions (e.g. loaded by
    a backfill or the demo before the sensor ever ran). Returns the days removed."""
    done = [d for d, fps in plan.days.items() if set(fps) <= loaded.get(d, set())]
    for d in done:
        del plan.days[d]
    return sorted(done)
