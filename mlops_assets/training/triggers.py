"""When to retrain: the pure rule behind the retraining sensor.

Four triggers, each documented in the README: the drift check of the latest day failed after
the current training set was built; the performance check failed on the N most recent labelled
days, each served by a model at least as new as the current training set; enough labelled rows arrived for days after the current
training set's window (each day counted once, at its latest load; reloads of days the model
already saw do not count); (the weekly cron is an automation condition on the training set,
not here, and applies the same cool-down). Each trigger carries a run key tied to the event
that fired it, so it fires once; nothing fires while a retrain is in progress or within the
cool-down after the last training chain finished.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_assets.evaluation.gates import LABELS
from mlops_assets.use_cases.config import ERROR_METRICS, RetrainConfig


@dataclass(frozen=True)
class DriftState:
    day: str
    flagged: bool
    drift_share: float
    storage_id: int
    timestamp: float


@dataclass(frozen=True)
class PerformanceDay:
    """One labelled day's performance check, as the retrain sensor read it."""
    day: str
    passed: bool
    roc_auc: float | None
    holdout_roc_auc: float | None
    roc_auc_drop: float | None
    storage_id: int  # of the day's performance report materialization
    # The day's predictions were made after the current training set was built: a model the
    # last retrain produced (or the same one, if it was not promoted) served them. Days served
    # before it say nothing about the current model.
    scored_after_training: bool
    # The day's figure of the metric it was judged on (binary: ROC AUC, as in the fields above;
    # multiclass and regression: the primary metric) and the drop (for an error, the rise).
    metric: str = "roc_auc"
    value: float | None = None
    holdout: float | None = None
    drop: float | None = None


@dataclass(frozen=True)
class RetrainState:
    now: float
    training_storage_id: int | None  # latest training set materialization, None when never built
    last_retrain_end: float | None  # when the last training chain run ended (training.history.last_retrain_end)
    new_labelled_rows: int  # labelled rows of days after the training set's window (latest load per day)
    latest_drift: DriftState | None  # drift report of the newest day that has one
    retrain_in_progress: str | None  # run id of a retrain that is queued or running
    # Evaluated performance days, newest first (days with too few labels are left out).
    performance: tuple[PerformanceDay, ...] = ()


@dataclass(frozen=True)
class Decision:
    trigger: str | None  # "drift", "performance", "new_rows" or None
    run_key: str | None
    reason: str


def failing_streak(days: tuple[PerformanceDay, ...], n: int | None) -> tuple[PerformanceDay, ...] | None:
    """The `n` most recent evaluated days when every one of them failed its performance check
    and was served after the current training set was built; else None."""
    if n is None or len(days) < n:
        return None
    recent = days[:n]
    if all(not d.passed and d.scored_after_training for d in recent):
        return recent
    return None


def _figures(d: PerformanceDay) -> str:
    if d.roc_auc is None and d.value is not None:  # a multiclass or regression day: its primary metric
        return _metric_figures(d)
    if d.roc_auc is None:
        return f"{d.day} failed"
    holdout = f" vs holdout {d.holdout_roc_auc:.3f}" if d.holdout_roc_auc is not None else ""
    return f"{d.day} ROC AUC {d.roc_auc:.3f}{holdout}" + (f" (drop {d.roc_auc_drop:+.3f})" if d.roc_auc_drop is not None else "")


def _metric_figures(d: PerformanceDay) -> str:
    error = d.metric in ERROR_METRICS  # in the target's unit, of any size
    num = (lambda v: f"{v:.4g}") if error else (lambda v: f"{v:.3f}")
    holdout = f" vs holdout {num(d.holdout)}" if d.holdout is not None else ""
    change = f" ({'rise' if error else 'drop'} {d.drop:+.3g})" if d.drop is not None else ""
    return f"{d.day} {LABELS.get(d.metric, d.metric)} {num(d.value)}{holdout}{change}"


def held_back(cfg: RetrainConfig, in_progress: str | None, last_end: float | None, now: float) -> str | None:
    """Why no trigger may fire now (a retrain is running, or the cool-down after the last one
    is on), or None. Shared by every trigger, the weekly schedule included."""
    if in_progress:
        return f"a retrain is already in progress (run {in_progress})"
    if last_end is not None and now - last_end < cfg.cooldown_minutes * 60:
        wait = cfg.cooldown_minutes * 60 - (now - last_end)
        return (f"the last retrain finished {(now - last_end) / 60:.1f} min ago; "
                f"cool-down ends in {wait / 60:.1f} min")
    return None


def decide(use_case: str, cfg: RetrainConfig, s: RetrainState, performance_days: int | None = None) -> Decision:
    """`performance_days`: the use case's monitoring.performance_retrain_days (None: off)."""
    held = held_back(cfg, s.retrain_in_progress, s.last_retrain_end, s.now)
    if held:
        return Decision(None, None, held)
    drift = s.latest_drift
    drift_is_new = drift is not None and (s.training_storage_id is None or drift.storage_id > s.training_storage_id)
    if cfg.on_drift and drift is not None and drift.flagged and drift_is_new:
        return Decision("drift", f"drift:{use_case}:{drift.storage_id}",
                        f"drift check failed for {drift.day} (drift share {drift.drift_share:.2f}) after the "
                        "current training set was built")
    streak = failing_streak(s.performance, performance_days)
    if streak is not None:
        return Decision("performance", f"performance:{use_case}:{max(d.storage_id for d in streak)}",
                        f"performance check failed on the {len(streak)} most recent labelled days: "
                        + "; ".join(_figures(d) for d in streak))
    if cfg.min_new_rows is not None and s.new_labelled_rows >= cfg.min_new_rows:
        since = (f"for days after training set #{s.training_storage_id}'s window" if s.training_storage_id
                 else "and no training set yet")
        return Decision("new_rows", f"rows:{use_case}:{s.training_storage_id or 0}",
                        f"{s.new_labelled_rows} new labelled rows {since} (threshold {cfg.min_new_rows})")
    parts = [f"{s.new_labelled_rows}/{cfg.min_new_rows or '-'} new labelled rows"]
    if drift is not None:
        parts.append(f"latest drift {drift.day}: share {drift.drift_share:.2f}"
                     + (" (flagged, already handled by a later retrain)" if drift.flagged and not drift_is_new else ""))
    if performance_days is not None:
        recent = s.performance[:performance_days]
        failed = sum(not d.passed for d in recent)
        parts.append(f"performance failed on {failed} of the {len(recent)} most recent labelled days "
                     f"(retrain at {performance_days} in a row served after the current training set)")
    return Decision(None, None, "no retrain needed: " + "; ".join(parts))
