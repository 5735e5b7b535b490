"""The main job: for each use case, load and build features for every day its landing zone
holds (one run over the range), then train, evaluate and promote, then score and check drift
for the latest days. Each step is a Dagster run on the current instance, visible in the UI."""
import datetime as dt
import time


def data_days(uc) -> list[dt.date]:
    """Days that the landing files of a use case hold rows for."""
    import duckdb

    from mlops_assets.ingest import landing

    days: set[dt.date] = set()
    with landing.in_utc(duckdb.connect()) as con:
        for f in landing.list_landing_files(uc.landing.path(), uc.landing.pattern):
            days |= set(landing.file_days(con, f.path, uc.timestamp_column))
    return sorted(days)


def execute(defs, instance, job: str, selection=None, log=print, **kwargs) -> bool:
    started = time.perf_counter()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=selection, raise_on_error=False, **kwargs)
    what = kwargs.get("partition_key") or " ".join(v for k, v in (kwargs.get("tags") or {}).items() if "range" in k)
    log(f"  {job} {what}: {'succeeded' if result.success else 'FAILED'} in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id})")
    for event in result.all_events:
        if event.is_step_failure:
            log(f"    step {event.step_key} failed: {event.event_specific_data.error.message.strip()}")
    return result.success


def run_main_job(monitor_days: int = 1, only: list[str] | None = None, log=print) -> bool:
    """The main job, per use case: load and build features for every day the landing zone
    holds (one run over the range), train-evaluate-promote, then score and check drift for the
    latest `monitor_days` days."""
    import dagster as dg

    from mlops_assets.definitions import build_defs
    from mlops_assets.defs.training.sensors import training_chain
    from mlops_assets.lineage import BATCH_PREDICTIONS, DRIFT
    from mlops_assets.use_cases.config import load_use_cases

    defs, instance, ok = build_defs(), dg.DagsterInstance.get(), True
    for uc in load_use_cases():
        if only is not None and uc.name not in only:
            continue
        try:
            days = data_days(uc)
        except ValueError as exc:  # a landing file that cannot be read: name it, go on with the others
            log(f"{uc.name}: {exc}")
            ok = False
            continue
        if not days:
            log(f"{uc.name}: no data in {uc.landing.path()}; skipped")
            continue
        log(f"{uc.name}: {len(days)} day(s) of data, {days[0]}..{days[-1]}")
        daily = defs.resolve_job_def(f"{uc.name}_daily")
        per_day = set(daily.asset_layer.selected_asset_keys)
        monitoring = {k for k in per_day if k.path[-1] in (DRIFT, BATCH_PREDICTIONS)}
        building = list(per_day - monitoring)
        # Each step needs the one before; a failed use case does not stop the others.
        uc_ok = execute(defs, instance, f"{uc.name}_daily", building, log, tags={
            "dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat()})
        uc_ok = uc_ok and execute(defs, instance, f"{uc.name}_training", training_chain(uc), log)
        for day in days[-monitor_days:] if uc_ok else []:
            uc_ok &= execute(defs, instance, f"{uc.name}_daily", list(monitoring), log, partition_key=day.isoformat())
        ok &= uc_ok
    return ok
