"""Daily partitions of a use case's time-sliced assets: one partition per calendar day (UTC) of
the data's own timestamp column, not of file arrival."""
import datetime as dt

import dagster as dg

from mlops_assets.use_cases.config import UseCase


def utc_window(context: dg.AssetExecutionContext) -> tuple[dt.datetime, dt.datetime]:
    """The run's partition window as naive UTC datetimes, the way the warehouse stores time."""
    window = context.partition_time_window
    return tuple(t.astimezone(dt.timezone.utc).replace(tzinfo=None) for t in (window.start, window.end))


def daily_partitions(uc: UseCase) -> dg.DailyPartitionsDefinition:
    """first_day .. last_day when the use case declares a last day (historical data), else
    first_day .. today: end_offset=1 makes today's partition addressable, so a batch for today
    can land today. A last day in the future still stops at today."""
    end = None if uc.last_day is None else (uc.last_day + dt.timedelta(days=1)).isoformat()  # end_date is exclusive
    return dg.DailyPartitionsDefinition(start_date=uc.first_day.isoformat(), end_date=end, end_offset=1)
