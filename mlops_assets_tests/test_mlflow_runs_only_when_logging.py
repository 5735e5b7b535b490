"""Only the steps that log something create MLflow runs: a Dagster run whose steps use the
MLflow resource without logging (the registry, a champion lookup) leaves no run in the
experiment, and a step that logs creates one run, tagged with the Dagster run and job, with no
empty run named after the job beside it."""
import dagster as dg

from mlops_assets import settings


def test_a_job_creates_mlflow_runs_only_for_steps_that_log(data_dir):
    from mlops_assets.chain.resources import MlflowResource

    @dg.asset
    def looks_up(mlflow: MlflowResource) -> None:
        mlflow.client().search_registered_models()  # uses MLflow, logs nothing

    @dg.asset(deps=[looks_up])
    def logs(mlflow: MlflowResource) -> dg.MaterializeResult:
        import mlflow as mlflow_lib

        with mlflow.start_run("logs-step", {"mlops.kind": "test"}) as run:
            mlflow_lib.log_metric("x", 1.0)
        return dg.MaterializeResult(metadata={"run_id": run.info.run_id})

    settings.fill_env_defaults()
    resources = {"mlflow": MlflowResource.from_env()}
    quiet = dg.materialize([looks_up], resources=resources)
    both = dg.materialize([looks_up, logs], resources=resources)
    assert quiet.success and both.success

    client = MlflowResource.from_settings().client()
    experiment = client.get_experiment_by_name(settings.mlflow_experiment())
    runs = client.search_runs([experiment.experiment_id])
    assert [r.data.tags.get("mlflow.runName") for r in runs] == ["logs-step"], \
        [(r.data.tags.get("mlflow.runName"), r.data.metrics) for r in runs]
    (run,) = runs
    assert run.data.tags["dagster_run_id"] == both.run_id and run.data.tags["dagster_job"] == both.job_def.name
    assert run.data.metrics == {"x": 1.0} and run.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in run.data.tags
