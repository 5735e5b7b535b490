"""batch_predictions/<uc>: the model version that scored a day."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_assets.chain.handoffs.common import _require, _values

# batch_predictions/<uc> (written by chain/scoring.py)
SCORED_MODEL_VERSION = "model_version"


def read_scored_version(metadata: Mapping[str, Any], what: str = "a batch scoring") -> str:
    """The registered model version that scored a day's batch predictions."""
    values = _values(metadata)
    _require(values, what, SCORED_MODEL_VERSION)
    return str(values[SCORED_MODEL_VERSION])
