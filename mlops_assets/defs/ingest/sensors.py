"""The landing sensor of each use case: new or changed batch files -> runs of raw for their days.
Downstream assets follow through their automation conditions."""
import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg

from mlops_assets import handoffs
from mlops_assets.ingest import landing
from mlops_assets.ingest.watch import drop_loaded, plan_landing
from mlops_assets.lineage import RAW, key
from mlops_assets.partitions import daily_partitions
from mlops_assets.use_cases.config import UseCase

INTERVAL_ENV = "MLOPS_SENSOR_INTERVAL_S"


def _loaded_fingerprints(instance: dg.DagsterInstance, raw_key: dg.AssetKey, days, log=None
                         ) -> dict[dt.date, set[str]]:
    """File versions read by the latest load of each of these days. A load without the record
    (made by older code) counts as having read nothing, so the day is loaded again, with a warning."""
    if not days:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_key, asset_partitions=[d.isoformat() for d in days]),
        limit=10 * len(days)).records
    loaded: dict[dt.date, set[str]] = {}
    for rec in records:  # newest first: keep the latest load of each day
        day = dt.date.fromisoformat(rec.partition_key)
        if day not in loaded:
            try:
                loaded[day] = set(handoffs.read_file_fingerprints(
                    rec.asset_materialization.metadata, f"{raw_key.to_user_string()} for {day}"))
            except handoffs.HandoffError as exc:
                (log or dg.get_dagster_logger().warning)(f"{exc}: requesting that day again")
                loaded[day] = set()
    return loaded


def folder_tick(context: dg.SensorEvaluationContext, uc: UseCase, folder: Path, pattern: str,
                settle_seconds: float, asset_key: dg.AssetKey, trigger: str,
                run_key_prefix: str | None = None) -> dg.SensorResult:
    """One tick of a folder watcher: plan with watch.plan_landing, drop days already loaded from
    the same file versions, request `asset_key` for the rest, say in the log what and why.
    Run keys start with `run_key_prefix` (default: the asset's name)."""
    import duckdb  # in-memory: the sensor only reads the files, never the warehouse

    partitions = daily_partitions(uc)
    cursor = json.loads(context.cursor) if context.cursor else {}
    scan = landing.scan_landing(folder, pattern)
    last_key = partitions.get_last_partition_key()
    last_day = dt.date.fromisoformat(last_key) if last_key else uc.first_day
    with landing.in_utc(duckdb.connect()) as con:
        plan = plan_landing(scan.files, cursor, dt.datetime.now(dt.timezone.utc), settle_seconds,
                            lambda f: landing.file_days(con, f.path, uc.timestamp_column), uc.first_day, last_day)
    already = drop_loaded(plan, _loaded_fingerprints(context.instance, asset_key, plan.days, context.log.warning))
    if already:
        context.log.info(f"already loaded from the same files, not requested: {', '.join(map(str, already))}")
    for line in plan.seen:
        context.log.info(f"new or changed: {line}")
    plan.skipped += [f"refused {problem}" for problem in scan.refused.values()] + scan.ignored
    for line in plan.skipped:
        context.log.warning(f"skipped {line}")
    name = asset_key.to_user_string()
    requests = [dg.RunRequest(run_key=plan.run_key(run_key_prefix or name, day), partition_key=day.isoformat(),
                              tags={"mlops/trigger": trigger, "mlops/use_case": uc.name})
                for day in sorted(plan.days)]
    if requests:
        context.log.info(f"requesting {name} for {len(requests)} day(s): {', '.join(r.partition_key for r in requests)}")
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(plan.cursor, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason(
            f"{len(scan.files)} file(s) in {folder}, none new or changed"
            + (f"; skipped: {'; '.join(plan.skipped)}" if plan.skipped else "")))


def build_landing_sensor(uc: UseCase) -> dg.SensorDefinition:
    interval = int(os.environ.get(INTERVAL_ENV) or uc.landing.poll_seconds)

    @dg.sensor(
        name=f"{uc.name}_landing_sensor",
        target=[key(uc, RAW)],
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {uc.landing.path()} ({uc.landing.pattern}) and requests {uc.name}/raw for each day "
                    "a new or changed file holds.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, uc.landing.path(), uc.landing.pattern, uc.landing.settle_seconds,
                           key(uc, RAW), "landing", run_key_prefix=uc.name)

    return landing_sensor
