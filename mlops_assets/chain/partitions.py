"""Daily partitions of a use case's time-sliced assets: one partition per calendar day, in the
use case's own time zone (`timezone`, default UTC), of the data's timestamp column, not of file
arrival. The warehouse stores timestamps as wall-clock time in that zone (naive), so a day's
window is a pair of naive datetimes.

A run may cover one day or a range of days (event runs and backfills are ranges): assets that
report per day give each day its own metadata and check evaluation (day_results)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import dagster as dg

from mlops_assets.chain import handoffs
from mlops_assets.use_cases.config import UseCase


def local_window(context: dg.AssetExecutionContext) -> tuple[dt.datetime, dt.datetime]:
    """The run's partition window (one day or a range) as naive wall-clock datetimes in the
    partitions' zone, the way the warehouse stores time."""
    window = context.partition_time_window
    return window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)


def day_window(day: str) -> tuple[dt.datetime, dt.datetime]:
    """One partition key's window, naive wall-clock time."""
    start = dt.datetime.fromisoformat(day)
    return start, start + dt.timedelta(days=1)


def contiguous_ranges(days: Sequence[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive runs of days as (first, last) pairs: a set of days as few partition ranges."""
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + dt.timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Run tags that make a run cover the partition range first..last (what a single-run
    backfill sets)."""
    return {"dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat()}


def daily_partitions(uc: UseCase) -> dg.DailyPartitionsDefinition:
    """first_day .. last_day when the use case declares a last day (historical data), else
    first_day .. today in the use case's zone: end_offset=1 makes today's partition
    addressable, so a batch for today can land today. A last day in the future still stops at
    today."""
    end = None if uc.last_day is None else (uc.last_day + dt.timedelta(days=1)).isoformat()  # end_date is exclusive
    return dg.DailyPartitionsDefinition(start_date=uc.first_day.isoformat(), end_date=end, end_offset=1,
                                        timezone=uc.timezone)


def day_results(context: dg.AssetExecutionContext, check_name: str,
                per_day: Mapping[str, tuple[dict, dg.AssetCheckResult | None]],
                severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN) -> dg.MaterializeResult:
    """The result of a per-day report over the run's days: each day's metadata on that day's
    materialization, and each day's check evaluation stored under that day, whether the run
    covers one partition or a range. In a range run Dagster stores a check result without a
    partition, so each day's evaluation is logged with its partition, and the step's own result
    is the range's roll-up (it passes only when every day passed). A day of a range whose result
    is None gets its metadata and no verdict (nothing to judge)."""
    for day, (metadata, _) in per_day.items():
        context.add_asset_metadata(metadata, partition_key=day)
    if context.has_partition_key:
        ((_, result),) = per_day.values()
        return dg.MaterializeResult(check_results=[result])
    judged = {day: result for day, (_, result) in per_day.items() if result is not None}
    for day, result in judged.items():
        context.log_event(dg.AssetCheckEvaluation(
            asset_key=context.asset_key, check_name=check_name, passed=result.passed, metadata=result.metadata,
            severity=result.severity, description=result.description, partition=day))
    failed = [d for d, r in judged.items() if not r.passed]
    return dg.MaterializeResult(
        metadata={"days_in_run": len(per_day)},
        check_results=[dg.AssetCheckResult(
            check_name=check_name, passed=not failed, severity=severity,
            description=(f"range of {len(per_day)} day(s), {len(judged)} judged: "
                         + (f"failed on {', '.join(failed)}" if failed else "every judged day passed"))[:1000],
            metadata={handoffs.RANGE_ROLLUP: True, "failed_days": dg.MetadataValue.json(failed), "days": len(per_day)})])
