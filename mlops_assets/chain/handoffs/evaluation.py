"""model_evaluation/<uc>: the candidate's verdict against the champion, read by the promotion."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_assets.chain.handoffs.common import _require, _values

# model_evaluation/<uc> (written by chain/evaluation.py through evaluation_metadata)
EVALUATED_VERSION = "candidate_version"
EVALUATED_AGAINST = "champion_version"  # "none" without a champion
EVALUATION_COMPARISON = "comparison"
EVALUATION_HOLDOUT = ("holdout_roc_auc", "holdout_log_loss")



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
