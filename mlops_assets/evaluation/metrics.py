"""Holdout metric maths for binary classifiers. Pure numpy: unit-tested without sklearn."""
from __future__ import annotations

import numpy as np


def expected_calibration_error(y_true, y_prob, n_bins: int = 10) -> float:
    """Weighted mean gap between predicted probability and observed frequency over equal-width
    probability bins (the usual ECE)."""
    y_true, y_prob = _check(y_true, y_prob)
    bins = np.clip((y_prob * n_bins).astype(int), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(y_prob[mask].mean() - y_true[mask].mean())
    return float(ece)


def calibration_table(y_true, y_prob, n_bins: int = 10) -> list[dict]:
    y_true, y_prob = _check(y_true, y_prob)
    bins = np.clip((y_prob * n_bins).astype(int), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            rows.append({"bin": f"{b / n_bins:.1f}-{(b + 1) / n_bins:.1f}", "count": int(mask.sum()),
                         "mean_predicted": round(float(y_prob[mask].mean()), 4),
                         "observed_rate": round(float(y_true[mask].mean()), 4)})
    return rows


def roc_auc(y_true, y_prob) -> float:
    """Probability that a random positive is ranked above a random negative (ties count half),
    computed from ranks."""
    y_true, y_prob = _check(y_true, y_prob)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes in y_true")
    order = np.argsort(y_prob, kind="mergesort")
    sorted_p = y_prob[order]
    ranks = np.empty(len(y_prob))
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true, y_prob, eps: float = 1e-15) -> float:
    y_true, y_prob = _check(y_true, y_prob)
    p = np.clip(y_prob, eps, 1 - eps)
    return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))


def f1_at(y_true, y_prob, threshold: float = 0.5) -> float:
    y_true, y_prob = _check(y_true, y_prob)
    pred = y_prob >= threshold
    tp = float(np.sum(pred & (y_true == 1)))
    fp = float(np.sum(pred & (y_true == 0)))
    fn = float(np.sum(~pred & (y_true == 1)))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def brier(y_true, y_prob) -> float:
    y_true, y_prob = _check(y_true, y_prob)
    return float(np.mean((y_prob - y_true) ** 2))


def classification_metrics(y_true, y_prob, threshold: float = 0.5) -> dict[str, float]:
    return {
        "roc_auc": roc_auc(y_true, y_prob),
        "f1": f1_at(y_true, y_prob, threshold),
        "log_loss": log_loss(y_true, y_prob),
        "brier": brier(y_true, y_prob),
        "ece": expected_calibration_error(y_true, y_prob),
        "positive_rate": float(np.mean(y_true)),
        "rows": float(len(y_true)),
    }


def _check(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_prob = np.asarray(y_prob, dtype=float).ravel()
    if y_true.shape != y_prob.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_prob has {y_prob.size}")
    if y_true.size == 0:
        raise ValueError("no rows to score")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise ValueError("y_true must be 0/1")
    if np.isnan(y_prob).any() or (y_prob < 0).any() or (y_prob > 1).any():
        raise ValueError("y_prob must be probabilities in [0, 1] without NaN")
    return y_true, y_prob
