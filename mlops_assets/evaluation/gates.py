"""Quality gates on a model's holdout metrics: pure rules, wired as blocking asset checks."""
from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.use_cases.config import Thresholds


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def minimum_quality(metrics: dict[str, float], t: Thresholds) -> GateResult:
    problems = []
    if metrics["roc_auc"] < t.min_roc_auc:
        problems.append(f"ROC AUC {metrics['roc_auc']:.4f} < {t.min_roc_auc}")
    if t.max_log_loss is not None and metrics["log_loss"] > t.max_log_loss:
        problems.append(f"log loss {metrics['log_loss']:.4f} > {t.max_log_loss}")
    return GateResult(
        "meets_minimum_quality", not problems,
        "; ".join(problems) or f"ROC AUC {metrics['roc_auc']:.4f} >= {t.min_roc_auc}",
        {"roc_auc": metrics["roc_auc"], "min_roc_auc": t.min_roc_auc,
         "shortfall": max(0.0, t.min_roc_auc - metrics["roc_auc"])},
    )


def beats_baseline(metrics: dict[str, float], baseline: dict[str, float], t: Thresholds) -> GateResult:
    lift = metrics["roc_auc"] - baseline["roc_auc"]
    better_loss = metrics["log_loss"] < baseline["log_loss"]
    passed = lift >= t.min_lift_over_baseline and better_loss
    return GateResult(
        "beats_baseline", passed,
        f"ROC AUC lift over the prior-only baseline {lift:+.4f} (needs >= {t.min_lift_over_baseline}); "
        f"log loss {metrics['log_loss']:.4f} vs baseline {baseline['log_loss']:.4f}",
        {"roc_auc_lift": lift, "min_lift": t.min_lift_over_baseline,
         "log_loss": metrics["log_loss"], "baseline_log_loss": baseline["log_loss"]},
    )
