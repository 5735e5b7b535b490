"""labels/<use case>: label files (outcomes that arrive after their rows) in labels.<use case>,
one partition per day of the labelled events."""
import datetime as dt

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.ingest import labels, landing
from mlops_assets.chain.lineage import LABELS, RAW, key
from mlops_assets.chain.partitions import daily_partitions, local_window
from mlops_assets.chain.resources import DuckDBWarehouse
from mlops_assets.use_cases.config import UseCase

READABLE_CHECK = "label_files_readable"


def labels_key(uc: UseCase) -> dg.AssetKey:
    return dg.AssetKey([uc.name, LABELS])


def label_metadata(load: labels.LabelLoad, day: str | None) -> dict:
    """What a load says in the UI: numbers (plotted over partitions) first, then the details."""
    coverage = load.coverage.get(day) if day else None
    if coverage is None and load.coverage:  # a range: the mean of its days
        coverage = sum(load.coverage.values()) / len(load.coverage)
    return {
        handoffs.ROW_COUNT: load.rows,
        handoffs.LABEL_COVERAGE: float(coverage or 0.0),
        handoffs.LABELS_CHANGED: load.changed,
        "labels_new": load.new,
        "labels_removed": load.removed,
        "labels_conflicting_between_files": load.conflicting,
        "labels_duplicated_in_files": load.duplicates,
        handoffs.LABELS_WITHOUT_ROWS: load.without_rows,
        "labels_without_rows_examples": dg.MetadataValue.json(list(load.without_rows_examples)),
        "labels_overriding_raw_target": load.overriding_raw,
        handoffs.LABEL_COVERAGE_PER_DAY: dg.MetadataValue.json(load.coverage),
        **handoffs.labelled_rows_metadata(load.labelled_rows),
        "labels_per_day": dg.MetadataValue.json(load.labels_per_day),
        "files": dg.MetadataValue.json([p.rsplit("/", 1)[-1] for p in load.files]),
        handoffs.RAW_FILE_FINGERPRINTS: dg.MetadataValue.json(list(load.fingerprints)),
        "labels_outside_partitions": sum(load.outside.values()),
        "files_with_labels_outside": dg.MetadataValue.json({p.rsplit("/", 1)[-1]: n for p, n in load.outside.items()}),
        "labels_kept_from_unreadable_files": sum(load.kept_rows.values()),
        "warnings": dg.MetadataValue.json(list(load.notes)),
    }


def build_labels_asset(uc: UseCase) -> dg.AssetsDefinition:
    """The use case's label files by event day (only for a use case with a `labels:` section)."""
    if uc.labels is None:
        raise ValueError(f"use case {uc.name} declares no `labels:` section")
    @dg.asset(
        key=labels_key(uc),
        # A run that loads a day's rows and its labels (a range run of the demo, "materialize
        # all") loads raw first: the labels are counted against raw (labels without a row,
        # labels overriding the file's target, coverage), and counted before raw they said that
        # every label had no row. Only the order: a label is stored whether or not its row is in
        # raw, and the sensors' label runs do not select raw. In a run selecting both, a failed
        # raw step skips the labels too; the next label run loads them.
        deps=[key(uc, RAW)],
        group_name=uc.name,
        kinds={"duckdb", "python"},
        partitions_def=daily_partitions(uc),
        pool=WAREHOUSE_POOL,  # writes the warehouse (mlops_assets/instance/concurrency.py)
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Labels of {uc.labels.path()} ({uc.labels.pattern}) in {labels.labels_table(uc)}, "
                    f"partitioned by the day of the labelled event (`{uc.timestamp_column}`). A partition is rebuilt "
                    "from every label file holding events of that day; when files disagree the newest wins, and "
                    "labels whose row never arrived are counted. The dbt features take a row's label from here "
                    "before the landing file's target.",
        metadata={"label_folder": dg.MetadataValue.path(str(uc.labels.path())),
                  "table": labels.labels_table(uc)},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("ingest", uc.name),
        check_specs=[dg.AssetCheckSpec(
            READABLE_CHECK, asset=labels_key(uc),
            description="Every label file parses, has plain column names and readable timestamps, and stays inside "
                        "the folder. One that does not is left out until fixed; labels of its last good version "
                        "are kept meanwhile.")],
    )
    def labels_asset(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        start, end = local_window(context)
        last_key = context.assets_def.partitions_def.get_last_partition_key()
        with warehouse.connect() as con:
            try:
                load = labels.load_labels_window(con, uc, start, end, log=context.log.info,
                                                 last_day=dt.date.fromisoformat(last_key) if last_key else None)
            except landing.LandingFileError as exc:
                raise dg.Failure(description=str(exc), metadata={"error": str(exc)}) from exc
        if load.changed or load.conflicting:
            context.log.warning(f"{load.changed} label(s) replaced a different earlier label; {load.conflicting} "
                                "row(s) were labelled differently by two files (the newest file's label kept)")
        if load.without_rows:
            context.log.warning(f"{load.without_rows} label(s) have no row in {uc.raw_table} (kept, counted), e.g. "
                                f"{', '.join(load.without_rows_examples)}")
        for problem in load.unreadable.values():
            context.log.error(f"not loadable until fixed: {problem}")
        for path, n in load.outside.items():
            context.log.warning(f"{path}: {n} label(s) dated before {uc.first_day} or after the last partition "
                                f"{last_key}; no partition takes them")
        for note in load.notes:
            context.log.warning(note)
        days = context.partition_key_range
        day = days.start if days.start == days.end else None
        return dg.MaterializeResult(
            metadata=label_metadata(load, day),
            check_results=[dg.AssetCheckResult(
                check_name=READABLE_CHECK, passed=not load.unreadable, severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(load.unreadable.values()) or "all label files readable",
                metadata={"unreadable_files": dg.MetadataValue.json(sorted(load.unreadable))})])

    return labels_asset
