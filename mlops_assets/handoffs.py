"""Values one asset hands to another: the metadata key names, spelled once, and typed readers.

A writer builds its metadata with these constants; a reader goes through the functions here,
which fail with a message naming the asset and the missing key instead of silently reading a
default. A rename therefore breaks a test rather than switching a trigger off.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# raw/<uc> (written by defs/ingest/assets.py)
RAW_LABELLED_ROWS = "labelled_rows"
RAW_ROWS_PER_DAY = "rows_per_day"
ROW_COUNT = "dagster/row_count"

# training_set/<uc>
TRAIN_START, TRAIN_END = "train_start", "train_end"
HOLDOUT_START, HOLDOUT_END = "holdout_start", "holdout_end"
TRAINING_DIGEST = "digest"
TRAINING_TABLE = "table"

# drift_report/<uc> and its check
DRIFT_CHECK = "drift_below_threshold"
DRIFT_SHARE = "drift_share"
DRIFT_THRESHOLD = "threshold"
DRIFT_FLAGGED = "drift_flagged"
PREDICTION_DRIFT_SCORE = "prediction_drift_score"  # drift of the model's scores (drift report)
PREDICTION_DRIFTED = "prediction_drifted"


class HandoffError(RuntimeError):
    """An upstream value a reader needs is missing or malformed."""


def _values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    # Accept both raw event metadata (MetadataValue objects) and plain dicts.
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _require(values: Mapping[str, Any], what: str, *keys: str) -> None:
    missing = [k for k in keys if k not in values]
    if missing:
        raise HandoffError(f"{what} lacks metadata {missing} (has {sorted(values)}); "
                           "materialize it again with the current code")


@dataclass(frozen=True)
class TrainingWindow:
    train_start: dt.date
    train_end: dt.date
    holdout_start: dt.date
    holdout_end: dt.date  # the newest day of data the training set holds
    digest: str


def read_training_window(metadata: Mapping[str, Any], what: str = "the training set") -> TrainingWindow:
    values = _values(metadata)
    _require(values, what, TRAIN_START, TRAIN_END, HOLDOUT_START, HOLDOUT_END, TRAINING_DIGEST)
    try:
        days = {k: dt.date.fromisoformat(str(values[k])) for k in (TRAIN_START, TRAIN_END, HOLDOUT_START, HOLDOUT_END)}
    except ValueError as exc:
        raise HandoffError(f"{what}: a window date is not YYYY-MM-DD: {exc}") from exc
    return TrainingWindow(**days, digest=str(values[TRAINING_DIGEST]))


def read_labelled_rows(metadata: Mapping[str, Any], partition_key: str | None, what: str = "a raw load") -> int:
    """Labelled rows a raw materialization loaded for its own day. A range run records the same
    metadata on every day of the range, so the per-day figure comes from rows_per_day."""
    values = _values(metadata)
    per_day = values.get(RAW_ROWS_PER_DAY)
    if per_day is not None and partition_key:
        if not isinstance(per_day, Mapping):
            raise HandoffError(f"{what}: {RAW_ROWS_PER_DAY} is {type(per_day).__name__}, expected a mapping")
        return int(per_day.get(partition_key, 0))
    _require(values, what, RAW_LABELLED_ROWS)
    return int(values[RAW_LABELLED_ROWS])


@dataclass(frozen=True)
class DriftVerdict:
    day: str
    passed: bool
    drift_share: float
    threshold: float


def drift_check_metadata(drift_share: float, threshold: float) -> dict[str, float]:
    """The drift check's metadata, written by the drift report and read by read_drift_verdict."""
    return {DRIFT_SHARE: float(drift_share), DRIFT_THRESHOLD: float(threshold)}


def read_drift_verdict(day: str, passed: bool | None, metadata: Mapping[str, Any] | None,
                       what: str = "the drift check") -> DriftVerdict:
    if passed is None or metadata is None:
        raise HandoffError(f"{what} has no result for {day}: the drift report of that day ran without "
                           "its check (re-materialize the day's drift report)")
    values = _values(metadata)
    _require(values, f"{what} for {day}", DRIFT_SHARE, DRIFT_THRESHOLD)
    return DriftVerdict(day=day, passed=bool(passed), drift_share=float(values[DRIFT_SHARE]),
                        threshold=float(values[DRIFT_THRESHOLD]))


# performance_report/<uc> and its check (written by defs/monitoring/performance.py)
PERFORMANCE_CHECK = "performance_within_tolerance"
PERF_EVALUATED = "evaluated"  # False: too few labels yet; the check then passes without judging
PERF_PASSED = "within_tolerance"  # the check's verdict, also on the materialization (for the summary)
PERF_COVERAGE = "label_coverage"
PERF_MODEL_VERSIONS = "model_versions"  # comma-separated versions that served the day
PERF_ROC_AUC = "roc_auc"
PERF_HOLDOUT_ROC_AUC = "holdout_roc_auc"
PERF_ROC_AUC_DROP = "roc_auc_drop"
PERF_TOLERANCE = "tolerance"


def performance_check_metadata(*, evaluated: bool, coverage: float, roc_auc: float | None,
                               holdout_roc_auc: float | None, drop: float | None, tolerance: float) -> dict[str, float]:
    """The performance check's metadata, read by read_performance_verdict (unknown figures left out)."""
    out = {PERF_EVALUATED: float(bool(evaluated)), PERF_COVERAGE: float(coverage), PERF_TOLERANCE: float(tolerance)}
    for name, value in ((PERF_ROC_AUC, roc_auc), (PERF_HOLDOUT_ROC_AUC, holdout_roc_auc), (PERF_ROC_AUC_DROP, drop)):
        if value is not None:
            out[name] = float(value)
    return out


@dataclass(frozen=True)
class PerformanceVerdict:
    day: str
    evaluated: bool
    passed: bool
    coverage: float
    roc_auc: float | None
    holdout_roc_auc: float | None
    roc_auc_drop: float | None
    tolerance: float


def read_performance_verdict(day: str, passed: bool | None, metadata: Mapping[str, Any] | None,
                             what: str = "the performance check") -> PerformanceVerdict:
    if passed is None or metadata is None:
        raise HandoffError(f"{what} has no result for {day}: re-materialize that day's performance report")
    values = _values(metadata)
    _require(values, f"{what} for {day}", PERF_EVALUATED, PERF_COVERAGE, PERF_TOLERANCE)
    opt = {k: (float(values[k]) if k in values else None) for k in (PERF_ROC_AUC, PERF_HOLDOUT_ROC_AUC, PERF_ROC_AUC_DROP)}
    return PerformanceVerdict(day=day, evaluated=bool(values[PERF_EVALUATED]), passed=bool(passed),
                              coverage=float(values[PERF_COVERAGE]), roc_auc=opt[PERF_ROC_AUC],
                              holdout_roc_auc=opt[PERF_HOLDOUT_ROC_AUC], roc_auc_drop=opt[PERF_ROC_AUC_DROP],
                              tolerance=float(values[PERF_TOLERANCE]))
