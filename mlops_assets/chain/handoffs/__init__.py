"""Values one asset hands to another: the metadata key names, spelled once, and typed readers.

One module per domain of the chain (ingest, labels, training, evaluation, scoring, monitoring).
A writer builds its metadata with these constants; a reader goes through the functions there,
which fail with a message naming the asset and the missing key instead of silently reading a
default. A rename therefore breaks a test rather than switching a trigger off. This package
lists every name, so `handoffs.X` reads the same whichever domain X belongs to.
"""
from mlops_assets.chain.handoffs.common import (  # noqa: F401
    HandoffError,
)
from mlops_assets.chain.handoffs.ingest import (  # noqa: F401
    RAW_LABELLED_ROWS, RAW_ROWS_PER_DAY, RAW_FILE_FINGERPRINTS, RAW_FILES, ROW_COUNT, read_labelled_rows,
    ROWS_PER_DAY_SCHEMA_COLUMNS, FILES_SCHEMA_COLUMNS, rows_per_day_table, files_table, raw_metadata,
    read_rows_per_day, read_labelled_per_day, read_file_fingerprints,
)
from mlops_assets.chain.handoffs.labels import (  # noqa: F401
    LABEL_COVERAGE, LABEL_COVERAGE_PER_DAY, LABELS_CHANGED, LABELS_WITHOUT_ROWS, LABELLED_ROWS_PER_DAY,
    labelled_rows_metadata, read_labelled_rows_any, coverage_metadata,
)
from mlops_assets.chain.handoffs.training import (  # noqa: F401
    TRAIN_START, TRAIN_END, HOLDOUT_START, HOLDOUT_END, TRAINING_DIGEST, TRAINING_TABLE, CANDIDATE_MODEL_NAME,
    CANDIDATE_VERSION, CANDIDATE_MODEL_URI, CANDIDATE_RUN_ID, CANDIDATE_EXPERIMENT_ID, TrainingWindow,
    read_training_window, training_window_metadata, CandidateModel, candidate_metadata, read_candidate,
)
from mlops_assets.chain.handoffs.evaluation import (  # noqa: F401
    EVALUATED_VERSION, EVALUATED_AGAINST, EVALUATION_COMPARISON, EVALUATION_HOLDOUT, Evaluation,
    evaluation_metadata, read_evaluation,
)
from mlops_assets.chain.handoffs.scoring import (  # noqa: F401
    SCORED_MODEL_VERSION, read_scored_version,
)
from mlops_assets.chain.handoffs.monitoring import (  # noqa: F401
    DRIFT_CHECK, RANGE_ROLLUP, DRIFT_SHARE, DRIFT_THRESHOLD, DRIFT_FLAGGED, PREDICTION_DRIFT_SCORE,
    PREDICTION_DRIFTED, DriftVerdict, drift_check_metadata, read_drift_verdict, PERFORMANCE_CHECK,
    PERF_EVALUATED, PERF_PASSED, PERF_COVERAGE, PERF_MODEL_VERSIONS, PERF_ROC_AUC, PERF_HOLDOUT_ROC_AUC,
    PERF_ROC_AUC_DROP, PERF_TOLERANCE, PERF_METRIC, PERF_VALUE, PERF_HOLDOUT_VALUE, PERF_DROP,
    performance_check_metadata, PerformanceVerdict, read_performance_verdict,
)
