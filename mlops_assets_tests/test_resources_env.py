"""Issue 8 #3: resources configured from environment variables (the UI sees names, not values),
embedded defaults with no variable set, and the one MLflow resource against a real store."""
import os

import dagster as dg
import pytest

from mlops_assets import settings

SECRET = "s3cr3t-pa55"


def test_display_uri_masks_credentials_and_tokens():
    assert settings.display_uri(f"https://user:{SECRET}@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert SECRET not in settings.display_uri(f"https://mlflow.example/x?token={SECRET}")
    assert settings.display_uri("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"


def test_unset_variables_get_the_embedded_defaults_and_follow_the_data_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.EXPERIMENT_ENV, "mine")
    for name in (settings.MLFLOW_UI_URL_ENV, settings.DBT_TARGET_ENV):
        monkeypatch.delenv(name, raising=False)
    filled = settings.fill_env_defaults()
    assert settings.EXPERIMENT_ENV not in filled  # the user's value is kept
    assert os.environ[settings.EXPERIMENT_ENV] == "mine"
    assert os.environ[settings.TRACKING_URI_ENV] == f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    assert os.environ[settings.DUCKDB_PATH_ENV] == str(data_dir / "warehouse.duckdb")
    assert os.environ[settings.DBT_TARGET_ENV] == "local"
    # A filled value is not mistaken for the user's later: moving the data folder moves it.
    other = tmp_path / "other"
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(other))
    assert settings.duckdb_path() == other / "warehouse.duckdb"
    settings.fill_env_defaults()
    assert os.environ[settings.TRACKING_URI_ENV] == f"sqlite:///{other / 'mlflow' / 'mlflow.db'}"


def test_the_ui_sees_variable_names_not_values(data_dir, dbt_manifest, monkeypatch):
    """The repository snapshot is what the webserver and GraphQL show: the resources' settings
    are the variables' names and no secret value appears anywhere in it."""
    from dagster._core.remote_representation.external_data import RepositorySnap, ResourceConfigEnvVarSnap
    from dagster._serdes import serialize_value

    monkeypatch.setenv(settings.TRACKING_URI_ENV, f"https://ml-user:{SECRET}@mlflow.example.com")
    monkeypatch.setenv(settings.DUCKDB_PATH_ENV, str(data_dir / f"{SECRET}-warehouse.duckdb"))
    from mlops_assets.definitions import build_defs

    repo = build_defs().get_repository_def()
    snap = RepositorySnap.from_def(repo, defer_snapshots=True)
    resources = {r.name: r.configured_values for r in snap.resources}
    expected = {("mlflow", "tracking_uri"): settings.TRACKING_URI_ENV,
                ("mlflow", "artifact_root"): settings.ARTIFACT_ROOT_ENV,
                ("mlflow", "experiment_name"): settings.EXPERIMENT_ENV,
                ("mlflow", "ui_url"): settings.MLFLOW_UI_URL_ENV,
                ("warehouse", "database"): settings.DUCKDB_PATH_ENV,
                ("dbt", "target"): settings.DBT_TARGET_ENV}
    for (resource, field), var in expected.items():
        value = resources[resource][field]
        assert isinstance(value, ResourceConfigEnvVarSnap) and value.name == var, (resource, field, value)
    assert SECRET not in serialize_value(snap)
    # In a run the variables resolve (test_one_mlflow_resource_... runs one); logs mask them.
    from mlops_assets.chain.resources import MlflowResource

    assert SECRET not in MlflowResource.from_settings().display_uri()


def test_the_cli_does_not_print_the_tracking_uri_credentials(data_dir, monkeypatch, capsys):
    from mlops_assets import cli

    monkeypatch.setenv(settings.TRACKING_URI_ENV, f"https://ml-user:{SECRET}@mlflow.example.com/?token={SECRET}")
    cli.main(["fields"])
    cli.where_to_look()
    out = capsys.readouterr().out
    assert "mlflow.example.com" in out and SECRET not in out


def test_one_mlflow_resource_tracks_and_registers_in_a_real_store(data_dir):
    """A run step logs through the resource's MLflow run (tagged with the Dagster run id, no
    parent run for the Dagster run) and registers through its client; the links
    point at the configured UI; the runs are closed when the step ends."""
    from mlops_assets.governance import registry
    from mlops_assets.chain.resources import MlflowResource

    @dg.asset
    def tracked(context: dg.AssetExecutionContext, mlflow: MlflowResource) -> dg.MaterializeResult:
        import mlflow as mlflow_lib

        with mlflow.start_run("tracked", {"mlops.role": "test"}) as run:
            mlflow_lib.log_metric("answer", 42.0)
            mlflow_lib.log_dict({"a": 1}, "report/a.json")
        client = mlflow.client()
        client.create_registered_model("tracked_model")
        mv = client.create_model_version("tracked_model", f"runs:/{run.info.run_id}/report", run_id=run.info.run_id)
        client.set_registered_model_alias("tracked_model", registry.CHAMPION_ALIAS, mv.version)
        return dg.MaterializeResult(metadata={
            "run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
            "run_url": dg.MetadataValue.url(mlflow.run_url(run.info.experiment_id, run.info.run_id)),
            "version_url": dg.MetadataValue.url(mlflow.model_version_url("tracked_model", mv.version))})

    os.environ[settings.MLFLOW_UI_URL_ENV] = "http://mlflow.test:5000/"
    try:
        settings.fill_env_defaults()
        result = dg.materialize([tracked], resources={"mlflow": MlflowResource.from_env()})
    finally:
        del os.environ[settings.MLFLOW_UI_URL_ENV]
    assert result.success
    meta = {k: v.value for k, v in result.asset_materializations_for_node("tracked")[0].metadata.items()}

    resource = MlflowResource.from_settings()  # the same store, resolved outside a run
    client = resource.client()
    run = client.get_run(meta["run_id"])
    assert run.data.metrics["answer"] == 42.0
    assert run.data.tags["dagster_run_id"] == result.run_id and run.info.status == "FINISHED"
    # the step's run only: no run for the Dagster run itself
    assert "mlflow.parentRunId" not in run.data.tags
    assert [r.info.run_id for r in client.search_runs([run.info.experiment_id],
                                                      f"tags.dagster_run_id = '{result.run_id}'")] == [meta["run_id"]]
    assert client.get_experiment(run.info.experiment_id).name == settings.mlflow_experiment()
    assert registry.champion_version(client, "tracked_model") == "1"
    assert meta["run_url"] == f"http://mlflow.test:5000/#/experiments/{meta['experiment_id']}/runs/{meta['run_id']}"
    assert meta["version_url"] == "http://mlflow.test:5000/#/models/tracked_model/versions/1"


def test_start_run_outside_a_run_step_is_refused(data_dir):
    from mlops_assets.chain.resources import MlflowResource

    with pytest.raises(RuntimeError, match="needs a Dagster run step"):
        with MlflowResource.from_settings().start_run("x"):
            pass
