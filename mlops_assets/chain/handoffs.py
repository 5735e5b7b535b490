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

import dagster as dg

# raw/<uc> (written by chain/raw.py through raw_metadata)
RAW_LABELLED_ROWS = "labelled_rows"
RAW_ROWS_PER_DAY = "rows_per_day"  # a table (day, rows, labelled_rows); read by read_rows_per_day
RAW_FILE_FINGERPRINTS = "file_fingerprints"  # read by the landing sensor
RAW_FILES = "files"  # a table (file, size_bytes, modified_utc), for people
ROW_COUNT = "dagster/row_count"

# batch_predictions/<uc> (written by chain/scoring.py)
SCORED_MODEL_VERSION = "model_version"

# training_set/<uc>
TRAIN_START, TRAIN_END = "train_start", "train_end"
HOLDOUT_START, HOLDOUT_END = "holdout_start", "holdout_end"
TRAINING_DIGEST = "digest"
TRAINING_TABLE = "table"

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
    if RAW_ROWS_PER_DAY in values and partition_key:
        return read_labelled_per_day(values, what).get(partition_key, 0)
    _require(values, what, RAW_LABELLED_ROWS)
    return int(values[RAW_LABELLED_ROWS])


ROWS_PER_DAY_SCHEMA_COLUMNS = (("day", "string", "UTC day (partition key)"),
                               ("rows", "int", "rows loaded for that day"),
                               ("labelled_rows", "int", "of which the target is not empty"))
FILES_SCHEMA_COLUMNS = (("file", "string", "landing file name"), ("size_bytes", "int", "size when read"),
                        ("modified_utc", "string", "modification time when read"))


def _table(columns, rows: list[dict[str, Any]]):
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in rows], schema=schema)


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


def read_scored_version(metadata: Mapping[str, Any], what: str = "a batch scoring") -> str:
    """The registered model version that scored a day's batch predictions."""
    values = _values(metadata)
    _require(values, what, SCORED_MODEL_VERSION)
    return str(values[SCORED_MODEL_VERSION])


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


# candidate_model/<uc> (written by chain/training.py through candidate_metadata)
CANDIDATE_MODEL_NAME = "registered_model"
CANDIDATE_VERSION = "registered_version"
CANDIDATE_MODEL_URI = "model_uri"
CANDIDATE_RUN_ID = "mlflow_run_id"
CANDIDATE_EXPERIMENT_ID = "mlflow_experiment_id"

# model_evaluation/<uc> (written by chain/evaluation.py through evaluation_metadata)
EVALUATED_VERSION = "candidate_version"
EVALUATED_AGAINST = "champion_version"  # "none" without a champion
EVALUATION_COMPARISON = "comparison"
EVALUATION_HOLDOUT = ("holdout_roc_auc", "holdout_log_loss")


@dataclass(frozen=True)
class CandidateModel:
    registered_model: str
    version: str
    model_uri: str
    run_id: str
    experiment_id: str


def candidate_metadata(c: CandidateModel) -> dict[str, str]:
    return {CANDIDATE_MODEL_NAME: c.registered_model, CANDIDATE_VERSION: str(c.version),
            CANDIDATE_MODEL_URI: c.model_uri, CANDIDATE_RUN_ID: c.run_id, CANDIDATE_EXPERIMENT_ID: c.experiment_id}


def read_candidate(metadata: Mapping[str, Any], what: str = "the candidate model") -> CandidateModel:
    values = _values(metadata)
    _require(values, what, CANDIDATE_MODEL_NAME, CANDIDATE_VERSION, CANDIDATE_MODEL_URI, CANDIDATE_RUN_ID,
             CANDIDATE_EXPERIMENT_ID)
    return CandidateModel(str(values[CANDIDATE_MODEL_NAME]), str(values[CANDIDATE_VERSION]),
                          str(values[CANDIDATE_MODEL_URI]), str(values[CANDIDATE_RUN_ID]),
                          str(values[CANDIDATE_EXPERIMENT_ID]))


@dataclass(frozen=True)
class Evaluation:
    candidate_version: str
    evaluated_against: str | None  # the champion version it was compared with, None: first model
    comparison: str
    holdout_roc_auc: float
    holdout_log_loss: float


def evaluation_metadata(e: Evaluation) -> dict[str, Any]:
    return {EVALUATED_VERSION: e.candidate_version,
            # "none" rather than None: metadata values must be concrete.
            EVALUATED_AGAINST: e.evaluated_against or "none", EVALUATION_COMPARISON: e.comparison,
            EVALUATION_HOLDOUT[0]: round(e.holdout_roc_auc, 5), EVALUATION_HOLDOUT[1]: round(e.holdout_log_loss, 5)}


def read_evaluation(metadata: Mapping[str, Any], what: str = "the model evaluation") -> Evaluation:
    values = _values(metadata)
    _require(values, what, EVALUATED_VERSION, EVALUATED_AGAINST, EVALUATION_COMPARISON, *EVALUATION_HOLDOUT)
    against = str(values[EVALUATED_AGAINST])
    return Evaluation(str(values[EVALUATED_VERSION]), None if against == "none" else against,
                      str(values[EVALUATION_COMPARISON]), float(values[EVALUATION_HOLDOUT[0]]),
                      float(values[EVALUATION_HOLDOUT[1]]))


def training_window_metadata(w: TrainingWindow) -> dict[str, str]:
    """The training set's hand-off metadata, read by read_training_window."""
    return {TRAIN_START: str(w.train_start), TRAIN_END: str(w.train_end), HOLDOUT_START: str(w.holdout_start),
            HOLDOUT_END: str(w.holdout_end), TRAINING_DIGEST: w.digest}


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
