"""The landing sensor of each use case: new or changed batch files -> one run per day of that
day's whole chain (raw, the dbt models, batch predictions, drift report, performance report),
as far as the chain's other inputs exist. One run instead of a raw run followed by an automation
tick and a second run: a landed file reaches its drift report with one run launch and one code
location load. The automation conditions do not request the same day again (any_deps_updated
ignores an update made by a run that also targeted the asset); steps left out of the run (no
champion yet, no labels for the day) stay with their automation conditions."""
import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg

from mlops_assets import handoffs
from mlops_assets.ingest import landing
from mlops_assets.ingest.watch import drop_loaded, plan_landing
from mlops_assets.lineage import BATCH_PREDICTIONS, CHAMPION, DRIFT, LABELS, PERFORMANCE, RAW, TRAINING_SET, key
from mlops_assets.partitions import daily_partitions
from mlops_assets.use_cases.config import UseCase

INTERVAL_ENV = "MLOPS_SENSOR_INTERVAL_S"


def chain_for_day(uc: UseCase, dbt_models: Sequence[dg.AssetKey], *, champion: bool, training_set: bool,
                  labelled: bool) -> list[dg.AssetKey]:
    """The assets the landing run of one day materializes: raw and the use case's dbt models
    always; batch predictions once a champion exists; the drift report once a training set
    exists; the performance report when the day is scored in this run and has labels
    (`labelled`). A step left out is left to its automation condition, which holds it while
    an input is missing, as this does. With dbt features but no dbt models given, raw alone."""
    if uc.features.dbt_model and not dbt_models:
        return [key(uc, RAW)]
    keys = [key(uc, RAW), *dbt_models]
    if champion:
        keys.append(key(uc, BATCH_PREDICTIONS))
    if training_set:
        keys.append(key(uc, DRIFT))
    if champion and labelled:
        keys.append(key(uc, PERFORMANCE))
    return keys


def chain_targets(uc: UseCase, dbt_models: Sequence[dg.AssetKey]) -> list[dg.AssetKey]:
    """Every asset a landing run may select (the sensor's target)."""
    return chain_for_day(uc, dbt_models, champion=True, training_set=True, labelled=True)


def _has_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> bool:
    return bool(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key), limit=1).records)


def day_chains(instance: dg.DagsterInstance, uc: UseCase, dbt_models: Sequence[dg.AssetKey],
               days: Sequence[dt.date]) -> dict[dt.date, list[dg.AssetKey]]:
    """chain_for_day for each requested day, from what the instance holds. Three queries, only
    on a tick that requests something, so a quiet tick stays a folder listing."""
    champion = _has_materialization(instance, key(uc, CHAMPION))
    training_set = _has_materialization(instance, key(uc, TRAINING_SET))
    if uc.labels is None:  # labels in the landing rows: the raw load of this very run carries them
        labelled = set(days)
    else:
        wanted = {d.isoformat() for d in days}
        labelled = {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key(uc, LABELS))
                    if p in wanted}
    return {d: chain_for_day(uc, dbt_models, champion=champion, training_set=training_set, labelled=d in labelled)
            for d in days}


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
                run_key_prefix: str | None = None,
                selection: Callable[[list[dt.date]], dict[dt.date, list[dg.AssetKey]]] | None = None
                ) -> dg.SensorResult:
    """One tick of a folder watcher: plan with watch.plan_landing, drop days already loaded from
    the same file versions, request `asset_key` for the rest, say in the log what and why.
    Run keys start with `run_key_prefix` (default: the asset's name). `selection`, given the
    requested days, returns the assets each day's run selects (default: the sensor's target)."""
    partitions = daily_partitions(uc)
    cursor = json.loads(context.cursor) if context.cursor else {}
    scan = landing.scan_landing(folder, pattern)
    last_key = partitions.get_last_partition_key()
    last_day = dt.date.fromisoformat(last_key) if last_key else uc.first_day
    # DuckDB in memory (the sensor reads files, never the warehouse), opened only when a file is
    # new or changed: opening it was most of a quiet tick's cost, paid by every use case's sensor.
    con = None

    def days_of(f):
        nonlocal con
        if con is None:
            import duckdb

            con = landing.in_utc(duckdb.connect())
        return landing.file_days(con, f.path, uc.timestamp_column)

    try:
        plan = plan_landing(scan.files, cursor, dt.datetime.now(dt.timezone.utc), settle_seconds, days_of,
                            uc.first_day, last_day)
    finally:
        if con is not None:
            con.close()
    already = drop_loaded(plan, _loaded_fingerprints(context.instance, asset_key, plan.days, context.log.warning))
    if already:
        context.log.info(f"already loaded from the same files, not requested: {', '.join(map(str, already))}")
    for line in plan.seen:
        context.log.info(f"new or changed: {line}")
    plan.skipped += [f"refused {problem}" for problem in scan.refused.values()] + scan.ignored
    for line in plan.skipped:
        context.log.warning(f"skipped {line}")
    name = asset_key.to_user_string()
    days = sorted(plan.days)
    chains = selection(days) if selection and days else {}
    requests = [dg.RunRequest(run_key=plan.run_key(run_key_prefix or name, day), partition_key=day.isoformat(),
                              asset_selection=chains.get(day),
                              tags={"mlops/trigger": trigger, "mlops/use_case": uc.name})
                for day in days]
    if requests:
        context.log.info(f"requesting {name} for {len(requests)} day(s): {', '.join(r.partition_key for r in requests)}")
    for selected in dict.fromkeys(tuple(c) for c in chains.values()):
        on = [d.isoformat() for d in days if tuple(chains[d]) == selected]
        context.log.info(f"runs of {', '.join(on)} select {', '.join(k.to_user_string() for k in selected)}")
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(plan.cursor, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason(
            f"{len(scan.files)} file(s) in {folder}, none new or changed"
            + (f"; skipped: {'; '.join(plan.skipped)}" if plan.skipped else "")))


def build_landing_sensor(uc: UseCase, dbt_models: Sequence[dg.AssetKey] = ()) -> dg.SensorDefinition:
    """`dbt_models`: the keys of the use case's dbt models (components/chain.py passes them);
    without them a dbt use case's landing runs load raw only and automation does the rest."""
    # A tick lists the landing folder (stat calls) and reads a file's days only when its version
    # changed, so it is cheap enough for the use case's poll_seconds to be short: the poll is the
    # largest wait between a file landing and its run's launch.
    interval = int(os.environ.get(INTERVAL_ENV) or uc.landing.poll_seconds)
    dbt_models = list(dbt_models)

    @dg.sensor(
        name=f"{uc.name}_landing_sensor",
        target=chain_targets(uc, dbt_models),
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {uc.landing.path()} ({uc.landing.pattern}) and, for each day a new or changed file "
                    f"holds, launches one run of that day's chain: {uc.name}/raw, the dbt models, then batch "
                    "predictions, the drift report and the performance report as far as a champion, a training "
                    "set and the day's labels exist.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, uc.landing.path(), uc.landing.pattern, uc.landing.settle_seconds,
                           key(uc, RAW), "landing", run_key_prefix=uc.name,
                           selection=lambda days: day_chains(context.instance, uc, dbt_models, days))

    return landing_sensor
