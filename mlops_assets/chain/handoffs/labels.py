"""labels/<uc> and raw/<uc>: label coverage and the labelled rows per day."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from mlops_assets.chain.handoffs.common import HandoffError, _require, _values
from mlops_assets.chain.handoffs.ingest import read_labelled_rows

# labels/<uc> and raw/<uc>: labels that arrive after their rows (written by chain/labels.py
# and chain/raw.py; coverage = labelled rows / rows of the day, numeric so the UI plots it)
LABEL_COVERAGE = "label_coverage"
LABEL_COVERAGE_PER_DAY = "label_coverage_per_day"
LABELS_CHANGED = "labels_changed"  # labels that replaced a different earlier label for the same row
LABELS_WITHOUT_ROWS = "labels_without_rows"  # labels whose row never arrived in raw
# the label sensor reads labels/<uc>'s file versions as the landing sensor reads raw's:
# RAW_FILE_FINGERPRINTS through read_file_fingerprints
# {day: raw rows with a label from either source} as counted when the asset ran; written by raw
# and labels, read by the retrain sensor's "new data" trigger (read_labelled_rows_any)
LABELLED_ROWS_PER_DAY = "labelled_rows_per_day"


def labelled_rows_metadata(labelled_per_day: Mapping[str, int]) -> dict[str, Any]:
    return {LABELLED_ROWS_PER_DAY: dg.MetadataValue.json({str(d): int(n) for d, n in sorted(labelled_per_day.items())})}


def read_labelled_rows_any(metadata: Mapping[str, Any], partition_key: str, what: str,
                           raw_fallback: bool = False) -> int:
    """Rows of `partition_key` with a label (label file or the row's own target) as counted by a
    raw or labels materialization. With `raw_fallback`, a raw load older than this figure gives
    its own labelled rows instead (labels carried in landing files)."""
    values = _values(metadata)
    if LABELLED_ROWS_PER_DAY not in values and raw_fallback:
        return read_labelled_rows(values, partition_key, what)
    _require(values, what, LABELLED_ROWS_PER_DAY)
    per_day = values[LABELLED_ROWS_PER_DAY]
    if not isinstance(per_day, Mapping):
        raise HandoffError(f"{what}: {LABELLED_ROWS_PER_DAY} is {type(per_day).__name__}, expected {{day: rows}}")
    return int(per_day.get(partition_key, 0))


def coverage_metadata(coverage_per_day: Mapping[str, float], rows_per_day: Mapping[str, int]) -> dict[str, Any]:
    """Label coverage as asset metadata: one number for the partition (a float the UI plots over
    days; for a range, labelled rows / rows over all its days) and the per-day figures."""
    rows = sum(rows_per_day.get(d, 0) for d in coverage_per_day)
    labelled = sum(c * rows_per_day.get(d, 0) for d, c in coverage_per_day.items())
    return {LABEL_COVERAGE: round(labelled / rows, 6) if rows else 0.0,
            LABEL_COVERAGE_PER_DAY: dg.MetadataValue.json(dict(coverage_per_day))}
