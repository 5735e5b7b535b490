"""raw/<uc>: what a load hands to the landing sensor, the training set and the retrain sensor."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dagster as dg

from mlops_assets.chain.handoffs.common import HandoffError, _require, _table, _values

# raw/<uc> (written by chain/raw.py through raw_metadata)
RAW_LABELLED_ROWS = "labelled_rows"
RAW_ROWS_PER_DAY = "rows_per_day"  # a table (day, rows, labelled_rows); read by read_rows_per_day
RAW_FILE_FINGERPRINTS = "file_fingerprints"  # read by the landing sensor
RAW_FILES = "files"  # a table (file, size_bytes, modified_utc), for people
ROW_COUNT = "dagster/row_count"


def read_labelled_rows(metadata: Mapping[str, Any], partition_key: str | None, what: str = "a raw load") -> int:
    """Labelled rows a raw materialization loaded for its own day. A range run records the same
    metadata on every day of the range, so the per-day figure comes from rows_per_day."""
    values = _values(metadata)
    if RAW_ROWS_PER_DAY in values and partition_key:
        return read_labelled_per_day(values, what).get(partition_key, 0)
    _require(values, what, RAW_LABELLED_ROWS)
    return int(values[RAW_LABELLED_ROWS])


ROWS_PER_DAY_SCHEMA_COLUMNS = (("day", "string", "UTC day (partition key)"),
                               ("rows", "int", "rows loaded for that day"),
                               ("labelled_rows", "int", "of which the target is not empty"))
FILES_SCHEMA_COLUMNS = (("file", "string", "landing file name"), ("size_bytes", "int", "size when read"),
                        ("modified_utc", "string", "modification time when read"))


def rows_per_day_table(rows_per_day: Mapping[str, int], labelled_per_day: Mapping[str, int]):
    return _table(ROWS_PER_DAY_SCHEMA_COLUMNS, [
        {"day": d, "rows": int(n), "labelled_rows": int(labelled_per_day.get(d, 0))}
        for d, n in sorted(rows_per_day.items())])


def files_table(fingerprints) -> Any:
    """One row per file version read, from its fingerprint "path@size:mtime_ns" (ingest.landing.fingerprint)."""
    rows = []
    for fp in fingerprints:
        path, _, version = str(fp).rpartition("@")
        size, _, mtime_ns = version.partition(":")
        if not path or not size.isdigit() or not mtime_ns.isdigit():
            raise HandoffError(f"file fingerprint {fp!r} is not 'path@size:mtime_ns'")
        modified = dt.datetime.fromtimestamp(int(mtime_ns) / 1e9, dt.timezone.utc)
        rows.append({"file": path.rsplit("/", 1)[-1], "size_bytes": int(size),
                     "modified_utc": modified.isoformat(timespec="seconds")})
    return _table(FILES_SCHEMA_COLUMNS, rows)


def raw_metadata(rows_per_day: Mapping[str, int], labelled_per_day: Mapping[str, int],
                 fingerprints) -> dict[str, Any]:
    """The raw asset's hand-off metadata: what the readers below and the sensors read."""
    return {
        RAW_LABELLED_ROWS: int(sum(labelled_per_day.values())),
        RAW_ROWS_PER_DAY: rows_per_day_table(rows_per_day, labelled_per_day),
        # Read by the landing sensor, so that it does not request a load that already happened.
        RAW_FILE_FINGERPRINTS: dg.MetadataValue.json(list(fingerprints)),
        RAW_FILES: files_table(fingerprints),
    }


def _per_day(metadata: Mapping[str, Any], column: str, what: str) -> dict[str, int]:
    values = _values(metadata)
    _require(values, what, RAW_ROWS_PER_DAY)
    per_day = values[RAW_ROWS_PER_DAY]
    if isinstance(per_day, Mapping):  # the JSON mapping older loads wrote (every row was labelled then)
        return {str(k): int(v) for k, v in per_day.items()}
    records = getattr(per_day, "records", None)
    if records is None:
        raise HandoffError(f"{what}: {RAW_ROWS_PER_DAY} is {type(per_day).__name__}, "
                           "expected a table of (day, rows, labelled_rows)")
    try:
        return {str(r.data["day"]): int(r.data[column]) for r in records}
    except KeyError as exc:
        raise HandoffError(f"{what}: {RAW_ROWS_PER_DAY} rows lack the column {exc}; "
                           "expected (day, rows, labelled_rows)") from exc


def read_rows_per_day(metadata: Mapping[str, Any], what: str = "a raw load") -> dict[str, int]:
    """{day: rows} of a raw materialization."""
    return _per_day(metadata, "rows", what)


def read_labelled_per_day(metadata: Mapping[str, Any], what: str = "a raw load") -> dict[str, int]:
    """{day: rows whose target is not empty} of a raw materialization."""
    return _per_day(metadata, "labelled_rows", what)


def read_file_fingerprints(metadata: Mapping[str, Any], what: str = "a raw load") -> frozenset[str]:
    values = _values(metadata)
    _require(values, what, RAW_FILE_FINGERPRINTS)
    fps = values[RAW_FILE_FINGERPRINTS]
    if not isinstance(fps, list | tuple):
        raise HandoffError(f"{what}: {RAW_FILE_FINGERPRINTS} is {type(fps).__name__}, expected a list")
    return frozenset(map(str, fps))
