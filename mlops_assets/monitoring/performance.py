"""Real performance of the predictions served for one day, once their labels arrived.

Pure module (no Dagster): the join of served predictions with outcomes, the label-coverage
rule, the figures of each task type (binary: Evidently's ClassificationPreset cross-checked with
the project's own maths, plus calibration; multiclass and regression: evaluation.tasks'
metrics cross-checked with Evidently's classification and regression presets), and the
tolerance rule on the task's primary metric against the model version's holdout figure.
Evidently is imported inside the functions that run it: code-location loading must not pay for it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.evaluation import metrics as m
from mlops_assets.evaluation import tasks
from mlops_assets.monitoring.drift import write_report

LABEL = "label"
SCORE = "score"
VERSION = "model_version"
# A multiclass prediction's columns besides `score` (the predicted class's probability).
PREDICTED_CLASS = "predicted_class"
CLASS_PROBABILITIES = "class_probabilities"  # JSON object: label -> probability
THRESHOLD = 0.5  # the decision threshold of precision, recall and F1 (as the evaluation's F1)

# Evidently's figures and the names the project records them under.
_EVIDENTLY = {"RocAuc": "roc_auc", "Precision": "precision", "Recall": "recall", "F1Score": "f1",
              "LogLoss": "log_loss", "Accuracy": "accuracy"}


class PerformanceInputError(ValueError):
    """The predictions or outcomes of a day cannot be joined or scored."""


@dataclass(frozen=True)
class Coverage:
    scored_rows: int
    labelled_rows: int
    coverage: float  # labelled / scored, 0 when nothing was scored
    enough: bool
    reason: str


def label_coverage(scored_rows: int, labelled_rows: int, min_coverage: float, min_rows: int) -> Coverage:
    """Whether a day has enough labels for its performance to mean something: both a share of
    the scored rows and an absolute number (a 100% covered day of 3 rows says nothing)."""
    if scored_rows < 0 or labelled_rows < 0 or labelled_rows > scored_rows:
        raise PerformanceInputError(f"labelled rows ({labelled_rows}) must be between 0 and the scored rows ({scored_rows})")
    cov = labelled_rows / scored_rows if scored_rows else 0.0
    short = []
    if cov < min_coverage:
        short.append(f"label coverage {cov:.1%} < {min_coverage:.0%}")
    if labelled_rows < min_rows:
        short.append(f"{labelled_rows} labelled rows < {min_rows}")
    reason = "; ".join(short) or f"label coverage {cov:.1%} ({labelled_rows}/{scored_rows} rows)"
    return Coverage(scored_rows, labelled_rows, cov, not short, reason)


def join_outcomes(predictions: pd.DataFrame, outcomes: pd.DataFrame, entity: str, timestamp: str,
                  label: str = LABEL, task: tasks.Task | str = tasks.BINARY) -> pd.DataFrame:
    """Served predictions with their label (NaN where none arrived yet), one row per prediction.

    `outcomes` holds (entity, timestamp, label); the same row labelled twice with the same value
    counts once, with two different values it is an error (the label source must decide).
    Labels must fit the task: 0/1 (binary), numbers (regression), class labels (multiclass, kept
    as text in `class_label`'s form, as the keys of `class_probabilities`)."""
    task = tasks.as_task(task)
    need_p = [entity, timestamp, SCORE, VERSION]
    if task.name == tasks.MULTICLASS:
        need_p.append(CLASS_PROBABILITIES)
    need_o = [entity, timestamp, label]
    for name, frame, need in (("predictions", predictions, need_p), ("outcomes", outcomes, need_o)):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise PerformanceInputError(f"{name} lack column(s) {missing}; they have {list(frame.columns)}")
    out = outcomes[need_o].rename(columns={label: LABEL})
    out = out.assign(**{LABEL: _task_labels(task, out[LABEL])}).drop_duplicates()
    clash = out[out.duplicated([entity, timestamp], keep=False)]
    if len(clash):
        raise PerformanceInputError(f"{clash[[entity, timestamp]].drop_duplicates().shape[0]} row(s) carry two different "
                                    f"labels, e.g. {clash.head(4).to_dict('records')}")
    extra = [c for c in (PREDICTED_CLASS,) if c in predictions.columns and c not in need_p]
    preds = predictions[need_p + extra].copy()
    for frame in (preds, out):
        frame[timestamp] = pd.to_datetime(frame[timestamp])
    joined = preds.merge(out, on=[entity, timestamp], how="left", validate="many_to_one")
    if joined[SCORE].isna().any():
        raise PerformanceInputError(f"{int(joined[SCORE].isna().sum())} prediction(s) have no score")
    joined[VERSION] = joined[VERSION].astype(str)
    return joined


def _task_labels(task: tasks.Task, labels: pd.Series) -> pd.Series:
    """The outcomes' labels in the task's form, or an error showing the ones that do not fit."""
    if task.name == tasks.MULTICLASS:
        return labels.map(class_label).astype(object)
    numbers = pd.to_numeric(labels, errors="coerce")
    if task.name == tasks.REGRESSION:
        bad = labels[numbers.isna() | ~np.isfinite(numbers)]
        if len(bad):
            raise PerformanceInputError(f"outcomes hold {len(bad)} label(s) that are not finite numbers, e.g. "
                                        f"{bad.head(3).tolist()}")
        return numbers.astype(float)
    bad = labels[numbers.isna() | ~numbers.isin([0, 1])]
    if len(bad):
        raise PerformanceInputError(f"outcomes hold {len(bad)} label(s) that are not 0/1, e.g. "
                                    f"{labels.to_frame().loc[bad.index].head(3).to_dict('records')}")
    return numbers.astype("int8")


def class_label(value) -> str:
    """A class label as text, the same whichever way it was stored: the labels table and the
    JSON keys of `class_probabilities` both pass through it, so a whole number reads as such
    (2, 2.0 from a float column with gaps, "2" or "2.0" as text are all "2")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.number)):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def class_probabilities(frame: pd.DataFrame) -> tasks.ClassProbabilities:
    """The `class_probabilities` JSON of each row as one matrix over the union of their labels
    (a label a row does not name has probability 0 there)."""
    rows = []
    for i, text in enumerate(frame[CLASS_PROBABILITIES]):
        try:
            parsed = json.loads(text) if isinstance(text, str) else dict(text)
        except (TypeError, ValueError) as exc:
            raise PerformanceInputError(f"row {i} has no readable {CLASS_PROBABILITIES} ({text!r}): {exc}") from exc
        rows.append({class_label(k): float(v) for k, v in parsed.items()})
    classes = tuple(sorted({c for r in rows for c in r}))
    matrix = np.array([[r.get(c, 0.0) for c in classes] for r in rows], dtype=float).reshape(len(rows), len(classes))
    return tasks.ClassProbabilities(matrix, classes)


def figures(y_true, y_prob, threshold: float = THRESHOLD) -> dict[str, float]:
    """The project's own maths for one group of labelled predictions (both classes needed)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    return {
        "roc_auc": m.roc_auc(y, p),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": m.f1_at(y, p, threshold),
        "log_loss": m.log_loss(y, p),
        "brier": m.brier(y, p),
        "ece": m.expected_calibration_error(y, p),
        "positive_rate": float(y.mean()),
        "mean_score": float(p.mean()),
        "rows": float(len(y)),
    }


def evidently_figures(labelled: pd.DataFrame, html_path: str | os.PathLike | None = None,
                      snapshot_path: str | os.PathLike | None = None,
                      html_lib_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Evidently 0.7's ClassificationPreset on (label, score); writes its HTML (sharing the
    JavaScript in `html_lib_dir` when given) and its compact snapshot when asked (see
    monitoring/drift.write_report). Returns its figures under the project's names."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    frame = labelled[[LABEL, SCORE]].astype({LABEL: int, SCORE: float}).reset_index(drop=True)
    definition = DataDefinition(
        classification=[BinaryClassification(target=LABEL, prediction_probas=SCORE)],
        numerical_columns=[SCORE], categorical_columns=[LABEL], text_columns=[], datetime_columns=[],
        unknown_columns=[], list_columns=[])
    snapshot = Report([ClassificationPreset(probas_threshold=THRESHOLD)]).run(
        Dataset.from_pandas(frame, data_definition=definition), None)
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = str(metric.get("config", {}).get("type", "")).rsplit(":", 1)[-1]
        if kind in _EVIDENTLY and not isinstance(metric["value"], dict):
            found[_EVIDENTLY[kind]] = float(metric["value"])
    missing = sorted(set(_EVIDENTLY.values()) - set(found))
    if missing:
        raise RuntimeError(f"Evidently's ClassificationPreset reported no {missing}: has its snapshot layout changed?")
    if html_path is not None or snapshot_path is not None:
        write_report(snapshot, html_path=html_path, snapshot_path=snapshot_path, html_lib_dir=html_lib_dir)
    return found


def task_figures(task: tasks.Task | str, labelled: pd.DataFrame) -> dict[str, float]:
    """The figures of labelled served predictions for the task: binary `figures`; otherwise
    evaluation.tasks' metrics (regression: MAE, RMSE, R², MAPE when no true value is zero;
    multiclass: accuracy, macro-F1, log loss, recall_<class>); a regression adds its mean
    prediction and mean target."""
    task = tasks.as_task(task)
    if task.name == tasks.BINARY:
        return figures(labelled[LABEL], labelled[SCORE])
    if labelled.empty:
        raise PerformanceInputError("no labelled rows to score")
    if task.name == tasks.REGRESSION:
        out = tasks.task_metrics(task, labelled[LABEL].astype(float), labelled[SCORE].astype(float))
        out["mean_prediction"] = float(labelled[SCORE].astype(float).mean())
        out["mean_target"] = float(labelled[LABEL].astype(float).mean())
        return out
    return tasks.task_metrics(task, labelled[LABEL].map(class_label).tolist(), class_probabilities(labelled))


def defined(task: tasks.Task | str, labelled: pd.DataFrame) -> str:
    """Why the task's primary metric is undefined on these labelled rows ("" when it is defined):
    ROC AUC needs both classes, MAPE no zero target."""
    task = tasks.as_task(task)
    if labelled.empty:
        return "no labels"
    if task.name == tasks.BINARY and labelled[LABEL].nunique() < 2:
        return "labels of a single class: ROC AUC undefined"
    if task.primary_metric == "mape" and (labelled[LABEL].astype(float) == 0).any():
        return "a true value is zero: MAPE undefined"
    return ""


# Evidently's figures of the regression and multiclass presets and the project's names for them.
_EVIDENTLY_REGRESSION = {"MAE": "mae", "RMSE": "rmse", "R2Score": "r2", "MAPE": "mape"}
_EVIDENTLY_MULTICLASS = {"Accuracy": "accuracy", "F1Score": "macro_f1", "LogLoss": "log_loss"}
_TARGET, _PREDICTION = "__target", "__prediction"  # never a class label's name


def evidently_task_figures(task: tasks.Task | str, labelled: pd.DataFrame, html_path: str | os.PathLike | None = None,
                           snapshot_path: str | os.PathLike | None = None,
                           html_lib_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Evidently 0.7's preset of the task on the labelled served predictions (binary:
    `evidently_figures`; regression: RegressionPreset on (label, score); multiclass:
    ClassificationPreset on (label, predicted class, class probabilities)); writes its HTML and
    snapshot as `evidently_figures` does. Returns its figures under the project's names (MAPE as
    a fraction, like evaluation.tasks; per-class recall as recall_<class>)."""
    task = tasks.as_task(task)
    if task.name == tasks.BINARY:
        return evidently_figures(labelled, html_path, snapshot_path, html_lib_dir)
    from evidently import DataDefinition, Dataset, MulticlassClassification, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    lists = dict(text_columns=[], datetime_columns=[], unknown_columns=[], list_columns=[])
    if task.name == tasks.REGRESSION:
        frame = pd.DataFrame({_TARGET: labelled[LABEL].astype(float).to_numpy(),
                              _PREDICTION: labelled[SCORE].astype(float).to_numpy()})
        definition = DataDefinition(regression=[Regression(target=_TARGET, prediction=_PREDICTION)],
                                    numerical_columns=[_TARGET, _PREDICTION], categorical_columns=[], **lists)
        preset, names = RegressionPreset(), _EVIDENTLY_REGRESSION
    else:
        proba = class_probabilities(labelled)
        classes = list(proba.classes)
        truth = labelled[LABEL].map(class_label).tolist()
        frame = pd.DataFrame(proba.probabilities, columns=classes)
        frame[_TARGET] = truth
        frame[_PREDICTION] = [classes[i] for i in np.argmax(proba.probabilities, axis=1)]
        # Evidently's probability figures (log loss, ROC AUC per class) fail when a class has a
        # column but no row of the day; such a day is reported on the predicted labels alone.
        with_probas = set(classes) <= set(truth)
        definition = DataDefinition(
            classification=[MulticlassClassification(target=_TARGET, prediction_labels=_PREDICTION,
                                                      prediction_probas=classes if with_probas else None)],
            numerical_columns=classes, categorical_columns=[_TARGET, _PREDICTION], **lists)
        preset = ClassificationPreset()
        names = _EVIDENTLY_MULTICLASS if with_probas else {k: v for k, v in _EVIDENTLY_MULTICLASS.items()
                                                            if v != "log_loss"}
    snapshot = Report([preset]).run(Dataset.from_pandas(frame, data_definition=definition), None)
    found: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        kind = str(metric.get("config", {}).get("type", "")).rsplit(":", 1)[-1]
        value = metric["value"]
        if kind in names:
            # MAE and MAPE come as {mean, std}; Evidently's MAPE is a percentage
            number = float(value["mean"] if isinstance(value, dict) else value)
            found[names[kind]] = number / 100 if kind == "MAPE" else number
        elif kind == "RecallByLabel" and task.name == tasks.MULTICLASS:
            found.update({tasks.recall_key(label): float(v) for label, v in value.items()})
    missing = sorted(set(names.values()) - set(found))
    if missing:
        raise RuntimeError(f"Evidently's {type(preset).__name__} reported no {missing}: has its snapshot layout changed?")
    if html_path is not None or snapshot_path is not None:
        write_report(snapshot, html_path=html_path, snapshot_path=snapshot_path, html_lib_dir=html_lib_dir)
    return found


def evidently_disagreements(own: dict[str, float], evidently: dict[str, float], tolerance: float = 1e-3) -> list[str]:
    """The figures both computed that differ by more than ``tolerance`` (relative for errors
    in the target's unit), each as a readable line: a guard against a change in Evidently's
    snapshot layout or defaults."""
    out = []
    for name in sorted(set(own) & set(evidently)):
        scale = max(1.0, abs(own[name])) if name in ("mae", "rmse") else 1.0
        if abs(evidently[name] - own[name]) > tolerance * scale:
            out.append(f"{name}: Evidently {evidently[name]:.6f}, the project {own[name]:.6f}")
    return out


@dataclass(frozen=True)
class VersionPerformance:
    version: str
    labelled_rows: int
    figures: dict[str, float] | None  # None when the primary metric is undefined (one class, say)
    holdout: float | None  # the version's holdout figure of `metric`; None when unknown
    note: str = ""
    metric: str = "roc_auc"  # the task's primary metric
    direction: int = 1  # +1 when higher is better, -1 for an error

    @property
    def holdout_roc_auc(self) -> float | None:
        """The holdout figure (ROC AUC for a binary use case; the name binary readers know)."""
        return self.holdout

    @property
    def value(self) -> float | None:
        return None if self.figures is None else self.figures.get(self.metric)

    @property
    def drop(self) -> float | None:
        """How much worse the served figure is than the holdout one (a rise of an error counts
        as a drop); negative when the day did better."""
        if self.value is None or self.holdout is None:
            return None
        return (self.holdout - self.value) * self.direction

    @property
    def roc_auc_drop(self) -> float | None:
        return self.drop


@dataclass(frozen=True)
class Verdict:
    evaluated: bool  # False: too few labels (or one class) to judge; `passed` is then True
    passed: bool
    description: str
    worst_drop: float | None = None
    failing_versions: list[str] = field(default_factory=list)


def _num(metric: str, value: float) -> str:
    return f"{value:.3f}" if metric == "roc_auc" or abs(value) < 10 else f"{value:.4g}"


def tolerance_verdict(day: str, coverage: Coverage, versions: list[VersionPerformance], max_drop: float,
                      min_rows: int) -> Verdict:
    """performance_within_tolerance: every model version that served at least `min_rows`
    labelled rows of the day keeps its primary metric (ROC AUC for a binary use case) within
    `max_drop` of its own holdout figure."""
    if not coverage.enough:
        return Verdict(False, True, f"{day}: not evaluated yet, {coverage.reason}")
    judged = [v for v in versions if v.labelled_rows >= min_rows and v.drop is not None]
    if not judged:
        notes = "; ".join(f"v{v.version}: {v.note or f'{v.labelled_rows} labelled rows'}" for v in versions)
        what = "of both classes " if all(v.metric == "roc_auc" for v in versions) else ""
        return Verdict(False, True, f"{day}: not evaluated, no model version with {min_rows}+ labelled rows "
                                    f"{what}and holdout figures ({notes})")
    failing = [v for v in judged if v.drop > max_drop]
    worst = max(judged, key=lambda v: v.drop)
    parts = [f"v{v.version}: {tasks.LABELS.get(v.metric, v.metric)} {_num(v.metric, v.value)} vs holdout "
             f"{_num(v.metric, v.holdout)} (drop {v.drop:+.3f}, {v.labelled_rows} rows)" for v in judged]
    word = "exceeds" if failing else "within"
    return Verdict(True, not failing, f"{day}: {'; '.join(parts)}; worst drop {worst.drop:+.3f} {word} "
                                      f"tolerance {max_drop}", worst.drop, [v.version for v in failing])


def per_version(joined: pd.DataFrame, holdout: dict[str, float | None],
                task: tasks.Task | str = tasks.BINARY) -> list[VersionPerformance]:
    """Figures of each model version that served the day, on its labelled rows, with its
    holdout figure of the task's primary metric (`holdout`: version -> figure)."""
    task = tasks.as_task(task)
    metric = "roc_auc" if task.name == tasks.BINARY else task.primary_metric
    direction = task.direction(metric) if metric in task.directions else 1
    out = []
    labelled = joined[joined[LABEL].notna()]
    for version in sorted(joined[VERSION].unique(), key=_version_order):
        rows = labelled[labelled[VERSION] == version]
        known = holdout.get(version)
        why = defined(task, rows)
        if why:
            out.append(VersionPerformance(version, len(rows), None, known, why, metric, direction))
            continue
        note = "" if known is not None else f"holdout {tasks.LABELS.get(metric, metric)} unknown"
        out.append(VersionPerformance(version, len(rows), task_figures(task, rows), known, note, metric, direction))
    return out


def per_segment(labelled: pd.DataFrame, segment: str, task: tasks.Task | str, min_rows: int) -> list[dict]:
    """The monitored metric (ROC AUC for binary, else the task's primary metric) per value of
    the `segment` column of the labelled rows: each segment's model is watched on its own rows.
    A segment below `min_rows` labelled rows, or where the metric is undefined, gets None."""
    task = tasks.as_task(task)
    metric = "roc_auc" if task.name == tasks.BINARY else task.primary_metric
    out = []
    for value, rows in labelled.groupby(labelled[segment].astype(str), sort=True):
        why = "" if len(rows) >= min_rows else f"{len(rows)} labelled rows < {min_rows}"
        why = why or defined(task, rows)
        figure = None if why else task_figures(task, rows).get(metric)
        out.append({"segment": value, "labelled_rows": len(rows), "metric": metric,
                    "value": None if figure is None else round(float(figure), 5), "note": why})
    return out


def _version_order(v: Any):
    return (0, int(v), "") if str(v).isdigit() else (1, 0, str(v))
