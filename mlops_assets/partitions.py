"""Daily partitions of a use case's time-sliced assets: one partition per calendar day (UTC) of
the data's own timestamp column, not of file arrival."""
import dagster as dg

from mlops_assets.use_cases.config import UseCase


def daily_partitions(uc: UseCase) -> dg.DailyPartitionsDefinition:
    # end_offset=1 makes today's partition addressable: a batch for today can land today.
    return dg.DailyPartitionsDefinition(start_date=uc.first_day.isoformat(), end_offset=1)
