"""Routing rows to a segment's model: a use case with a segment_column has one champion per
segment (the alias `champion_<segment>`) and the global champion for every other row (a segment
too small for a model of its own, a value never seen in training, a missing value).

Rows are grouped by their segment value once and each model predicts its group in one call, so
scoring a day costs one prediction per segment present, not one per row.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.evaluation import tasks


def segment_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """The segment value of each row as the registry names it (str; a missing value: None)."""
    values = frame[column]
    return values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))


def route(frame: pd.DataFrame, column: str, segments: Mapping[str, Any]) -> dict[str | None, pd.Index]:
    """The rows (index labels) each model scores: a segment key of ``segments`` for its rows,
    None for the rows the global model scores."""
    values = segment_values(frame, column)
    own = values.where(values.isin(list(segments)), None)
    groups: dict[str | None, pd.Index] = {}
    for value, rows in own.groupby(own.fillna("\0global"), sort=True).groups.items():
        groups[None if value == "\0global" else value] = pd.Index(rows)
    return groups


def predict_routed(task, frame: pd.DataFrame, features: list[str], column: str, global_model: tuple[str, Any],
                   segment_models: Mapping[str, tuple[str, Any]], columns_of) -> tuple[dict[str, pd.Series], pd.Series]:
    """Each row's prediction by its segment's model, else the global one: the stored columns
    (``columns_of(task, prediction, index)``, serving.predictions.prediction_values) in the
    frame's row order, and the version that scored each row. Models: (version, object)."""
    parts: list[dict[str, pd.Series]] = []
    versions = pd.Series("", index=frame.index, dtype="object")
    X = frame[features]
    for key, rows in route(frame, column, segment_models).items():
        version, model = global_model if key is None else segment_models[key]
        parts.append(columns_of(task, tasks.predict(task, model, X.loc[rows]), rows))
        versions.loc[rows] = str(version)
    names = list(parts[0]) if parts else list(columns_of(task, _nothing(task), frame.index))
    out = {n: pd.concat([p[n] for p in parts]).reindex(frame.index) if parts else pd.Series(dtype="float64")
           for n in names}
    return out, versions


def _nothing(task):
    return (tasks.ClassProbabilities(np.zeros((0, 0)), ()) if tasks.as_task(task).name == tasks.MULTICLASS
            else np.zeros(0))


def answer_routed(task, frame: pd.DataFrame, column: str, global_model: tuple[str, Any],
                  segment_models: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    """The per-row part of a /predict answer (tasks.serving_answer) with each row scored by its
    segment's model, plus ``model_versions``: the version that scored each row. A multiclass
    answer's classes are the union of the models' classes, sorted (a class a model does not
    know: probability 0)."""
    task = tasks.as_task(task)
    if frame.empty:
        return {**tasks.serving_answer(task, tasks.predict(task, global_model[1], frame)), "model_versions": []}
    per_row: dict[str, list] = {}
    classes: list = []
    answers = []
    versions: list = [None] * len(frame)
    position = pd.Series(np.arange(len(frame)), index=frame.index)
    for key, rows in route(frame, column, segment_models).items():
        version, model = global_model if key is None else segment_models[key]
        answer = tasks.serving_answer(task, tasks.predict(task, model, frame.loc[rows]))
        at = position.loc[rows].to_numpy()
        answers.append((at, answer))
        for i in at:
            versions[i] = str(version)
        classes += [c for c in answer.get("classes", []) if c not in classes]
    classes = sorted(classes, key=str)  # as scikit-learn orders one model's classes
    for at, answer in answers:
        for name, values in answer.items():
            if name == "classes":
                continue
            if name == "probabilities":  # onto the union of classes
                values = [[dict(zip(answer["classes"], row)).get(c, 0.0) for c in classes] for row in values]
            column_values = per_row.setdefault(name, [None] * len(frame))
            for i, value in zip(at, values):
                column_values[i] = value
    if task.name == tasks.MULTICLASS:
        per_row["classes"] = classes
    return {**per_row, "model_versions": versions}
