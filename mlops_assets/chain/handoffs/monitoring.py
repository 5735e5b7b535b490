"""drift_report/<uc> and performance_report/<uc> with their checks: the verdicts the summary,
the alerts and the retrain sensor read."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_assets.chain.handoffs.common import HandoffError, _require, _values

# drift_report/<uc> and its check
DRIFT_CHECK = "drift_below_threshold"
# Metadata flag of a range run's roll-up check result (partitions.day_results): each day's own
# evaluation carries that day's verdict; alerts and triggers read those.
RANGE_ROLLUP = "range_rollup"
DRIFT_SHARE = "drift_share"
DRIFT_THRESHOLD = "threshold"
DRIFT_FLAGGED = "drift_flagged"
PREDICTION_DRIFT_SCORE = "prediction_drift_score"  # drift of the model's scores (drift report)
PREDICTION_DRIFTED = "prediction_drifted"



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


# performance_report/<uc> and its check (written by chain/performance.py)
PERFORMANCE_CHECK = "performance_within_tolerance"
PERF_EVALUATED = "evaluated"  # False: too few labels yet; the check then passes without judging
PERF_PASSED = "within_tolerance"  # the check's verdict, also on the materialization (for the summary)
PERF_COVERAGE = "label_coverage"
PERF_MODEL_VERSIONS = "model_versions"  # comma-separated versions that served the day
PERF_ROC_AUC = "roc_auc"
PERF_HOLDOUT_ROC_AUC = "holdout_roc_auc"
PERF_ROC_AUC_DROP = "roc_auc_drop"
PERF_TOLERANCE = "tolerance"
# A multiclass or regression use case is judged on its task's primary metric: its name, the
# day's figure, the holdout figure and the worst drop (a rise, for an error) under these names.
# A binary use case keeps the ROC AUC names above.
PERF_METRIC = "primary_metric"
PERF_VALUE = "primary_value"
PERF_HOLDOUT_VALUE = "holdout_primary_value"
PERF_DROP = "primary_drop"


def performance_check_metadata(*, evaluated: bool, coverage: float, roc_auc: float | None,
                               holdout_roc_auc: float | None, drop: float | None, tolerance: float,
                               metric: str | None = None, value: float | None = None,
                               holdout: float | None = None) -> dict[str, float | str]:
    """The performance check's metadata, read by read_performance_verdict (unknown figures left
    out). ``metric``: the primary metric of a non-binary use case, whose figures are ``value``,
    ``holdout`` and ``drop``; None: a binary use case's ROC AUC."""
    out: dict[str, float | str] = {PERF_EVALUATED: float(bool(evaluated)), PERF_COVERAGE: float(coverage),
                                   PERF_TOLERANCE: float(tolerance)}
    named = ((PERF_ROC_AUC, roc_auc), (PERF_HOLDOUT_ROC_AUC, holdout_roc_auc), (PERF_ROC_AUC_DROP, drop))
    if metric is not None:
        out[PERF_METRIC] = metric
        named = ((PERF_VALUE, value), (PERF_HOLDOUT_VALUE, holdout), (PERF_DROP, drop))
    for name, figure in named:
        if figure is not None:
            out[name] = float(figure)
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
    # the primary metric and its figures (binary: roc_auc and the ROC AUC figures above)
    metric: str = "roc_auc"
    value: float | None = None
    holdout: float | None = None
    drop: float | None = None


def read_performance_verdict(day: str, passed: bool | None, metadata: Mapping[str, Any] | None,
                             what: str = "the performance check") -> PerformanceVerdict:
    if passed is None or metadata is None:
        raise HandoffError(f"{what} has no result for {day}: re-materialize that day's performance report")
    values = _values(metadata)
    _require(values, f"{what} for {day}", PERF_EVALUATED, PERF_COVERAGE, PERF_TOLERANCE)
    opt = {k: (float(values[k]) if k in values else None)
           for k in (PERF_ROC_AUC, PERF_HOLDOUT_ROC_AUC, PERF_ROC_AUC_DROP, PERF_VALUE, PERF_HOLDOUT_VALUE, PERF_DROP)}
    metric = str(values.get(PERF_METRIC) or PERF_ROC_AUC)
    generic = (opt[PERF_VALUE], opt[PERF_HOLDOUT_VALUE], opt[PERF_DROP]) if PERF_METRIC in values else (
        opt[PERF_ROC_AUC], opt[PERF_HOLDOUT_ROC_AUC], opt[PERF_ROC_AUC_DROP])
    return PerformanceVerdict(day=day, evaluated=bool(values[PERF_EVALUATED]), passed=bool(passed),
                              coverage=float(values[PERF_COVERAGE]), roc_auc=opt[PERF_ROC_AUC],
                              holdout_roc_auc=opt[PERF_HOLDOUT_ROC_AUC], roc_auc_drop=opt[PERF_ROC_AUC_DROP],
                              tolerance=float(values[PERF_TOLERANCE]), metric=metric, value=generic[0],
                              holdout=generic[1], drop=generic[2])
