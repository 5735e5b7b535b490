"""Promotion rules: which pinned versions may score, and whether an evaluated candidate becomes
the champion. The gates themselves live in mlops_assets/evaluation/gates.py; this reads their
recorded results. Nothing here touches MLflow or Dagster.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mlops_assets.evaluation.gates import GateResult
from mlops_assets.governance.registry import TAG_PROMOTED_AT


def pinned_version_refusal(model_name: str, version: str, tags: dict[str, str] | None) -> str | None:
    """Why ``version`` may not score batch predictions when pinned, or None when it may: only a
    version that was champion once (it carries the promotion tag) passed the gates. ``tags`` is
    None when the version does not exist."""
    if tags is None:
        return f"{model_name} has no version {version}"
    if TAG_PROMOTED_AT not in tags:
        return (f"{model_name} v{version} was never champion (no {TAG_PROMOTED_AT} tag): it did not pass the "
                "promotion gates. Pin a version that was champion, or set allow_unpromoted: true in the run "
                "config (or the run tag mlops/allow_unpromoted=true) to score with it anyway, recorded on the run")
    return None


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    already_champion: bool = False

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def promotion_decision(verdicts: list[GateResult], required: tuple[str, ...], candidate_version: str,
                       evaluated_against: str | None, current_champion: str | None) -> PromotionDecision:
    """``verdicts``: the gates' recorded results for the evaluation (passed None: no result).
    Promote only when every required gate passed for this evaluation, and the champion the
    candidate was compared with is still the champion (else the comparison is stale)."""
    if current_champion is not None and current_champion == candidate_version:
        # Re-running the promotion after it succeeded: nothing to move, nothing to refuse.
        return PromotionDecision(False, [f"v{candidate_version} is already the champion"], already_champion=True)
    by_gate = {v.name: v for v in verdicts}
    reasons = []
    for gate in required:
        v = by_gate.get(gate)
        if v is None or v.passed is None:
            reasons.append(f"{gate}: no result for the evaluated candidate" + (f" ({v.description})" if v and v.description else ""))
        elif not v.passed:
            reasons.append(f"{gate} failed: {v.description}")
    if evaluated_against != current_champion:
        reasons.append(f"the candidate was compared with champion {_v(evaluated_against)} but the champion is now "
                       f"{_v(current_champion)}: re-run model_evaluation")
    return PromotionDecision(not reasons, reasons)


def _v(version: str | None) -> str:
    return "none" if version is None else f"v{version}"
