"""Holdout evaluation report of a fitted classifier against a trivial baseline."""
from __future__ import annotations

import numpy as np

from mlops_assets.evaluation.metrics import calibration_table, classification_metrics, roc_auc


def slice_metrics(y_true, y_prob, groups, min_rows: int = 30) -> list[dict]:
    """ROC AUC and positive rate per value of a slice column; slices too small or with one
    class get no AUC rather than a misleading one."""
    y_true, y_prob, groups = np.asarray(y_true), np.asarray(y_prob), np.asarray(groups).astype(str)
    rows = []
    for value in sorted(set(groups)):
        mask = groups == value
        n = int(mask.sum())
        auc = None
        if n >= min_rows and 0 < y_true[mask].sum() < n:
            auc = round(roc_auc(y_true[mask], y_prob[mask]), 4)
        rows.append({"value": value, "rows": n, "positive_rate": round(float(y_true[mask].mean()), 4), "roc_auc": auc})
    return rows


def evaluation_report(y_true, y_prob, baseline_prob, slices: dict[str, np.ndarray]) -> dict:
    model = classification_metrics(y_true, y_prob)
    baseline = classification_metrics(y_true, baseline_prob)
    return {
        "model": model,
        "baseline": baseline,
        "lift": {k: model[k] - baseline[k] for k in ("roc_auc", "f1", "log_loss", "brier", "ece")},
        "calibration": calibration_table(y_true, y_prob),
        "slices": {col: slice_metrics(y_true, y_prob, values) for col, values in slices.items()},
    }


def task_report(task, y_true, prediction, baseline_prediction) -> dict:
    """The holdout report of a multiclass or regression model (evaluation.tasks): its metrics,
    the trivial baseline's, and the lift on the primary metric (an improvement is positive)."""
    from mlops_assets.evaluation.tasks import primary_value, task_metrics

    model = task_metrics(task, y_true, prediction)
    baseline = task_metrics(task, y_true, baseline_prediction)
    lift = (primary_value(task, model) - primary_value(task, baseline)) * task.direction(task.primary_metric)
    return {"task": task.name, "primary_metric": task.primary_metric, "model": model, "baseline": baseline,
            "baseline_name": task.baseline_name, "lift": {task.primary_metric: lift}}


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# Column (name, type, description) of the tables the evaluation shows as metadata.
METRICS_VS_CHAMPION_COLUMNS = (
    ("metric", "string", "holdout metric"), ("candidate", "float", "candidate's value"),
    ("champion", "float", "champion's value on the same rows (empty: no champion)"),
    ("delta", "float", "candidate - champion"), ("verdict", "string", "better / worse / equal by the metric's direction"))
SLICES_VS_CHAMPION_COLUMNS = (
    ("column", "string", "slice column"), ("value", "string", "slice value"), ("rows", "int", "holdout rows"),
    ("candidate_roc_auc", "float", "empty: too few rows or one class"), ("champion_roc_auc", "float", ""),
    ("delta", "float", "candidate - champion; empty: not judged"))
SLICE_METRICS_COLUMNS = (
    ("column", "string", "slice column"), ("value", "string", "slice value"), ("rows", "int", "holdout rows"),
    ("positive_rate", "float", "observed positive rate"), ("roc_auc", "float", "empty: too few rows or one class"))
CALIBRATION_COLUMNS = (
    ("bin", "string", "predicted probability bin"), ("count", "int", "holdout rows in the bin"),
    ("mean_predicted", "float", "mean predicted probability"), ("observed_rate", "float", "observed positive rate"))
# The same tables for multiclass and regression (and a binary task judged by another metric):
# slices by the task's primary metric.
TASK_SLICES_VS_CHAMPION_COLUMNS = (
    ("column", "string", "slice column"), ("value", "string", "slice value"), ("rows", "int", "holdout rows"),
    ("candidate", "float", "candidate's primary metric; empty: too few rows or undefined"),
    ("champion", "float", "champion's primary metric"), ("delta", "float", "candidate - champion; empty: not judged"))
TASK_SLICE_METRICS_COLUMNS = (
    ("column", "string", "slice column"), ("value", "string", "slice value"), ("rows", "int", "holdout rows"),
    ("metric", "string", "the task's primary metric"), ("score", "float", "empty: too few rows or undefined"))
CANDIDATES_COLUMNS = (
    ("name", "string", "candidate"), ("model", "string", "family, estimator or training function"),
    ("primary", "float", "validation value of the primary metric"), ("fit_seconds", "float", ""),
    ("chosen", "bool", "the winner, evaluated here"))
GATES_COLUMNS = (("gate", "string", "blocking check on model_evaluation"), ("passed", "bool", ""),
                 ("description", "string", "why"))


def metadata_table(columns: tuple[tuple[str, str, str], ...], rows: list[dict]):
    """A Dagster table (records plus schema) of ``rows``, keeping only the schema's columns. A
    row lacking a column is an error naming it: the schema and the rows must not drift apart."""
    import dagster as dg

    names = [c[0] for c in columns]
    for i, row in enumerate(rows):
        missing = [n for n in names if n not in row]
        if missing:
            raise KeyError(f"table row {i} lacks column(s) {missing}; it has {sorted(row)}")
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d or None) for n, t, d in columns])
    return dg.MetadataValue.table(records=[dg.TableRecord({n: row[n] for n in names}) for row in rows], schema=schema)
