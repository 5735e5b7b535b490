"""training_set/<uc> and candidate_model/<uc>: the data window and the registered candidate."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_assets.chain.handoffs.common import HandoffError, _require, _values

# training_set/<uc>
TRAIN_START, TRAIN_END = "train_start", "train_end"
HOLDOUT_START, HOLDOUT_END = "holdout_start", "holdout_end"
TRAINING_DIGEST = "digest"
TRAINING_TABLE = "table"


# candidate_model/<uc> (written by chain/training.py through candidate_metadata)
CANDIDATE_MODEL_NAME = "registered_model"
CANDIDATE_VERSION = "registered_version"
CANDIDATE_MODEL_URI = "model_uri"
CANDIDATE_RUN_ID = "mlflow_run_id"
CANDIDATE_EXPERIMENT_ID = "mlflow_experiment_id"


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


def training_window_metadata(w: TrainingWindow) -> dict[str, str]:
    """The training set's hand-off metadata, read by read_training_window."""
    return {TRAIN_START: str(w.train_start), TRAIN_END: str(w.train_end), HOLDOUT_START: str(w.holdout_start),
            HOLDOUT_END: str(w.holdout_end), TRAINING_DIGEST: w.digest}


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
