"""The landing sensor of each use case: new or changed batch files -> ONE run per sensor tick
(per stretch of consecutive days that need the same steps) carrying the days through raw, the
dbt models, batch predictions, the drift report, the performance report and the monitoring
summary, as far as the chain's other inputs exist. One event, one run: a landed file reaches its
summary with one run launch and one code location load, and a backfill-sized drop is a range
run, not a run per day. The automation conditions do not request the same days again
(any_deps_updated ignores an update made by a run that also targeted the asset); steps left out
of the run (no champion yet, no labels for the day, a day still open) stay with their automation
conditions."""
import datetime as dt
import json
import os
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg

from mlops_assets.chain import handoffs
from mlops_assets.ingest import landing
from mlops_assets.ingest.watch import drop_loaded, plan_landing
from mlops_assets.chain.lineage import (BATCH_PREDICTIONS, CHAMPION, DRIFT, LABELS, PERFORMANCE, RAW, SUMMARY,
                                  TRAINING_SET, key)
from mlops_assets.chain.partitions import contiguous_ranges, daily_partitions, range_tags
from mlops_assets.use_cases.config import UseCase

INTERVAL_ENV = "MLOPS_SENSOR_INTERVAL_S"
# A tick reads at most this many new or changed files, and stops reading after READ_BUDGET_S:
# the rest wait for the next tick (Dagster gives a sensor tick 60 s).
FILES_PER_TICK_ENV = "MLOPS_LANDING_FILES_PER_TICK"
DEFAULT_FILES_PER_TICK = 200
READ_BUDGET_S = 20.0
EVENT_RUN_RETRIES = 1


def chain_for_day(uc: UseCase, dbt_models: Sequence[dg.AssetKey], *, champion: bool, training_set: bool,
                  labelled: bool, judged: bool = True) -> list[dg.AssetKey]:
    """The assets the landing run of one day materializes: raw and the use case's dbt models
    always; batch predictions once a champion exists; the drift report once a training set
    exists; the performance report when the day is scored in this run and has labels
    (`labelled`); the monitoring summary after any of those. A day still open (`judged` False)
    is loaded and scored but not yet judged: no drift or performance report. A step left out is
    left to its automation condition. With dbt features but no dbt models given, raw alone."""
    if uc.features.dbt_model and not dbt_models:
        return [key(uc, RAW)]
    keys = [key(uc, RAW), *dbt_models]
    if champion:
        keys.append(key(uc, BATCH_PREDICTIONS))
    if training_set and judged:
        keys.append(key(uc, DRIFT))
    if champion and labelled and judged:
        keys.append(key(uc, PERFORMANCE))
    if len(keys) > 1 + len(dbt_models):
        keys.append(key(uc, SUMMARY))
    return keys


def chain_targets(uc: UseCase, dbt_models: Sequence[dg.AssetKey]) -> list[dg.AssetKey]:
    """Every asset a landing run may select (the sensor's target)."""
    return chain_for_day(uc, dbt_models, champion=True, training_set=True, labelled=True)


def label_chain(uc: UseCase, dbt_models: Sequence[dg.AssetKey], *, scored: bool, judged: bool = True
                ) -> list[dg.AssetKey]:
    """The assets a label run of one day materializes: the labels, the dbt models (the features
    carry the label), and the performance report with the summary when the day was scored and
    has closed. Predictions and drift are not redone: labels change neither."""
    keys = [key(uc, LABELS), *dbt_models]
    if scored and judged:
        keys += [key(uc, PERFORMANCE), key(uc, SUMMARY)]
    return keys


def _has_materialization(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> bool:
    return bool(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset_key), limit=1).records)


def day_is_open(uc: UseCase, day: dt.date, now: dt.datetime) -> bool:
    """Whether the day has not yet ended in the use case's zone."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zoneinfo.ZoneInfo(uc.timezone))
    return now < end


def judged(uc: UseCase, day: dt.date, rows: int, now: dt.datetime) -> bool:
    """A day is judged (drift, performance) once it has ended, or earlier once it holds the
    use case's open_day_min_rows: an open day's partial rows would read as drift."""
    if not day_is_open(uc, day, now):
        return True
    least = uc.monitoring.open_day_min_rows
    return least is not None and rows >= least


def day_chains(instance: dg.DagsterInstance, uc: UseCase, dbt_models: Sequence[dg.AssetKey],
               days: Sequence[dt.date], rows: dict[dt.date, int] | None = None,
               now: dt.datetime | None = None) -> dict[dt.date, list[dg.AssetKey]]:
    """chain_for_day for each requested day, from what the instance holds. Three queries, only
    on a tick that requests something, so a quiet tick stays a folder listing."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = rows or {}
    champion = _has_materialization(instance, key(uc, CHAMPION))
    training_set = _has_materialization(instance, key(uc, TRAINING_SET))
    if uc.labels is None:  # labels in the landing rows: the raw load of this very run carries them
        labelled = set(days)
    else:
        wanted = {d.isoformat() for d in days}
        labelled = {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key(uc, LABELS))
                    if p in wanted}
    return {d: chain_for_day(uc, dbt_models, champion=champion, training_set=training_set, labelled=d in labelled,
                             judged=judged(uc, d, rows.get(d, 0), now))
            for d in days}


def label_chains(instance: dg.DagsterInstance, uc: UseCase, dbt_models: Sequence[dg.AssetKey], days: Sequence[dt.date],
                 now: dt.datetime | None = None) -> dict[dt.date, list[dg.AssetKey]]:
    """label_chain for each requested day: scored days (and a champion) get their performance.
    A day whose raw rows have not loaded yet gets its labels only: its dbt models would read a
    raw table that may not exist yet (a fresh instance whose label and landing folders both hold
    files: the two sensors' first runs start together). The landing run of that day builds the
    models, and the automation sensor rebuilds them if the labels land after."""
    now = now or dt.datetime.now(dt.timezone.utc)
    scored = set()
    if _has_materialization(instance, key(uc, CHAMPION)):
        scored = {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key(uc, BATCH_PREDICTIONS))}
    loaded = {dt.date.fromisoformat(p) for p in instance.get_materialized_partitions(key(uc, RAW))}
    return {d: label_chain(uc, dbt_models if d in loaded else (), scored=d in scored,
                           judged=not day_is_open(uc, d, now)) for d in days}


def run_groups(chains: dict[dt.date, list[dg.AssetKey]]) -> list[tuple[list[dt.date], list[dg.AssetKey]]]:
    """The requested days as few runs as possible: each stretch of consecutive days that need
    the same steps is one run (one partition range)."""
    groups: list[tuple[list[dt.date], list[dg.AssetKey]]] = []
    for first, last in contiguous_ranges(list(chains)):
        day = first
        while day <= last:
            if groups and groups[-1][1] == chains[day] and groups[-1][0][-1] == day - dt.timedelta(days=1):
                groups[-1][0].append(day)
            else:
                groups.append(([day], chains[day]))
            day += dt.timedelta(days=1)
    return groups


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
                selection: Callable[[list[dt.date], dict[dt.date, int]], dict[dt.date, list[dg.AssetKey]]] | None = None
                ) -> dg.SensorResult:
    """One tick of a folder watcher: plan with watch.plan_landing, drop days already loaded from
    the same file versions, request the rest as few runs as possible (run_groups), say in the
    log what and why. Run keys start with `run_key_prefix` (default: the asset's name).
    `selection`, given the requested days and their rows in the files read, returns the assets
    each day needs (default: `asset_key` alone)."""
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

            con = duckdb.connect()
        return landing.file_days(con, f.path, uc.timestamp_column, uc.timezone)

    try:
        plan = plan_landing(scan.files, cursor, dt.datetime.now(dt.timezone.utc), settle_seconds, days_of,
                            uc.first_day, last_day, max_reads=int(os.environ.get(FILES_PER_TICK_ENV)
                                                                  or DEFAULT_FILES_PER_TICK),
                            budget_s=READ_BUDGET_S)
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
    if plan.deferred:
        context.log.info(f"{plan.deferred} more new or changed file(s) wait for the next tick (at most "
                         f"{os.environ.get(FILES_PER_TICK_ENV) or DEFAULT_FILES_PER_TICK} files or "
                         f"{READ_BUDGET_S:.0f}s of reading per tick)")
    name = asset_key.to_user_string()
    days = sorted(plan.days)
    chains = selection(days, plan.rows) if selection and days else {d: [asset_key] for d in days}
    requests = []
    for group, selected in run_groups(chains):
        first, last = group[0], group[-1]
        span = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
        # One day: a plain partition run; several: a partition range, as a single-run backfill.
        requests.append(dg.RunRequest(
            run_key=plan.run_key(run_key_prefix or name, group),
            partition_key=first.isoformat() if first == last else None,
            asset_selection=selected,
            tags={"mlops/trigger": trigger, "mlops/use_case": uc.name, "mlops/days": span,
                  # a run whose worker died is launched again, once (dagster.yaml run_retries)
                  "dagster/max_retries": str(EVENT_RUN_RETRIES),
                  **(range_tags(first, last) if first != last else {})}))
        context.log.info(f"requesting one run for {span} ({len(group)} day(s)): "
                         f"{', '.join(k.to_user_string() for k in selected)}")
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(plan.cursor, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason(
            f"{len(scan.files)} file(s) in {folder}, none new or changed"
            + (f"; skipped: {'; '.join(plan.skipped)}" if plan.skipped else "")))


def build_landing_sensor(uc: UseCase, dbt_models: Sequence[dg.AssetKey] = ()) -> dg.SensorDefinition:
    """`dbt_models`: the keys of the use case's dbt models (chain/build.py passes them);
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
        description=f"Watches {uc.landing.path()} ({uc.landing.pattern}) and launches one run for the days the "
                    f"new or changed files of a tick hold: {uc.name}/raw, the dbt models, then batch predictions, "
                    "the drift report, the performance report and the monitoring summary as far as a champion, a "
                    "training set and the days' labels exist (an open day is not judged until it ends).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return folder_tick(context, uc, uc.landing.path(), uc.landing.pattern, uc.landing.settle_seconds,
                           key(uc, RAW), "landing", run_key_prefix=uc.name,
                           selection=lambda days, rows: day_chains(context.instance, uc, dbt_models, days, rows))

    return landing_sensor
