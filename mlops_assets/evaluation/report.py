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


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
