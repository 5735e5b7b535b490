"""The three task types a use case may declare, each with its metrics, its trivial baseline, its
target check, its gates on the primary metric and the shape of its serving answer.

- ``binary``: a 0/1 target; the prediction is the probability of class 1 (today's behaviour, the
  metrics of metrics.py).
- ``multiclass``: any set of labels; the prediction is a class-probability matrix with its labels
  (``ClassProbabilities``).
- ``regression``: a numeric target; the prediction is a number per row.

Pure numpy and pandas: no scikit-learn, no Dagster, no MLflow, so the code location may import it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from mlops_assets.evaluation import metrics as binary_metrics
from mlops_assets.evaluation.gates import (BEATS_BASELINE, LABELS, MINIMUM_QUALITY, NO_REGRESSION,
                                           NO_SLICE_REGRESSION, GateResult)

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASK_NAMES = (BINARY, MULTICLASS, REGRESSION)
EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] before a log, as in metrics.log_loss

RECALL_PREFIX = "recall_"


class ClassProbabilities(NamedTuple):
    """A multiclass prediction: one row per example, one column per label of ``classes``."""
    probabilities: np.ndarray
    classes: tuple


@dataclass(frozen=True)
class Task:
    """What a task type judges a model by. ``directions``: +1 when higher is better, -1 when
    lower is better (per-class recalls, whose names depend on the labels, are +1)."""
    name: str
    primary_metric: str
    directions: Mapping[str, int]
    metrics: Callable[[Any, Any], dict[str, float]] = field(repr=False)
    baseline: Callable[[Any, int], Any] = field(repr=False)
    baseline_name: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.direction(self.primary_metric) > 0

    @property
    def classification(self) -> bool:
        return self.name != REGRESSION

    def direction(self, metric: str) -> int:
        if metric.startswith(RECALL_PREFIX):
            return 1
        return self.directions[metric]

    def label(self, metric: str | None = None) -> str:
        metric = metric or self.primary_metric
        if metric.startswith(RECALL_PREFIX):
            return f"recall of class {metric[len(RECALL_PREFIX):]}"
        return LABELS.get(metric, metric)


# ---------------------------------------------------------------------------------------- metrics


def binary_task_metrics(y_true, y_prob) -> dict[str, float]:
    """Today's holdout metrics (metrics.classification_metrics); booleans count as 0/1."""
    return binary_metrics.classification_metrics(np.asarray(y_true).astype(float), y_prob)


def multiclass_metrics(y_true, prediction: ClassProbabilities) -> dict[str, float]:
    """Accuracy, macro-F1, log loss and the recall of each class present in ``y_true``.

    Macro-F1 averages over the labels that occur in ``y_true`` or among the predicted labels (a
    class neither present nor predicted has no F1 to count). A true label the model has no column
    for gets probability 0 (clipped), as a model that never heard of it deserves."""
    labels, proba, classes = _check_multiclass(y_true, prediction)
    index = {c: i for i, c in enumerate(classes)}
    predicted = [classes[i] for i in np.argmax(proba, axis=1)]
    truth_p = np.array([proba[row, index[y]] if y in index else 0.0 for row, y in enumerate(labels)])
    out = {
        "accuracy": float(np.mean([p == y for p, y in zip(predicted, labels)])),
        "macro_f1": _macro_f1(labels, predicted),
        "log_loss": float(-np.mean(np.log(np.clip(truth_p, EPS, 1 - EPS)))),
        "classes": float(len(set(labels))),
        "rows": float(len(labels)),
    }
    for label, recall in per_class_recall(labels, predicted).items():
        out[recall_key(label)] = recall
    return out


def per_class_recall(y_true, y_pred) -> dict[Any, float]:
    """Share of each true class's rows predicted as that class, for the classes in ``y_true``."""
    labels, t, p = _codes(y_true, y_pred)
    present = np.bincount(t, minlength=len(labels))
    hits = np.bincount(t[t == p], minlength=len(labels))
    return {label: float(hits[i] / present[i]) for i, label in enumerate(labels) if present[i]}


def recall_key(label) -> str:
    """A metric name for a class's recall that MLflow accepts (letters, digits, ``_.-``)."""
    return RECALL_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "_", str(label))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """MAE, RMSE, R² and, when no true value is zero, MAPE (a fraction: 0.1 = 10 %).

    R² of a constant ``y_true`` is 1.0 for an exact prediction and 0.0 otherwise (scikit-learn's
    convention), rather than a division by zero."""
    y_true, y_pred = _check_regression(y_true, y_pred)
    err = y_pred - y_true
    ss_res = float(np.sum(err ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    out = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": math.sqrt(ss_res / len(y_true)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0),
        "rows": float(len(y_true)),
    }
    if not (y_true == 0).any():
        out["mape"] = float(np.mean(np.abs(err) / np.abs(y_true)))
    return out


def _macro_f1(y_true, y_pred) -> float:
    labels, t, p = _codes(y_true, y_pred)
    tp = np.bincount(t[t == p], minlength=len(labels))
    fp = np.bincount(p[t != p], minlength=len(labels))
    fn = np.bincount(t[t != p], minlength=len(labels))
    # Every label here occurs in y_true or y_pred, so no denominator is zero.
    return float(np.mean(2 * tp / (2 * tp + fp + fn)))


def _codes(y_true, y_pred) -> tuple[list, np.ndarray, np.ndarray]:
    """The labels of both sides in order, and each side as integer codes into them."""
    y_true, y_pred = [_plain(y) for y in y_true], [_plain(y) for y in y_pred]
    labels = _ordered(set(y_true) | set(y_pred))
    index = {label: i for i, label in enumerate(labels)}
    return (labels, np.array([index[y] for y in y_true], dtype=int),
            np.array([index[y] for y in y_pred], dtype=int))


def _check_multiclass(y_true, prediction) -> tuple[list, np.ndarray, tuple]:
    if not isinstance(prediction, tuple) or len(prediction) != 2:
        raise ValueError("a multiclass prediction is (class-probability matrix, class labels)")
    proba = np.asarray(prediction[0], dtype=float)
    classes = tuple(_plain(c) for c in prediction[1])
    labels = [_plain(y) for y in np.asarray(y_true, dtype=object).ravel()]
    if not labels:
        raise ValueError("no rows to score")
    if proba.ndim != 2 or proba.shape != (len(labels), len(classes)):
        raise ValueError(f"class probabilities have shape {proba.shape}; expected ({len(labels)} rows, "
                         f"{len(classes)} classes {list(classes)})")
    if np.isnan(proba).any() or (proba < 0).any() or (proba > 1).any():
        raise ValueError("class probabilities must be in [0, 1] without NaN")
    sums = proba.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        bad = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"class probabilities of row {bad} sum to {sums[bad]:.6f}, not 1")
    return labels, proba, classes


def _check_regression(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but the prediction has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no rows to score")
    if not np.isfinite(y_true).all() or not np.isfinite(y_pred).all():
        raise ValueError("regression targets and predictions must be finite numbers (no NaN, no infinity)")
    return y_true, y_pred


def _plain(value):
    """numpy scalars as Python values, so labels compare, hash and print the same everywhere."""
    return value.item() if isinstance(value, np.generic) else value


def _ordered(labels) -> list:
    try:
        return sorted(labels)
    except TypeError:  # mixed label types: a stable order all the same
        return sorted(labels, key=repr)


# -------------------------------------------------------------------------------------- baselines


def class_prior_binary(y_train, n: int) -> np.ndarray:
    """The training positive rate for every row (what a prior-only DummyClassifier predicts)."""
    y = np.asarray(y_train, dtype=float).ravel()
    if y.size == 0:
        raise ValueError("no training rows for the baseline")
    return np.full(n, float(y.mean()))


def class_prior_multiclass(y_train, n: int) -> ClassProbabilities:
    """Every row gets the training class frequencies."""
    labels = [_plain(y) for y in np.asarray(y_train, dtype=object).ravel()]
    if not labels:
        raise ValueError("no training rows for the baseline")
    classes = tuple(_ordered(set(labels)))
    prior = np.array([labels.count(c) for c in classes], dtype=float) / len(labels)
    return ClassProbabilities(np.tile(prior, (n, 1)), classes)


def constant_mean(y_train, n: int) -> np.ndarray:
    return np.full(n, float(_training_values(y_train).mean()))


def constant_median(y_train, n: int) -> np.ndarray:
    return np.full(n, float(np.median(_training_values(y_train))))


def _training_values(y_train) -> np.ndarray:
    y = np.asarray(y_train, dtype=float).ravel()
    if y.size == 0:
        raise ValueError("no training rows for the baseline")
    return y


# ------------------------------------------------------------------------------------------ tasks

_DIRECTIONS = {
    BINARY: {"roc_auc": 1, "f1": 1, "log_loss": -1, "brier": -1, "ece": -1},
    MULTICLASS: {"accuracy": 1, "macro_f1": 1, "log_loss": -1},
    REGRESSION: {"mae": -1, "rmse": -1, "r2": 1, "mape": -1},
}
# Scale-free primary metrics, so one default threshold suits every use case of the task.
_DEFAULT_PRIMARY = {BINARY: "roc_auc", MULTICLASS: "macro_f1", REGRESSION: "r2"}
_METRICS = {BINARY: binary_task_metrics, MULTICLASS: multiclass_metrics, REGRESSION: regression_metrics}
REGRESSION_BASELINES = {"mean": constant_mean, "median": constant_median}


def get_task(name: str, primary_metric: str | None = None, baseline: str | None = None) -> Task:
    """The task ``name`` judged by ``primary_metric`` (default: ROC AUC, macro-F1, R²).

    A regression's baseline is the constant that is best for its primary metric: the training
    median when the primary is MAE or MAPE (absolute errors), the mean otherwise; ``baseline``
    ('mean' or 'median') overrides it. Classification baselines are the class prior."""
    if name not in TASK_NAMES:
        raise ValueError(f"unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    directions = _DIRECTIONS[name]
    primary = primary_metric or _DEFAULT_PRIMARY[name]
    if primary not in directions:
        raise ValueError(f"{name} task has no metric {primary!r} to judge models by; expected one of {list(directions)}")
    if name == REGRESSION:
        choice = baseline or ("median" if primary in ("mae", "mape") else "mean")
        if choice not in REGRESSION_BASELINES:
            raise ValueError(f"regression baseline {choice!r}; expected 'mean' or 'median'")
        fn, baseline_name = REGRESSION_BASELINES[choice], f"training {choice}"
    else:
        if baseline not in (None, "class_prior"):
            raise ValueError(f"{name} baseline {baseline!r}; a classification baseline is 'class_prior'")
        fn, baseline_name = (class_prior_binary if name == BINARY else class_prior_multiclass), "class prior"
    return Task(name, primary, directions, _METRICS[name], fn, baseline_name)


def task_of(uc) -> Task:
    """The task of a use case (config.UseCase), judged by its primary metric with its baseline."""
    bounds = uc.primary
    return get_task(uc.task, bounds.metric, bounds.baseline)


def as_task(task: Task | str) -> Task:
    return task if isinstance(task, Task) else get_task(task)


def task_metrics(task: Task | str, y_true, prediction) -> dict[str, float]:
    """The task's holdout metrics; ``prediction``: probability of class 1 (binary),
    ``ClassProbabilities`` or (matrix, labels) (multiclass), numbers (regression)."""
    return as_task(task).metrics(y_true, prediction)


def baseline_prediction(task: Task | str, y_train, n: int):
    """The trivial baseline's prediction for ``n`` rows, learnt from the training target only."""
    return as_task(task).baseline(y_train, n)


def primary_value(task: Task, metrics: Mapping[str, float]) -> float:
    """The primary metric from a metrics dict; a clear error when it is undefined there (MAPE
    with a zero target)."""
    if task.primary_metric not in metrics:
        why = " (undefined: a true value is zero)" if task.primary_metric == "mape" else ""
        raise ValueError(f"no {task.label()} among the metrics {sorted(metrics)}{why}")
    return float(metrics[task.primary_metric])


# ------------------------------------------------------------------------------------- prediction


def predict(task: Task | str, model, X):
    """A fitted model's prediction in the task's form. Classifiers without ``predict_proba`` (a
    rule, say) give hard predictions: probability 1 for the predicted label."""
    task = as_task(task)
    if task.name == REGRESSION:
        return np.asarray(model.predict(X), dtype=float).ravel()
    classes = getattr(model, "classes_", None)
    if task.name == BINARY:
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X), dtype=float)
            column = [_plain(c) for c in classes].index(1) if classes is not None else 1
            return proba[:, column]
        return np.asarray(model.predict(X), dtype=float).ravel()
    if hasattr(model, "predict_proba") and classes is not None:
        return ClassProbabilities(np.asarray(model.predict_proba(X), dtype=float), tuple(_plain(c) for c in classes))
    predicted = [_plain(p) for p in np.asarray(model.predict(X), dtype=object).ravel()]
    labels = tuple(_plain(c) for c in classes) if classes is not None else tuple(_ordered(set(predicted)))
    index = {c: i for i, c in enumerate(labels)}
    proba = np.zeros((len(predicted), len(labels)))
    proba[np.arange(len(predicted)), [index[p] for p in predicted]] = 1.0
    return ClassProbabilities(proba, labels)


def serving_answer(task: Task | str, prediction) -> dict[str, Any]:
    """The per-row part of a /predict answer. Binary keeps today's ``scores`` (probability of
    class 1); multiclass answers the label and the probability of each label; regression the number."""
    task = as_task(task)
    if task.name == BINARY:
        return {"scores": [float(p) for p in np.asarray(prediction, dtype=float).ravel()]}
    if task.name == REGRESSION:
        return {"predictions": [float(p) for p in np.asarray(prediction, dtype=float).ravel()]}
    proba, classes = np.asarray(prediction[0], dtype=float), [_plain(c) for c in prediction[1]]
    return {"predictions": [classes[i] for i in np.argmax(proba, axis=1)], "classes": classes,
            "probabilities": [[float(p) for p in row] for row in proba]}


# --------------------------------------------------------------------------------- target checks


def check_target(task: Task | str, series, column_name: str):
    """The labelled values of ``series`` (missing = not labelled yet) if they fit the task, cast
    (binary: int 0/1, regression: float, multiclass: as given); else a ValueError naming the
    column and a value that does not fit."""
    task = as_task(task)
    values = pd.Series(series).dropna()
    where = f"target column {column_name!r} of the {task.name} task"
    if values.empty:
        raise ValueError(f"{where} has no labelled values")
    if task.name == REGRESSION:
        return _regression_target(values, where)
    if task.name == BINARY:
        return _binary_target(values, where)
    return _multiclass_target(values, where)


def _regression_target(values, where: str):
    if pd.api.types.is_bool_dtype(values) or all(isinstance(v, (bool, np.bool_)) for v in values):
        raise ValueError(f"{where} holds true/false values, e.g. {_plain(values.iloc[0])!r}: that is a binary target")
    if not pd.api.types.is_numeric_dtype(values):
        bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, (int, float, np.number))), None)
        if bad is not None:
            raise ValueError(f"{where} holds non-numeric values, e.g. {_plain(bad)!r}: a regression needs numbers")
    numbers = values.astype(float)  # an object column of plain numbers passes too
    infinite = numbers[~np.isfinite(numbers.to_numpy())]
    if len(infinite):
        raise ValueError(f"{where} holds infinite values, e.g. {_plain(infinite.iloc[0])!r}")
    if numbers.nunique() < 2:
        raise ValueError(f"{where} holds a single value ({_plain(values.iloc[0])!r}) in {len(values)} labelled "
                         "rows: nothing to learn")
    return numbers


def _binary_target(values, where: str):
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(int)
    numeric = pd.api.types.is_numeric_dtype(values)
    bad = values[~values.isin([0, 1])] if numeric else values[[not _is_01(v) for v in values]]
    if len(bad):
        more = "; more than two classes is a multiclass task" if values.nunique() > 2 else ""
        raise ValueError(f"{where} holds {_plain(bad.iloc[0])!r}; a binary target is 0 or 1{more}")
    ints = values.astype(int)
    if ints.nunique() < 2:
        raise ValueError(f"{where} holds a single class ({_plain(ints.iloc[0])!r}) in {len(values)} labelled "
                         "rows; a binary task needs both 0 and 1")
    return ints


def _is_01(value) -> bool:
    return isinstance(value, (bool, int, float, np.number)) and value in (0, 1)


def _multiclass_target(values, where: str):
    if pd.api.types.is_float_dtype(values):
        fractional = values[values != np.floor(values)]
        if len(fractional):
            raise ValueError(f"{where} holds non-integer numbers, e.g. {_plain(fractional.iloc[0])!r}: class labels "
                             "are names or whole numbers (a continuous target is a regression)")
    kinds = {}
    if pd.api.types.is_object_dtype(values):  # only an object column can mix types
        for v in values:
            kinds.setdefault(_label_kind(v), v)
    if len(kinds) > 1:
        examples = ", ".join(f"{_plain(v)!r}" for v in kinds.values())
        raise ValueError(f"{where} mixes label types, e.g. {examples}: use one type for every label")
    if values.nunique() < 2:
        raise ValueError(f"{where} holds a single class ({_plain(values.iloc[0])!r}) in {len(values)} labelled "
                         "rows; a classification needs at least two")
    return values


def _label_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.number)):
        return "number"
    return type(value).__name__


# ------------------------------------------------------------------------------------------ gates


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"


def minimum_quality(task: Task, metrics: Mapping[str, float], bound: float | None) -> GateResult:
    """The primary metric reaches ``bound`` (at least it when higher is better, at most it
    otherwise). No bound: passes, saying so."""
    value, name = primary_value(task, metrics), task.label()
    if bound is None:
        return GateResult(MINIMUM_QUALITY, True, f"{name} {_fmt(value)}; no bound set",
                          {task.primary_metric: value})
    shortfall = max(0.0, (bound - value) * task.direction(task.primary_metric))
    if task.higher_is_better:
        description = (f"{name} {_fmt(value)} < {bound:g}, short by {_fmt(shortfall)}" if shortfall
                       else f"{name} {_fmt(value)} >= {bound:g}")
    else:
        description = (f"{name} {_fmt(value)} > {bound:g}, over by {_fmt(shortfall)}" if shortfall
                       else f"{name} {_fmt(value)} <= {bound:g}")
    return GateResult(MINIMUM_QUALITY, shortfall == 0.0, description,
                      {task.primary_metric: value, "bound": float(bound), "shortfall": shortfall})


def beats_baseline(task: Task, metrics: Mapping[str, float], baseline: Mapping[str, float],
                   min_lift: float) -> GateResult:
    """The primary metric improves on the trivial baseline's by at least ``min_lift`` (an
    improvement: a gain when higher is better, a reduction otherwise)."""
    value, base, name = primary_value(task, metrics), primary_value(task, baseline), task.label()
    lift = (value - base) * task.direction(task.primary_metric)
    shortfall = max(0.0, min_lift - lift)
    description = (f"{name} {_fmt(value)} vs the {task.baseline_name} baseline's {_fmt(base)}: "
                   f"{'lift' if task.higher_is_better else 'reduction'} {lift:+.4f} (needs >= {min_lift:g})"
                   + (f", short by {_fmt(shortfall)}" if shortfall else ""))
    return GateResult(BEATS_BASELINE, shortfall == 0.0, description,
                      {"lift": lift, "min_lift": float(min_lift), "baseline": base, "shortfall": shortfall})


def no_regression(task: Task, candidate: Mapping[str, float], champion: Mapping[str, float] | None,
                  champion_version: str | None, max_drop: float,
                  recent: Mapping[str, Mapping[str, float]] | None = None) -> GateResult:
    """The candidate may lose at most ``max_drop`` of the primary metric against the champion,
    nor against the best of the recent champions (``recent``: version -> metrics on the same
    holdout), so quality cannot slide a tolerance at every promotion. No champion: passes."""
    if champion is None:
        return GateResult(NO_REGRESSION, True, "no champion yet: the first model is judged on absolute quality alone",
                          {"has_champion": 0.0})
    d, name = task.direction(task.primary_metric), task.label()
    references = {**(recent or {}), champion_version: champion}
    best_version = max(references, key=lambda v: primary_value(task, references[v]) * d)
    value, theirs, best = (primary_value(task, candidate), primary_value(task, champion),
                           primary_value(task, references[best_version]))
    excess = max(0.0, (theirs - value) * d - max_drop)
    slide_excess = max(0.0, (best - value) * d - max_drop)
    allowed = f"{'-' if d > 0 else '+'}{max_drop:g}"
    if excess:
        description = (f"{name} {_fmt(value)} vs champion v{champion_version} {_fmt(theirs)}: {value - theirs:+.4f}, "
                       f"beyond the allowed {allowed} by {_fmt(excess)}")
    elif slide_excess:
        description = (f"{name} {_fmt(value)} vs v{best_version} {_fmt(best)}, the best of the last "
                       f"{len(references)} champions on this holdout: {value - best:+.4f}, beyond the allowed "
                       f"{allowed} by {_fmt(slide_excess)} (quality may not slide a tolerance at every promotion)")
    else:
        description = (f"{name} vs champion v{champion_version}: {value - theirs:+.4f} (allowed {allowed}); vs the "
                       f"best of the last {len(references)} champion(s), v{best_version}: {value - best:+.4f}")
    return GateResult(NO_REGRESSION, not (excess or slide_excess), description, {
        "has_champion": 1.0, "delta": value - theirs, "excess": excess, "max_drop": float(max_drop),
        "champions_compared": float(len(references)), "best_recent": best, "slide_excess": slide_excess})


def slice_metrics(task: Task, y_true, prediction, groups, min_rows: int) -> list[dict]:
    """The primary metric per value of a slice column. Slices below ``min_rows`` or where the
    metric is undefined (one class for ROC AUC, one value for R², a zero for MAPE) get None."""
    groups = np.asarray(groups).astype(str)
    rows = []
    for value in sorted(set(groups)):
        mask = groups == value
        n = int(mask.sum())
        score = None
        if n >= min_rows:
            part = (ClassProbabilities(np.asarray(prediction[0])[mask], prediction[1]) if task.name == MULTICLASS
                    else np.asarray(prediction)[mask])
            y = np.asarray(y_true)[mask]
            if _defined(task, y):
                score = round(primary_value(task, task.metrics(y, part)), 5)
        rows.append({"value": value, "rows": n, "metric": task.primary_metric, "score": score})
    return rows


def _defined(task: Task, y) -> bool:
    if task.primary_metric == "roc_auc" or task.primary_metric == "r2":
        return len(np.unique(y)) > 1
    if task.primary_metric == "mape":
        return not (np.asarray(y, dtype=float) == 0).any()
    return True


def compare_slices(candidate: Mapping[str, list[dict]], champion: Mapping[str, list[dict]] | None) -> list[dict]:
    """Per slice (column, value) both models' primary metric on the same holdout rows (rows from
    ``slice_metrics``); ``delta`` (candidate - champion) None when either is undefined."""
    theirs = {(col, r["value"]): r["score"] for col, rows in (champion or {}).items() for r in rows}
    out = []
    for col, rows in candidate.items():
        for r in rows:
            other = theirs.get((col, r["value"]))
            comparable = r["score"] is not None and other is not None
            out.append({"column": col, "value": r["value"], "rows": r["rows"], "candidate": r["score"],
                        "champion": other, "delta": round(r["score"] - other, 5) if comparable else None})
    return out


def no_slice_regression(task: Task, slices: list[dict], has_champion: bool, max_drop: float) -> GateResult:
    """No comparable slice may lose more than ``max_drop`` of the primary metric vs the champion
    (rows from ``compare_slices``). No champion: passes."""
    if not has_champion:
        return GateResult(NO_SLICE_REGRESSION, True, "no champion yet: no slice to compare", {"has_champion": 0.0})
    d, name = task.direction(task.primary_metric), task.label()
    allowed = f"{'-' if d > 0 else '+'}{max_drop:g}"
    compared = [s for s in slices if s["delta"] is not None]
    loss = {id(s): -s["delta"] * d for s in compared}
    regressed = sorted((s for s in compared if loss[id(s)] > max_drop), key=lambda s: -loss[id(s)])
    worst = max(compared, key=lambda s: loss[id(s)], default=None)
    if regressed:
        description = "; ".join(f"{s['column']}={s['value']} ({s['rows']} rows): {name} {s['delta']:+.4f}, beyond "
                                f"the allowed {allowed} by {_fmt(loss[id(s)] - max_drop)}" for s in regressed)
    elif worst is None:
        description = f"no slice has enough holdout rows with a defined {name}: nothing to compare"
    else:
        description = (f"{len(compared)} slice(s) compared; worst {worst['column']}={worst['value']} "
                       f"{name} {worst['delta']:+.4f} (allowed {allowed})")
    return GateResult(NO_SLICE_REGRESSION, not regressed, description, {
        "has_champion": 1.0, "slices_compared": float(len(compared)), "slices_regressed": float(len(regressed)),
        "worst_slice_delta": float(worst["delta"]) if worst else 0.0,
        "worst_excess": max(0.0, loss[id(worst)] - max_drop) if worst else 0.0, "max_drop": float(max_drop)})


def primary_metric_gates(task: Task, candidate: Mapping[str, float], baseline: Mapping[str, float],
                         champion: Mapping[str, float] | None, champion_version: str | None, *,
                         bound: float | None, min_lift: float, max_drop: float,
                         slices: list[dict] | None = None, max_slice_drop: float | None = None,
                         recent: Mapping[str, Mapping[str, float]] | None = None) -> list[GateResult]:
    """The four quality gates on the task's primary metric, in gates.ALL_GATES order: minimum
    quality, lift over the baseline, no regression vs the champion, none per slice either."""
    return [minimum_quality(task, candidate, bound), beats_baseline(task, candidate, baseline, min_lift),
            no_regression(task, candidate, champion, champion_version, max_drop, recent),
            no_slice_regression(task, slices or [], champion is not None,
                                max_drop if max_slice_drop is None else max_slice_drop)]
