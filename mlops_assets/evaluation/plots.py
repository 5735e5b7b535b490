"""Evaluation plots of a candidate on its holdout, rendered to PNG, per task type: binary the ROC
and precision-recall curves, calibration curve, confusion matrix and feature importance;
regression predicted vs actual, residuals and feature importance; multiclass the confusion
matrix over the labels and feature importance.

The curve maths is pure numpy (unit-tested against hand-computed points); drawing uses
matplotlib's object API with the Agg canvas (no pyplot: no global figure state, no display),
imported inside the functions so that loading the code location never pays for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlops_assets.evaluation import tasks
from mlops_assets.evaluation.metrics import _check, calibration_table

PLOT_NAMES = ("roc_curve", "precision_recall_curve", "calibration_curve", "confusion_matrix", "feature_importance")
TASK_PLOT_NAMES = {
    tasks.BINARY: PLOT_NAMES,
    tasks.MULTICLASS: ("confusion_matrix", "feature_importance"),
    tasks.REGRESSION: ("predicted_vs_actual", "residuals", "feature_importance"),
}


def plot_names(task: tasks.Task | str) -> tuple[str, ...]:
    """The plots `save_task_plots` draws for the task, in order."""
    return TASK_PLOT_NAMES[tasks.as_task(task).name]


@dataclass(frozen=True)
class Importance:
    """Mean and spread of one feature's importance (e.g. ROC AUC lost when it is permuted)."""
    feature: str
    mean: float
    std: float = 0.0


def roc_points(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score threshold, from (0, 0) to (1, 1)."""
    y_true, y_prob = _both_classes(y_true, y_prob)
    tps, fps = _cumulative_counts(y_true, y_prob)
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def precision_recall_points(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at every distinct score threshold (highest threshold first),
    starting at recall 0 with precision 1 as is customary."""
    y_true, y_prob = _both_classes(y_true, y_prob)
    tps, fps = _cumulative_counts(y_true, y_prob)
    return np.r_[0.0, tps / tps[-1]], np.r_[1.0, tps / (tps + fps)]


def confusion_counts(y_true, y_prob, threshold: float = 0.5) -> np.ndarray:
    """[[TN, FP], [FN, TP]] of the decision ``prob >= threshold`` (the F1 threshold of metrics.py)."""
    y_true, y_prob = _check(y_true, y_prob)
    pred = y_prob >= threshold
    actual = y_true == 1
    return np.array([[np.sum(~actual & ~pred), np.sum(~actual & pred)],
                     [np.sum(actual & ~pred), np.sum(actual & pred)]], dtype=int)


def _both_classes(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_prob = _check(y_true, y_prob)
    if y_true.min() == y_true.max():
        raise ValueError(f"curves need both classes in y_true; all {y_true.size} rows are {int(y_true[0])}")
    return y_true, y_prob


def _cumulative_counts(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives when predicting positive at or above each distinct score."""
    order = np.argsort(-y_prob, kind="mergesort")
    y, p = y_true[order], y_prob[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p)), y.size - 1]
    tps = np.cumsum(y)[last_of_tie]
    return tps, (last_of_tie + 1) - tps


def _figure(title: str, xlabel: str, ylabel: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def roc_figure(y_true, y_prob, label: str = "candidate", baseline_prob=None):
    fpr, tpr = roc_points(y_true, y_prob)
    from mlops_assets.evaluation.metrics import roc_auc

    fig, ax = _figure("ROC curve (holdout)", "False positive rate", "True positive rate")
    ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc(y_true, y_prob):.3f})")
    if baseline_prob is not None:
        bfpr, btpr = roc_points(y_true, baseline_prob)
        ax.plot(bfpr, btpr, linestyle=":", label="prior-only baseline")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
    ax.legend(loc="lower right")
    return fig


def precision_recall_figure(y_true, y_prob, label: str = "candidate"):
    recall, precision = precision_recall_points(y_true, y_prob)
    prevalence = float(np.mean(np.asarray(y_true, dtype=float)))
    fig, ax = _figure("Precision-recall curve (holdout)", "Recall", "Precision")
    ax.step(recall, precision, where="post", label=label)
    ax.axhline(prevalence, color="grey", linewidth=0.8, linestyle="--", label=f"positive rate {prevalence:.3f}")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper right")
    return fig


def calibration_figure(y_true, y_prob, n_bins: int = 10):
    rows = calibration_table(y_true, y_prob, n_bins)
    fig, ax = _figure("Calibration (holdout)", "Mean predicted probability", "Observed positive rate")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="perfectly calibrated")
    ax.plot([r["mean_predicted"] for r in rows], [r["observed_rate"] for r in rows], marker="o", label="candidate")
    for r in rows:
        ax.annotate(str(r["count"]), (r["mean_predicted"], r["observed_rate"]), fontsize=7,
                    textcoords="offset points", xytext=(3, -9))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig


def confusion_figure(y_true, y_prob, threshold: float = 0.5):
    counts = confusion_counts(y_true, y_prob, threshold)
    fig, ax = _figure(f"Confusion matrix (threshold {threshold:g})", "Predicted", "Actual")
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks([0, 1], labels=["0", "1"])
    ax.set_yticks([0, 1], labels=["0", "1"])
    high = counts.max() / 2
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > high else "black")
    return fig


def importance_figure(importances: list[Importance], what: str = "ROC AUC drop when permuted"):
    if not importances:
        raise ValueError("feature importance needs at least one feature")
    ranked = sorted(importances, key=lambda i: i.mean)  # largest at the top of a barh
    fig, ax = _figure("Feature importance (holdout)", what, "")
    fig.set_size_inches(5.5, max(3.0, 0.35 * len(ranked) + 1.5))
    ax.barh([i.feature for i in ranked], [i.mean for i in ranked], xerr=[i.std for i in ranked], color="tab:blue")
    ax.axvline(0, color="grey", linewidth=0.8)
    fig.tight_layout()
    return fig


def multiclass_confusion(y_true, y_pred) -> tuple[list, np.ndarray]:
    """The labels (of either side, in order) and counts[i, j]: rows of true label i predicted
    as label j."""
    labels, t, p = tasks._codes(y_true, y_pred)
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(counts, (t, p), 1)
    return labels, counts


def residuals(y_true, y_pred) -> np.ndarray:
    """Actual minus predicted: positive where the model predicted too low."""
    y_true, y_pred = tasks._check_regression(y_true, y_pred)
    return y_true - y_pred


def multiclass_confusion_figure(y_true, y_pred):
    labels, counts = multiclass_confusion(y_true, y_pred)
    fig, ax = _figure("Confusion matrix (holdout)", "Predicted", "Actual")
    size = max(4.5, 0.45 * len(labels) + 2.5)
    fig.set_size_inches(size + 1.0, size)
    ax.imshow(counts, cmap="Blues")
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, labels=[str(label) for label in labels], rotation=45 if len(labels) > 6 else 0)
    ax.set_yticks(ticks, labels=[str(label) for label in labels])
    high = counts.max() / 2 if counts.size else 0
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8, color="white" if n > high else "black")
    fig.tight_layout()
    return fig


def predicted_vs_actual_figure(y_true, y_pred, baseline=None):
    y_true, y_pred = tasks._check_regression(y_true, y_pred)
    fig, ax = _figure("Predicted vs actual (holdout)", "Actual", "Predicted")
    ax.scatter(y_true, y_pred, s=8, alpha=0.5, label="candidate")
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--", label="perfect")
    if baseline is not None:
        ax.axhline(float(np.mean(baseline)), color="tab:orange", linewidth=0.8, linestyle=":", label="baseline")
    ax.legend(loc="upper left")
    return fig


def residuals_figure(y_true, y_pred):
    res = residuals(y_true, y_pred)
    fig, ax = _figure("Residuals (holdout)", "Predicted", "Actual - predicted")
    ax.scatter(np.asarray(y_pred, dtype=float).ravel(), res, s=8, alpha=0.5)
    ax.axhline(0, color="grey", linewidth=0.8, linestyle="--")
    return fig


def save_task_plots(task: tasks.Task | str, y_true, prediction, importances: list[Importance], out_dir: Path,
                    baseline=None, threshold: float = 0.5) -> dict[str, Path]:
    """The task's plots (plot_names(task)) as ``<out_dir>/<name>.png``; ``prediction`` and
    ``baseline`` in evaluation.tasks.predict's form. Binary: save_evaluation_plots."""
    task = tasks.as_task(task)
    if task.name == tasks.BINARY:
        return save_evaluation_plots(y_true, prediction, importances, out_dir, baseline_prob=baseline,
                                     threshold=threshold)
    what = f"{task.label()} lost when permuted"
    if task.name == tasks.REGRESSION:
        figures = {"predicted_vs_actual": predicted_vs_actual_figure(y_true, prediction, baseline),
                   "residuals": residuals_figure(y_true, prediction)}
    else:
        classes = list(prediction[1])
        predicted = [classes[i] for i in np.argmax(np.asarray(prediction[0], dtype=float), axis=1)]
        figures = {"confusion_matrix": multiclass_confusion_figure(list(y_true), predicted)}
    figures["feature_importance"] = importance_figure(importances, what)
    return {name: save_png(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}


def save_png(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def save_evaluation_plots(y_true, y_prob, importances: list[Importance], out_dir: Path,
                          baseline_prob=None, threshold: float = 0.5) -> dict[str, Path]:
    """All five plots as ``<out_dir>/<name>.png``; returns name -> path (names in PLOT_NAMES)."""
    figures = {
        "roc_curve": roc_figure(y_true, y_prob, baseline_prob=baseline_prob),
        "precision_recall_curve": precision_recall_figure(y_true, y_prob),
        "calibration_curve": calibration_figure(y_true, y_prob),
        "confusion_matrix": confusion_figure(y_true, y_prob, threshold),
        "feature_importance": importance_figure(importances),
    }
    return {name: save_png(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}


def permutation_importances(model, X, y, max_rows: int = 500, repeats: int = 2, seed: int = 0) -> list[Importance]:
    """ROC AUC lost on the holdout when each feature is shuffled (sklearn's permutation
    importance; model-agnostic, so the same for every model family). It costs features x
    repeats predictions of ``max_rows`` rows: 19 features, 1,400 holdout rows, 3 repeats took
    114 s on the busy CI machine, 500 rows x 2 repeats 18 s, hence these bounds."""
    from sklearn.inspection import permutation_importance

    y = np.asarray(y)
    if len(X) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, y = X.iloc[rows], y[rows]
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=repeats, random_state=seed)
    return [Importance(str(c), float(m), float(s))
            for c, m, s in zip(X.columns, result.importances_mean, result.importances_std)]


def task_permutation_importances(task: tasks.Task | str, model, X, y, max_rows: int = 500, repeats: int = 2,
                                 seed: int = 0) -> list[Importance]:
    """The task's primary metric lost on the holdout when each feature is shuffled (a rise of an
    error counts as a loss). Model-agnostic: it needs only what evaluation.tasks.predict needs,
    so a rule or a team's own model is measured like a scikit-learn one. Binary: ROC AUC, by
    scikit-learn (permutation_importances)."""
    task = tasks.as_task(task)
    if task.name == tasks.BINARY:
        return permutation_importances(model, X, y, max_rows, repeats, seed)
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if len(X) > max_rows:
        rows = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X.iloc[rows], y[rows]
    X = X.reset_index(drop=True)
    direction = task.direction(task.primary_metric)

    def score(frame) -> float:
        return tasks.primary_value(task, tasks.task_metrics(task, y, tasks.predict(task, model, frame)))

    base = score(X)
    out = []
    for column in X.columns:
        losses = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[column] = X[column].to_numpy()[rng.permutation(len(X))]
            losses.append((base - score(shuffled)) * direction)
        out.append(Importance(str(column), float(np.mean(losses)), float(np.std(losses))))
    return out
