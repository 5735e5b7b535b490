"""champion_model: moves the registry's `champion` alias to the evaluated candidate when, and
only when, every gate on model_evaluation passed for that candidate."""

import dagster as dg

from mlops_assets.chain import metadata as asset_metadata
from mlops_assets.chain import handoffs
from mlops_assets.chain.automation import after_upstream
from mlops_assets.evaluation import gates
from mlops_assets.governance import rules
from mlops_assets.chain.lineage import CHAMPION, EVALUATION, key
from mlops_assets.chain.resources import MlflowResource
from mlops_assets.use_cases.config import UseCase
from mlops_assets.governance import registry


def build_champion_model(uc: UseCase) -> dg.AssetsDefinition:
    eval_key = key(uc, EVALUATION)

    @dg.asset(
        key=key(uc, CHAMPION),
        deps=[eval_key],
        group_name=uc.name,
        kinds={"mlflow"},
        owners=asset_metadata.OWNERS,
        tags=asset_metadata.tags("governance", uc.name),
        # Promote as soon as an evaluation's blocking checks all passed.
        automation_condition=after_upstream(),
        description=f"The `champion` alias of {uc.registered_model_name} in the MLflow registry. Moves to the "
                    "evaluated candidate only when all of model_evaluation's gates passed for it; records the "
                    "previous champion on the new version (for `mlops-assets rollback`).",
    )
    def champion_model(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> dg.MaterializeResult:
        # Blocking checks already stop this step in the run that evaluated the candidate. The
        # step checks again from the instance so that materializing it on its own (UI, backfill,
        # retry) can never promote a candidate whose gates failed, never ran, or are stale.
        event = context.instance.get_latest_materialization_event(eval_key)
        if event is None or event.asset_materialization is None:
            raise dg.Failure(f"{eval_key.to_user_string()} has never been materialized: nothing to promote")
        try:
            evaluation = handoffs.read_evaluation(event.asset_materialization.metadata, eval_key.to_user_string())
        except handoffs.HandoffError as exc:
            raise dg.Failure(str(exc)) from exc
        candidate_version = evaluation.candidate_version
        evaluated_against = evaluation.evaluated_against
        verdicts = [_verdict(context.instance, dg.AssetCheckKey(eval_key, gate), event.run_id) for gate in gates.ALL_GATES]

        client = mlflow.client()
        current = registry.champion_version(client, uc.registered_model_name)
        decision = rules.promotion_decision(verdicts, gates.ALL_GATES, candidate_version, evaluated_against, current)
        url = mlflow.model_version_url(uc.registered_model_name, candidate_version)
        if decision.already_champion:
            context.log.info(decision.summary)
            return dg.MaterializeResult(metadata={"promoted": False, "reason": decision.summary,
                                                  "champion_version": current,
                                                  "mlflow_model_version_url": dg.MetadataValue.url(url),
                                                  **_promote_segments(context, uc, client, event)})
        if not decision.promote:
            # A refusal fails the step rather than materializing `promoted: false`: the champion
            # did not change, so no new materialization should tell downstream assets (batch
            # scoring) that it did, and a failed run is what the UI and run alerts surface.
            raise dg.Failure(
                description=f"{uc.registered_model_name} v{candidate_version} NOT promoted; champion stays "
                            f"{'v' + current if current else 'unset'}. " + decision.summary,
                metadata={"candidate_version": candidate_version, "champion_version": current or "none",
                          "failed_gates": dg.MetadataValue.json(
                              [v.name for v in verdicts if v.passed is not True]),
                          "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons))},
            )
        quality = evaluation.quality()
        registry.promote(client, uc.registered_model_name, candidate_version, current, context.run.run_id, quality)
        if current is None:
            # An empty registry is also what a lost or mis-pointed MLflow store looks like: say so.
            comparison = f"first model: no champion in registry {mlflow.display_uri()}"
            context.log.warning(f"promoted {uc.registered_model_name} v{candidate_version} as the {comparison}; "
                                "it was compared with no previous champion. If one existed, check MLFLOW_TRACKING_URI.")
        else:
            comparison = evaluation.comparison
            context.log.info(f"promoted {uc.registered_model_name} v{candidate_version} to champion "
                             f"(previous: v{current}); {url}")
        return dg.MaterializeResult(metadata={
            "promoted": True,
            "champion_version": candidate_version,
            "previous_champion": current or "none",
            "comparison": comparison,
            "registered_model": uc.registered_model_name,
            "mlflow_model_version_url": dg.MetadataValue.url(url),
            "evaluation_run_id": event.run_id,
            **_promote_segments(context, uc, client, event),
        })

    return champion_model


def _promote_segments(context, uc: UseCase, client, event) -> dict:
    """Move each segment's alias (`champion_<segment>`) to its candidate when that segment's
    gates passed in the evaluation (model_evaluation's segment_verdicts); a segment that failed
    keeps its champion, or stays on the global model when it has none. Runs once the global
    candidate passed its gates (the blocking checks stop this step otherwise). Returns the
    metadata: each segment's champion after this step and what happened to it."""
    if not uc.segment_column:
        return {}
    value = event.asset_materialization.metadata.get("segment_verdicts")
    verdicts = getattr(value, "value", value) or {}
    before = registry.segment_champions(client, uc.registered_model_name)
    rows, after = [], dict(before)
    for segment, verdict in sorted(verdicts.items()):
        version, current = str(verdict["candidate_version"]), before.get(segment)
        if verdict["passed"] and version != current:
            alias = registry.promote_segment(client, uc.registered_model_name, segment, version, current,
                                             context.run.run_id, verdict.get("quality"))
            after[segment], outcome = version, f"promoted ({alias})"
        elif verdict["passed"]:
            outcome = "already champion"
        else:
            failed = "; ".join(g["description"] for g in verdict["gates"].values() if not g["passed"])
            outcome = f"refused, keeps {'v' + current if current else 'the global model'}: {failed}"
        context.log.info(f"segment {segment!r} v{version}: {outcome}")
        rows.append(f"| {segment} | v{version} | {'v' + after[segment] if segment in after else 'global'} | "
                    f"{outcome.replace('|', '/')} |")
    table = "\n".join(["| segment | candidate | champion | outcome |", "|---|---|---|---|", *rows])
    return {"segment_champions": dg.MetadataValue.json(after), "segment_promotions": dg.MetadataValue.md(table)}


def _verdict(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, evaluation_run_id: str) -> gates.GateResult:
    """A gate's recorded result for the evaluation run (passed None: no result for it)."""
    record = instance.get_latest_asset_check_evaluation_record(check_key)
    if record is None:
        return gates.GateResult(check_key.name, None, "never evaluated")
    if record.run_id != evaluation_run_id:
        return gates.GateResult(check_key.name, None, f"latest result is from run {record.run_id}, "
                                                      f"not the evaluation run {evaluation_run_id}")
    evaluation = record.evaluation
    if evaluation is None or not hasattr(evaluation, "passed"):
        return gates.GateResult(check_key.name, None, f"status {record.status.value}")
    return gates.GateResult(check_key.name, bool(evaluation.passed), evaluation.description or "")
