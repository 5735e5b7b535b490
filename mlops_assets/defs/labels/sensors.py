"""The label sensor of a use case: new or changed label files -> runs of labels/<use case> for the
event days they hold. Same exactly-once rules as the landing sensor (ingest/watch.py): run keys
from the file versions, a cursor of versions, the settle time, and days already loaded from the
same versions are not requested again."""
import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg

from mlops_assets.defs.ingest.sensors import INTERVAL_ENV, _loaded_fingerprints
from mlops_assets.defs.labels.assets import labels_key
from mlops_assets.ingest import landing
from mlops_assets.ingest.watch import drop_loaded, plan_landing
from mlops_assets.partitions import daily_partitions
from mlops_assets.use_cases.config import UseCase


def folder_tick(context: dg.SensorEvaluationContext, uc: UseCase, folder: Path, pattern: str,
                settle_seconds: float, asset_key: dg.AssetKey, trigger: str) -> dg.SensorResult:
    """One tick of a folder watcher: plan with watch.plan_landing, drop days already loaded from
    the same file versions, request `asset_key` for the rest, say in the log what and why."""
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
    requests = [dg.RunRequest(run_key=plan.run_key(name, day), partition_key=day.isoformat(),
                              tags={"mlops/trigger": trigger, "mlops/use_case": uc.name})
                for day in sorted(plan.days)]
    if requests:
        context.log.info(f"requesting {name} for {len(requests)} day(s): {', '.join(r.partition_key for r in requests)}")
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(plan.cursor, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason(
            f"{len(scan.files)} file(s) in {folder}, none new or changed"
            + (f"; skipped: {'; '.join(plan.skipped)}" if plan.skipped else "")))


def build_label_sensor(uc: UseCase) -> dg.SensorDefinition:
    if uc.labels is None:
        raise ValueError(f"use case {uc.name} declares no `labels:` section")
    cfg = uc.labels

    @dg.sensor(
        name=f"{uc.name}_label_sensor",
        target=[labels_key(uc)],
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV) or cfg.poll_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {cfg.path()} ({cfg.pattern}) and requests {uc.name}/labels for each event day a new "
                    "or changed label file holds; the features of those days follow.",
    )
    def label_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, cfg.path(), cfg.pattern, cfg.settle_seconds, labels_key(uc), "labels")

    return label_sensor
