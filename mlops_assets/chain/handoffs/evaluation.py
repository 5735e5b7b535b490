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
EVALUATION_HOLDOUT = ("holdout_roc_auc", "holdout_log_loss")  # binary tasks
EVALUATION_PRIMARY = "primary_metric"  # the metric the gates judged by (every task)


@dataclass(frozen=True)
class Evaluation:
    candidate_version: str
    evaluated_against: str | None  # the champion version it was compared with, None: first model
    comparison: str
    holdout_roc_auc: float | None  # binary only
    holdout_log_loss: float | None
    primary_metric: str | None = None
    holdout_primary: float | None = None  # the primary metric's holdout value

    def quality(self) -> dict[str, float]:
        """The holdout figures recorded on a promoted version."""
        out = {}
        if self.holdout_roc_auc is not None:
            out.update(roc_auc=self.holdout_roc_auc, log_loss=self.holdout_log_loss)
        if self.primary_metric and self.holdout_primary is not None:
            out.setdefault(self.primary_metric, self.holdout_primary)
        return out


def evaluation_metadata(e: Evaluation) -> dict[str, Any]:
    out = {EVALUATED_VERSION: e.candidate_version,
           # "none" rather than None: metadata values must be concrete.
           EVALUATED_AGAINST: e.evaluated_against or "none", EVALUATION_COMPARISON: e.comparison}
    if e.holdout_roc_auc is not None:
        out.update({EVALUATION_HOLDOUT[0]: round(e.holdout_roc_auc, 5), EVALUATION_HOLDOUT[1]: round(e.holdout_log_loss, 5)})
    if e.primary_metric and e.holdout_primary is not None:
        out[EVALUATION_PRIMARY] = e.primary_metric
        out.setdefault(f"holdout_{e.primary_metric}", round(e.holdout_primary, 5))
    return out


def read_evaluation(metadata: Mapping[str, Any], what: str = "the model evaluation") -> Evaluation:
    values = _values(metadata)
    primary = values.get(EVALUATION_PRIMARY)
    # Binary evaluations carry ROC AUC and log loss; others their primary metric.
    _require(values, what, EVALUATED_VERSION, EVALUATED_AGAINST, EVALUATION_COMPARISON,
             *((f"holdout_{primary}",) if primary else EVALUATION_HOLDOUT))
    against = str(values[EVALUATED_AGAINST])
    roc_auc, log_loss = (values.get(k) for k in EVALUATION_HOLDOUT)
    return Evaluation(str(values[EVALUATED_VERSION]), None if against == "none" else against,
                      str(values[EVALUATION_COMPARISON]), None if roc_auc is None else float(roc_auc),
                      None if log_loss is None else float(log_loss), None if primary is None else str(primary),
                      None if primary is None else float(values[f"holdout_{primary}"]))
