"""When to retrain: the pure rule behind the retraining sensor.

Three triggers, each documented in the README: the drift check of the latest day failed after
the current training set was built; enough labelled rows arrived for days after the current
training set's window (each day counted once, at its latest load; reloads of days the model
already saw do not count); (the weekly cron is an automation condition on the training set,
not here, and applies the same cool-down). Each trigger carries a run key tied to the event
that fired it, so it fires once; nothing fires while a retrain is in progress or within the
cool-down after the last training chain finished.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_assets.use_cases.config import RetrainConfig


@dataclass(frozen=True)
class DriftState:
    day: str
    flagged: bool
    drift_share: float
    storage_id: int
    timestamp: float


@dataclass(frozen=True)
class RetrainState:
    now: float
    training_storage_id: int | None  # latest training set materialization, None when never built
    last_retrain_end: float | None  # when the last training chain run ended (training.history.last_retrain_end)
    new_labelled_rows: int  # labelled rows of days after the training set's window (latest load per day)
    latest_drift: DriftState | None  # drift report of the newest day that has one
    retrain_in_progress: str | None  # run id of a retrain that is queued or running


@dataclass(frozen=True)
class Decision:
    trigger: str | None  # "drift", "new_rows" or None
    run_key: str | None
    reason: str


def decide(use_case: str, cfg: RetrainConfig, s: RetrainState) -> Decision:
    if s.retrain_in_progress:
        return Decision(None, None, f"a retrain is already in progress (run {s.retrain_in_progress})")
    if s.last_retrain_end is not None and s.now - s.last_retrain_end < cfg.cooldown_minutes * 60:
        wait = cfg.cooldown_minutes * 60 - (s.now - s.last_retrain_end)
        return Decision(None, None, f"the last retrain finished {(s.now - s.last_retrain_end) / 60:.1f} min ago; "
                                    f"cool-down ends in {wait / 60:.1f} min")
    drift = s.latest_drift
    drift_is_new = drift is not None and (s.training_storage_id is None or drift.storage_id > s.training_storage_id)
    if cfg.on_drift and drift is not None and drift.flagged and drift_is_new:
        return Decision("drift", f"drift:{use_case}:{drift.storage_id}",
                        f"drift check failed for {drift.day} (drift share {drift.drift_share:.2f}) after the "
                        "current training set was built")
    if cfg.min_new_rows is not None and s.new_labelled_rows >= cfg.min_new_rows:
        since = (f"for days after training set #{s.training_storage_id}'s window" if s.training_storage_id
                 else "and no training set yet")
        return Decision("new_rows", f"rows:{use_case}:{s.training_storage_id or 0}",
                        f"{s.new_labelled_rows} new labelled rows {since} (threshold {cfg.min_new_rows})")
    parts = [f"{s.new_labelled_rows}/{cfg.min_new_rows or '-'} new labelled rows"]
    if drift is not None:
        parts.append(f"latest drift {drift.day}: share {drift.drift_share:.2f}"
                     + (" (flagged, already handled by a later retrain)" if drift.flagged and not drift_is_new else ""))
    return Decision(None, None, "no retrain needed: " + "; ".join(parts))
