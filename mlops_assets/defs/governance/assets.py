"""champion_model: moves the registry's `champion` alias to the evaluated candidate when, and
only when, every gate on model_evaluation passed for that candidate."""

import dagster as dg

from mlops_assets.automation import after_upstream
from mlops_assets.governance import rules
from mlops_assets.lineage import CHAMPION, EVALUATION, key
from mlops_assets.use_cases.config import UseCase


def build_champion_model(uc: UseCase) -> dg.AssetsDefinition:
    eval_key = key(uc, EVALUATION)

    @dg.asset(
        key=key(uc, CHAMPION),
        deps=[eval_key],
        group_name=uc.name,
        kinds={"mlflow"},
        # Promote as soon as an evaluation's blocking checks all passed.
        automation_condition=after_upstream(),
        description=f"The `champion` alias of {uc.registered_model_name} in the MLflow registry. Moves to the "
                    "evaluated candidate only when all of model_evaluation's gates passed for it; records the "
                    "previous champion on the new version (for `mlops-assets rollback`).",
    )
    def champion_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from mlops_assets.governance import registry

        # Blocking checks already stop this step in the run that evaluated the candidate. The
        # step checks again from the instance so that materializing it on its own (UI, backfill,
        # retry) can never promote a candidate whose gates failed, never ran, or are stale.
        event = context.instance.get_latest_materialization_event(eval_key)
        if event is None or event.asset_materialization is None:
            raise dg.Failure(f"{eval_key.to_user_string()} has never been materialized: nothing to promote")
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        if "candidate_version" not in meta:
            raise dg.Failure(f"the latest {eval_key.to_user_string()} predates champion/challenger evaluation "
                             "(no candidate_version): re-materialize it")
        candidate_version = str(meta["candidate_version"])
        evaluated_against = None if meta.get("champion_version") in (None, "none") else str(meta["champion_version"])
        verdicts = [_verdict(context.instance, dg.AssetCheckKey(eval_key, gate), event.run_id) for gate in rules.ALL_GATES]

        client = registry.client()
        current = registry.champion_version(client, uc.registered_model_name)
        decision = rules.promotion_decision(verdicts, rules.ALL_GATES, candidate_version, evaluated_against, current)
        url = registry.model_version_url(uc.registered_model_name, candidate_version)
        if decision.already_champion:
            context.log.info(decision.summary)
            return dg.MaterializeResult(metadata={"promoted": False, "reason": decision.summary,
                                                  "champion_version": current,
                                                  "mlflow_model_version_url": dg.MetadataValue.url(url)})
        if not decision.promote:
            # A refusal fails the step rather than materializing `promoted: false`: the champion
            # did not change, so no new materialization should tell downstream assets (batch
            # scoring) that it did, and a failed run is what the UI and run alerts surface.
            raise dg.Failure(
                description=f"{uc.registered_model_name} v{candidate_version} NOT promoted; champion stays "
                            f"{'v' + current if current else 'unset'}. " + decision.summary,
                metadata={"candidate_version": candidate_version, "champion_version": current or "none",
                          "failed_gates": dg.MetadataValue.json(
                              [v.gate for v in verdicts if v.passed is not True]),
                          "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons))},
            )
        quality = {k: float(meta[f"holdout_{k}"]) for k in ("roc_auc", "log_loss") if f"holdout_{k}" in meta}
        registry.promote(client, uc.registered_model_name, candidate_version, current, context.run.run_id,
                         quality if len(quality) == 2 else None)
        if current is None:
            # An empty registry is also what a lost or mis-pointed MLflow store looks like: say so.
            comparison = f"first model: no champion in registry {registry.display_uri(client.tracking_uri)}"
            context.log.warning(f"promoted {uc.registered_model_name} v{candidate_version} as the {comparison}; "
                                "it was compared with no previous champion. If one existed, check MLFLOW_TRACKING_URI.")
        else:
            comparison = str(meta.get("comparison") or f"vs champion v{current}")
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
        })

    return champion_model


def _verdict(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, evaluation_run_id: str) -> rules.Verdict:
    record = instance.get_latest_asset_check_evaluation_record(check_key)
    if record is None:
        return rules.Verdict(check_key.name, None, "never evaluated")
    if record.run_id != evaluation_run_id:
        return rules.Verdict(check_key.name, None, f"latest result is from run {record.run_id}, "
                                                   f"not the evaluation run {evaluation_run_id}")
    evaluation = record.evaluation
    if evaluation is None or not hasattr(evaluation, "passed"):
        return rules.Verdict(check_key.name, None, f"status {record.status.value}")
    return rules.Verdict(check_key.name, bool(evaluation.passed), evaluation.description or "")
