"""Prediction drift per task type: how the model's answers on a day compare with its answers on
the training set's holdout rows.

- binary: the distribution of the probability of class 1 (a number);
- regression: the distribution of the predicted values (a number);
- multiclass: the distribution of the predicted classes (a category).

Pure module (no Dagster); Evidently runs inside drift.series_drift.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.evaluation import tasks
from mlops_assets.monitoring.drift import ColumnDrift, series_drift
from mlops_assets.monitoring.performance import (CLASS_PROBABILITIES, PREDICTED_CLASS, SCORE, class_label,
                                                 class_probabilities)

PREDICTION = "prediction"  # the drifted series' name in the report


def predicted_classes(prediction) -> list[str]:
    """The label with the highest probability in each row of a multiclass prediction
    (``ClassProbabilities`` or (matrix, labels)), as text (performance.class_label)."""
    proba, classes = np.asarray(prediction[0], dtype=float), list(prediction[1])
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"class probabilities of shape {proba.shape} do not match {len(classes)} classes")
    return [class_label(classes[i]) for i in np.argmax(proba, axis=1)]


def served_classes(served: pd.DataFrame) -> list[str]:
    """The predicted class of each served row: its `predicted_class`, else the most probable label
    of its `class_probabilities`."""
    if PREDICTED_CLASS in served.columns and served[PREDICTED_CLASS].notna().all():
        return [class_label(c) for c in served[PREDICTED_CLASS]]
    if CLASS_PROBABILITIES in served.columns:
        return predicted_classes(class_probabilities(served))
    raise ValueError(f"a multiclass prediction needs {PREDICTED_CLASS} or {CLASS_PROBABILITIES}; "
                     f"the rows have {list(served.columns)}")


def class_shares(classes) -> dict[str, float]:
    """Share of each class among ``classes`` (labels as text), largest first."""
    counts = pd.Series(list(classes), dtype=object).value_counts(normalize=True)
    return {str(k): round(float(v), 5) for k, v in counts.items()}


def prediction_drift(task: tasks.Task | str, reference_prediction, served: pd.DataFrame,
                     stattest: str | None = None) -> ColumnDrift:
    """Drift of the day's served predictions (`served`: the predictions table's rows) against the
    same model's prediction of the reference rows (evaluation.tasks.predict's form: numbers for
    binary and regression, class probabilities for multiclass)."""
    task = tasks.as_task(task)
    if served.empty:
        raise ValueError("no served predictions to compare")
    if task.name == tasks.MULTICLASS:
        return series_drift(predicted_classes(reference_prediction), served_classes(served), name=PREDICTION,
                            categorical=True, stattest=stattest)
    reference = np.asarray(reference_prediction, dtype=float).ravel()
    return series_drift(reference, served[SCORE].astype(float), name=SCORE if task.name == tasks.BINARY else PREDICTION,
                        categorical=False, stattest=stattest)
