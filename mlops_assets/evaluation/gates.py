"""The six promotion gates, in one place: their names, what each checks, the one result type,
and the pure rules on metric dictionaries.

model_evaluation runs them and records each as a blocking asset check; champion_model reads
those check results back as GateResults (governance/rules.py: promotion_decision) and promotes
only when all six passed. Nothing here touches MLflow or Dagster.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.use_cases.config import Thresholds

# How each metric's name reads in a gate's message (here, not in tasks.py: the code location
# imports these names, and tasks.py imports numpy and pandas).
LABELS = {"roc_auc": "ROC AUC", "f1": "F1", "log_loss": "log loss", "brier": "Brier score",
          "ece": "calibration error", "accuracy": "accuracy", "macro_f1": "macro-F1", "mae": "MAE",
          "rmse": "RMSE", "r2": "R²", "mape": "MAPE"}


@dataclass(frozen=True)
class GateResult:
    """A gate's outcome. ``passed`` is None only when read back for promotion and the gate has
    no result for the evaluated materialization (never ran, still running, stale)."""
    name: str
    passed: bool | None
    description: str = ""
    metadata: dict[str, float] = field(default_factory=dict)


# Gate names, in the order the UI lists them. The first two predate the champion comparison.
MINIMUM_QUALITY = "meets_minimum_quality"
BEATS_BASELINE = "beats_baseline"
NO_REGRESSION = "no_regression_vs_champion"
NO_SLICE_REGRESSION = "no_slice_regression"
LATENCY_BUDGET = "latency_within_budget"
SIZE_BUDGET = "size_within_budget"
ALL_GATES = (MINIMUM_QUALITY, BEATS_BASELINE, NO_REGRESSION, NO_SLICE_REGRESSION, LATENCY_BUDGET, SIZE_BUDGET)

# How many of the most recent champions a candidate is also compared with (see no_regression).
RECENT_CHAMPIONS = 5

GATE_DESCRIPTIONS = {
    MINIMUM_QUALITY: "Holdout ROC AUC (and log loss, if set) meet the use case's absolute thresholds.",
    BEATS_BASELINE: "ROC AUC lift over a prior-only baseline, and a lower log loss.",
    NO_REGRESSION: "No ROC AUC loss / log loss gain beyond the tolerances vs the champion, nor vs the best "
                   f"of the last {RECENT_CHAMPIONS} champions on the same holdout (passes without a champion).",
    NO_SLICE_REGRESSION: "No slice of slice_columns loses ROC AUC vs the champion beyond the tolerance.",
    LATENCY_BUDGET: "Best-of-7 prediction latency of a batch within budget.",
    SIZE_BUDGET: "Logged model files within the size budget.",
}

# +1: higher is better; -1: lower is better.
METRIC_DIRECTION = {"roc_auc": 1, "f1": 1, "log_loss": -1, "brier": -1, "ece": -1}


def compare_metrics(candidate: dict[str, float], champion: dict[str, float] | None) -> list[dict]:
    """One row per metric: both values, the difference (candidate - champion) and whether the
    candidate is better, worse or equal by that metric's direction."""
    rows = []
    for name, direction in METRIC_DIRECTION.items():
        row = {"metric": name, "candidate": round(candidate[name], 5), "champion": None, "delta": None, "verdict": "no champion"}
        if champion is not None:
            delta = candidate[name] - champion[name]
            row.update(champion=round(champion[name], 5), delta=round(delta, 5),
                       verdict="equal" if abs(delta) < 1e-12 else ("better" if delta * direction > 0 else "worse"))
        rows.append(row)
    return rows


def compare_task_metrics(task, candidate: dict[str, float], champion: dict[str, float] | None) -> list[dict]:
    """compare_metrics for any task (evaluation.tasks.Task): its metrics with their directions
    (per-class recalls included), those both sides have."""
    rows = []
    names = [k for k in candidate if k in task.directions or k.startswith("recall_")]
    for name in names:
        direction = task.direction(name)
        row = {"metric": name, "candidate": round(candidate[name], 5), "champion": None, "delta": None,
               "verdict": "no champion"}
        if champion is not None and name in champion:
            delta = candidate[name] - champion[name]
            row.update(champion=round(champion[name], 5), delta=round(delta, 5),
                       verdict="equal" if abs(delta) < 1e-12 else ("better" if delta * direction > 0 else "worse"))
        rows.append(row)
    return rows


def compare_slices(candidate: dict[str, list[dict]], champion: dict[str, list[dict]] | None,
                   min_rows: int) -> list[dict]:
    """Per slice (column, value) ROC AUC of both models on the same holdout rows. Slices below
    ``min_rows`` or where either AUC is undefined get ``delta`` None: they are shown, not judged."""
    champion_auc = {(col, r["value"]): r["roc_auc"] for col, rows in (champion or {}).items() for r in rows}
    out = []
    for col, rows in candidate.items():
        for r in rows:
            theirs = champion_auc.get((col, r["value"]))
            comparable = r["rows"] >= min_rows and r["roc_auc"] is not None and theirs is not None
            out.append({"column": col, "value": r["value"], "rows": r["rows"], "candidate_roc_auc": r["roc_auc"],
                        "champion_roc_auc": theirs,
                        "delta": round(r["roc_auc"] - theirs, 5) if comparable else None})
    return out


def no_regression(candidate: dict[str, float], champion: dict[str, float] | None, champion_version: str | None,
                  t: Thresholds, recent: dict[str, dict[str, float]] | None = None) -> GateResult:
    """The candidate may not lose more than the tolerance in ROC AUC, nor gain more than the
    tolerance in log loss, against the champion on the same holdout. No champion: passes.

    ``recent`` holds the metrics of the last few champions (version -> metrics) on that same
    holdout. Comparing with the champion alone lets quality slide by up to the tolerance at every
    promotion; comparing also with the best of the recent champions bounds the slide over that
    window to one tolerance, e.g. 0.900 -> 0.894 passes, 0.894 -> 0.888 does not (vs 0.900)."""
    if champion is None:
        return GateResult(NO_REGRESSION, True, "no champion yet: the first model is judged on absolute quality alone",
                          {"has_champion": 0.0})
    references = {**(recent or {}), champion_version: champion}
    auc_version = max(references, key=lambda v: references[v]["roc_auc"])
    loss_version = min(references, key=lambda v: references[v]["log_loss"])
    auc_delta = candidate["roc_auc"] - champion["roc_auc"]
    loss_delta = candidate["log_loss"] - champion["log_loss"]
    auc_excess = max(0.0, -auc_delta - t.max_roc_auc_drop)
    loss_excess = max(0.0, loss_delta - t.max_log_loss_increase)
    slide_auc = candidate["roc_auc"] - references[auc_version]["roc_auc"]
    slide_loss = candidate["log_loss"] - references[loss_version]["log_loss"]
    slide_auc_excess = max(0.0, -slide_auc - t.max_roc_auc_drop)
    slide_loss_excess = max(0.0, slide_loss - t.max_log_loss_increase)
    problems = []
    if auc_excess > 0:
        problems.append(f"ROC AUC {candidate['roc_auc']:.4f} vs champion v{champion_version} {champion['roc_auc']:.4f}: "
                        f"{auc_delta:+.4f}, beyond the allowed -{t.max_roc_auc_drop} by {auc_excess:.4f}")
    elif slide_auc_excess > 0:
        problems.append(f"ROC AUC {candidate['roc_auc']:.4f} vs v{auc_version} {references[auc_version]['roc_auc']:.4f}, "
                        f"the best of the last {len(references)} champions on this holdout: {slide_auc:+.4f}, beyond "
                        f"the allowed -{t.max_roc_auc_drop} by {slide_auc_excess:.4f} (quality may not slide a "
                        "tolerance at every promotion)")
    if loss_excess > 0:
        problems.append(f"log loss {candidate['log_loss']:.4f} vs champion v{champion_version} {champion['log_loss']:.4f}: "
                        f"{loss_delta:+.4f}, beyond the allowed +{t.max_log_loss_increase} by {loss_excess:.4f}")
    elif slide_loss_excess > 0:
        problems.append(f"log loss {candidate['log_loss']:.4f} vs v{loss_version} {references[loss_version]['log_loss']:.4f}, "
                        f"the best of the last {len(references)} champions on this holdout: {slide_loss:+.4f}, beyond "
                        f"the allowed +{t.max_log_loss_increase} by {slide_loss_excess:.4f} (quality may not slide a "
                        "tolerance at every promotion)")
    description = "; ".join(problems) or (
        f"vs champion v{champion_version}: ROC AUC {auc_delta:+.4f} (allowed -{t.max_roc_auc_drop}), "
        f"log loss {loss_delta:+.4f} (allowed +{t.max_log_loss_increase}); vs the best of the last "
        f"{len(references)} champion(s): ROC AUC {slide_auc:+.4f} (v{auc_version}), log loss {slide_loss:+.4f} "
        f"(v{loss_version})")
    return GateResult(NO_REGRESSION, not problems, description, {
        "has_champion": 1.0, "roc_auc_delta": auc_delta, "log_loss_delta": loss_delta,
        "roc_auc_excess": auc_excess, "log_loss_excess": loss_excess,
        "max_roc_auc_drop": t.max_roc_auc_drop, "max_log_loss_increase": t.max_log_loss_increase,
        "champions_compared": float(len(references)), "best_recent_roc_auc": references[auc_version]["roc_auc"],
        "best_recent_log_loss": references[loss_version]["log_loss"],
        "slide_roc_auc_excess": slide_auc_excess, "slide_log_loss_excess": slide_loss_excess,
    })


def no_slice_regression(slices: list[dict], has_champion: bool, t: Thresholds) -> GateResult:
    """No comparable slice may lose more ROC AUC than ``max_slice_roc_auc_drop``. Rows come
    from ``compare_slices``. No champion: passes."""
    if not has_champion:
        return GateResult(NO_SLICE_REGRESSION, True, "no champion yet: no slice to compare", {"has_champion": 0.0})
    compared = [s for s in slices if s["delta"] is not None]
    regressed = sorted((s for s in compared if -s["delta"] > t.max_slice_roc_auc_drop), key=lambda s: s["delta"])
    worst = min(compared, key=lambda s: s["delta"], default=None)
    if regressed:
        description = "; ".join(
            f"{s['column']}={s['value']} ({s['rows']} rows): ROC AUC {s['delta']:+.4f}, beyond the allowed "
            f"-{t.max_slice_roc_auc_drop} by {-s['delta'] - t.max_slice_roc_auc_drop:.4f}" for s in regressed)
    elif worst is None:
        description = f"no slice has >= {t.min_slice_rows} holdout rows with both classes: nothing to compare"
    else:
        description = (f"{len(compared)} slice(s) compared; worst {worst['column']}={worst['value']} "
                       f"ROC AUC {worst['delta']:+.4f} (allowed -{t.max_slice_roc_auc_drop})")
    return GateResult(NO_SLICE_REGRESSION, not regressed, description, {
        "has_champion": 1.0, "slices_compared": float(len(compared)), "slices_regressed": float(len(regressed)),
        "worst_slice_delta": float(worst["delta"]) if worst else 0.0,
        "worst_excess": max(0.0, -worst["delta"] - t.max_slice_roc_auc_drop) if worst else 0.0,
        "max_slice_roc_auc_drop": t.max_slice_roc_auc_drop,
    })


def task_gate_descriptions(task: str, primary: str) -> dict[str, str]:
    """What each gate checks for a use case: today's wording for binary judged by ROC AUC, the
    primary metric's otherwise."""
    if task == "binary" and primary == "roc_auc":
        return GATE_DESCRIPTIONS
    return {**GATE_DESCRIPTIONS,
            MINIMUM_QUALITY: f"Holdout {primary} meets the use case's bound (thresholds.min_primary_metric).",
            BEATS_BASELINE: f"{primary} improves on the trivial baseline by thresholds.min_lift_over_baseline.",
            NO_REGRESSION: f"No {primary} loss beyond the tolerance vs the champion, nor vs the best of the last "
                           f"{RECENT_CHAMPIONS} champions on the same holdout (passes without a champion).",
            NO_SLICE_REGRESSION: f"No slice of slice_columns loses {primary} vs the champion beyond the tolerance."}


def latency_within_budget(latency_ms: float, rows: int, t: Thresholds) -> GateResult:
    excess = max(0.0, latency_ms - t.max_batch_latency_ms)
    return GateResult(
        LATENCY_BUDGET, excess == 0.0,
        f"prediction latency for {rows} rows {latency_ms:.1f} ms (budget {t.max_batch_latency_ms:g} ms"
        + (f", over by {excess:.1f} ms)" if excess else ")"),
        {"latency_ms": latency_ms, "batch_rows": float(rows), "budget_ms": t.max_batch_latency_ms, "excess_ms": excess},
    )


def size_within_budget(size_mb: float, t: Thresholds) -> GateResult:
    excess = max(0.0, size_mb - t.max_model_size_mb)
    return GateResult(
        SIZE_BUDGET, excess == 0.0,
        f"logged model {size_mb:.2f} MB (budget {t.max_model_size_mb:g} MB" + (f", over by {excess:.2f} MB)" if excess else ")"),
        {"size_mb": size_mb, "budget_mb": t.max_model_size_mb, "excess_mb": excess},
    )


def minimum_quality(metrics: dict[str, float], t: Thresholds) -> GateResult:
    problems = []
    if metrics["roc_auc"] < t.min_roc_auc:
        problems.append(f"ROC AUC {metrics['roc_auc']:.4f} < {t.min_roc_auc}")
    if t.max_log_loss is not None and metrics["log_loss"] > t.max_log_loss:
        problems.append(f"log loss {metrics['log_loss']:.4f} > {t.max_log_loss}")
    return GateResult(
        MINIMUM_QUALITY, not problems,
        "; ".join(problems) or f"ROC AUC {metrics['roc_auc']:.4f} >= {t.min_roc_auc}",
        {"roc_auc": metrics["roc_auc"], "min_roc_auc": t.min_roc_auc,
         "shortfall": max(0.0, t.min_roc_auc - metrics["roc_auc"])},
    )


def beats_baseline(metrics: dict[str, float], baseline: dict[str, float], t: Thresholds) -> GateResult:
    lift = metrics["roc_auc"] - baseline["roc_auc"]
    better_loss = metrics["log_loss"] < baseline["log_loss"]
    passed = lift >= t.min_lift_over_baseline and better_loss
    return GateResult(
        BEATS_BASELINE, passed,
        f"ROC AUC lift over the prior-only baseline {lift:+.4f} (needs >= {t.min_lift_over_baseline}); "
        f"log loss {metrics['log_loss']:.4f} vs baseline {baseline['log_loss']:.4f}",
        {"roc_auc_lift": lift, "min_lift": t.min_lift_over_baseline,
         "log_loss": metrics["log_loss"], "baseline_log_loss": baseline["log_loss"]},
    )
