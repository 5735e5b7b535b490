"""Issue 11 #1: the shared profile selected by MLOPS_PROFILE. Settings resolution and errors,
the dagster.yaml it writes (a real Dagster instance on PostgreSQL from it), `prepare` creating
the databases on a real server, and MLflow tracking + registry on PostgreSQL through the
project's resource in a real Dagster run."""

import os

import dagster as dg
import pytest
import yaml

from mlops_assets import settings
from mlops_assets.instance import home as instance_home

SECRET = "pa55-s3cret"
SHARED_VARS = (settings.PROFILE_ENV, settings.POSTGRES_URL_ENV, settings.DAGSTER_PG_URL_ENV,
               settings.WAREHOUSE_URL_ENV, settings.TRACKING_URI_ENV, settings.DBT_TARGET_ENV,
               settings.ARTIFACT_ROOT_ENV, settings.EXPERIMENT_ENV, settings.MLFLOW_UI_URL_ENV,
               settings.DUCKDB_PATH_ENV, *settings.WAREHOUSE_PG_ENV.values())


@pytest.fixture
def clean_env(data_dir, monkeypatch):
    """No profile variable set; whatever a test (or fill_env_defaults, ensure_local_env) puts
    in them is undone afterwards, so that no later test runs dbt on the postgres target."""
    for name in SHARED_VARS:
        monkeypatch.setenv(name, "")  # records the value to restore (or its absence)
        monkeypatch.delenv(name)
    return monkeypatch


def _shared(monkeypatch, url: str) -> None:
    monkeypatch.setenv(settings.PROFILE_ENV, "shared")
    monkeypatch.setenv(settings.POSTGRES_URL_ENV, url)


# --- settings ----------------------------------------------------------------------------------

def test_embedded_is_the_default_and_keeps_its_stores(clean_env, data_dir):
    assert settings.profile() == "embedded"
    assert settings.warehouse_url() is None and settings.dagster_pg_url() is None
    assert settings.mlflow_tracking_uri().startswith("sqlite:///")
    assert settings.dbt_target() == "local"
    assert settings.POSTGRES_URL_ENV not in settings.resource_env_values()


def test_an_unknown_profile_names_the_variable_and_the_choices(clean_env):
    clean_env.setenv(settings.PROFILE_ENV, "cluster")
    with pytest.raises(settings.SettingsError, match=r"MLOPS_PROFILE='cluster'.*embedded, shared"):
        settings.profile()
    from mlops_assets.cli import main

    with pytest.raises(SystemExit, match="MLOPS_PROFILE='cluster'"):
        main(["fields"])


def test_shared_derives_three_databases_from_one_server_url(clean_env):
    # A database part in the base URL is replaced; the query (sslmode) is kept.
    _shared(clean_env, f"postgres://team:{SECRET}@db.example:5433/ignored?sslmode=require")
    assert settings.profile() == "shared"
    assert settings.postgres_base_url() == f"postgresql://team:{SECRET}@db.example:5433?sslmode=require"
    # SQLAlchemy users (Dagster, MLflow) get psycopg2 named; the warehouse (psycopg2) a libpq URL.
    assert settings.dagster_pg_url() == f"postgresql+psycopg2://team:{SECRET}@db.example:5433/mlops_dagster?sslmode=require"
    assert settings.mlflow_tracking_uri() == f"postgresql+psycopg2://team:{SECRET}@db.example:5433/mlops_mlflow?sslmode=require"
    assert settings.warehouse_url() == f"postgresql://team:{SECRET}@db.example:5433/mlops_warehouse?sslmode=require"
    assert settings.dbt_target() == "postgres"
    values = settings.resource_env_values()
    assert values[settings.WAREHOUSE_PG_ENV["host"]] == "db.example"
    assert values[settings.WAREHOUSE_PG_ENV["port"]] == "5433"
    assert values[settings.WAREHOUSE_PG_ENV["password"]] == SECRET
    assert values[settings.WAREHOUSE_PG_ENV["dbname"]] == "mlops_warehouse"
    assert values[settings.WAREHOUSE_PG_ENV["sslmode"]] == "require"
    assert SECRET not in " ".join(settings.fill_env_defaults())  # names only
    assert os.environ[settings.WAREHOUSE_PG_ENV["user"]] == "team"


def test_shared_overrides_win(clean_env):
    _shared(clean_env, "postgresql://team@db.example:5432")
    clean_env.setenv(settings.DAGSTER_PG_URL_ENV, "postgresql://ops@other:5432/dagster_prod")
    clean_env.setenv(settings.WAREHOUSE_URL_ENV, "postgresql+psycopg2://wh@dw:5432/facts")
    clean_env.setenv(settings.TRACKING_URI_ENV, "http://mlflow.example:5000")
    clean_env.setenv(settings.DBT_TARGET_ENV, "databricks")
    assert settings.dagster_pg_url() == "postgresql+psycopg2://ops@other:5432/dagster_prod"
    assert settings.warehouse_url() == "postgresql://wh@dw:5432/facts"
    assert settings.mlflow_tracking_uri() == "http://mlflow.example:5000"
    assert settings.dbt_target() == "databricks"
    # an MLflow server has its own database: prepare creates only the other two
    assert set(settings.shared_database_urls()) == {"dagster", "warehouse"}


def test_shared_without_a_usable_server_url_says_what_is_expected(clean_env):
    clean_env.setenv(settings.PROFILE_ENV, "shared")
    with pytest.raises(settings.SettingsError, match="MLOPS_PROFILE=shared needs MLOPS_POSTGRES_URL"):
        settings.resource_env_values()
    clean_env.setenv(settings.POSTGRES_URL_ENV, f"mysql://u:{SECRET}@h:3306")
    with pytest.raises(settings.SettingsError, match="MLOPS_POSTGRES_URL=.*not a PostgreSQL URL") as err:
        settings.warehouse_url()
    assert SECRET not in str(err.value)


# --- dagster.yaml ------------------------------------------------------------------------------

def test_shared_dagster_yaml_stores_the_instance_in_postgres_without_a_password(clean_env, tmp_path):
    from mlops_assets.instance.concurrency import instance_concurrency_yaml

    _shared(clean_env, f"postgresql://team:{SECRET}@db.example:5432")
    text = instance_home.dagster_yaml()
    assert SECRET not in text
    config = yaml.safe_load(text)
    assert config["storage"] == {"postgres": {"postgres_url": {"env": settings.DAGSTER_PG_URL_ENV}}}
    assert config["concurrency"] == yaml.safe_load(instance_concurrency_yaml("shared"))["concurrency"]
    embedded = yaml.safe_load(instance_home.dagster_yaml("embedded"))
    assert "storage" not in embedded
    assert {k: v for k, v in config.items() if k not in ("storage", "concurrency")} == \
        {k: v for k, v in embedded.items() if k != "concurrency"}
    # Switching profiles rewrites our file (both headers are ours), a user's file stays.
    home = tmp_path / "home"
    home.mkdir()
    assert instance_home.write_dagster_yaml(home, "embedded")
    assert instance_home.write_dagster_yaml(home, "shared") and "postgres" in (home / "dagster.yaml").read_text()
    assert not instance_home.write_dagster_yaml(home, "shared")


@pytest.mark.integration
def test_a_dagster_instance_runs_on_postgres_from_the_written_yaml(clean_env, tmp_path, postgres_url):
    from mlops_assets_tests.pg_server import drop_database, fresh_database

    db = fresh_database(postgres_url, "dagster")
    try:
        _shared(clean_env, postgres_url)
        clean_env.setenv(settings.DAGSTER_PG_URL_ENV, db)  # a bare postgresql:// as a user writes it
        clean_env.setenv("DAGSTER_HOME", str(tmp_path / "home"))
        instance_home.ensure_local_env()
        assert os.environ[settings.DAGSTER_PG_URL_ENV].startswith("postgresql+psycopg2://")
        instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"

            @dg.asset
            def stored() -> int:
                return 1

            result = dg.materialize([stored], instance=instance)
            assert result.success
            runs = instance.get_runs()
            assert [r.run_id for r in runs] == [result.run_id] and runs[0].is_success
            assert instance.get_latest_materialization_event(dg.AssetKey("stored")) is not None
        finally:
            instance.dispose()
        # the rows are in PostgreSQL, not in files under DAGSTER_HOME
        import psycopg2

        con = psycopg2.connect(settings.libpq_url(db))
        with con, con.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs")
            assert cur.fetchone()[0] == 1
        con.close()
    finally:
        drop_database(db)


# --- prepare -----------------------------------------------------------------------------------

@pytest.mark.integration
def test_prepare_creates_the_missing_databases_once(clean_env, tmp_path, postgres_url):
    import uuid

    import psycopg2

    from mlops_assets.cli import prepare
    from mlops_assets_tests.pg_server import drop_database

    prefix = f"prep_{uuid.uuid4().hex[:8]}"
    urls = {role: f"{postgres_url}/{prefix}_{role}" for role in ("dagster", "mlflow", "warehouse")}
    _shared(clean_env, postgres_url)
    clean_env.setenv(settings.DAGSTER_PG_URL_ENV, urls["dagster"])
    clean_env.setenv(settings.TRACKING_URI_ENV, urls["mlflow"])
    clean_env.setenv(settings.WAREHOUSE_URL_ENV, urls["warehouse"])
    # dbt parse writes its manifest here, not over the project's target/ that other runs load
    clean_env.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    clean_env.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    try:
        prepare()
        con = psycopg2.connect(f"{postgres_url}/postgres")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
            assert sorted(r[0] for r in cur.fetchall()) == sorted(f"{prefix}_{r}" for r in urls)
        con.close()
        manifest = (tmp_path / "target" / "manifest.json").read_text()
        assert '"adapter_type": "postgres"' in manifest  # parsed for the shared profile's target

        from mlops_assets.warehouse.shared import ensure_databases

        assert ensure_databases(settings.shared_database_urls(), log=lambda m: None) == []  # all there
    finally:
        for url in urls.values():
            drop_database(url)


def test_prepare_names_the_server_without_its_password_when_it_cannot_connect(clean_env):
    from mlops_assets.cli import prepare
    from mlops_assets_tests.pg_server import free_port

    port = free_port()
    _shared(clean_env, f"postgresql://team:{SECRET}@127.0.0.1:{port}")
    with pytest.raises(SystemExit) as err:
        prepare()
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "Connection refused" in msg and "Check that the server runs" in msg
    assert SECRET not in msg


# --- MLflow on PostgreSQL ----------------------------------------------------------------------

@pytest.mark.integration
def test_mlflow_tracks_and_registers_in_postgres_through_the_resource(clean_env, tmp_path, postgres_url):
    """A Dagster run logs a model through MlflowResource (dagster-mlflow's parent run, a nested
    step run) into an MLflow store on PostgreSQL, registers it and sets the champion alias; the
    model loads back by version outside the run."""
    import numpy as np

    from mlops_assets.chain.resources import MlflowResource
    from mlops_assets_tests.pg_server import drop_database, fresh_database

    db = fresh_database(postgres_url, "mlflow")
    try:
        _shared(clean_env, postgres_url)
        clean_env.setenv(settings.TRACKING_URI_ENV, db)  # bare postgresql://: the resource names psycopg2
        clean_env.setenv(settings.ARTIFACT_ROOT_ENV, (tmp_path / "artifacts").as_uri())

        @dg.asset
        def registered(mlflow: MlflowResource) -> dg.MaterializeResult:
            import mlflow as mlflow_lib
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
            with mlflow.start_run("train") as run:
                mlflow_lib.log_metric("auc", 0.9)
                info = mlflow_lib.sklearn.log_model(model, name="model")
            client = mlflow.client()
            mv = mlflow_lib.register_model(info.model_uri, "pg_model")
            client.set_registered_model_alias("pg_model", "champion", mv.version)
            return dg.MaterializeResult(metadata={"run_id": run.info.run_id, "version": str(mv.version)})

        settings.fill_env_defaults()
        result = dg.materialize([registered], resources={"mlflow": MlflowResource.from_env()})
        assert result.success
        meta = {k: v.value for k, v in result.asset_materializations_for_node("registered")[0].metadata.items()}

        resource = MlflowResource.from_settings()
        client = resource.client()
        run = client.get_run(meta["run_id"])
        assert run.data.metrics["auc"] == 0.9 and run.info.status == "FINISHED"
        assert run.data.tags["dagster_run_id"] == result.run_id
        assert client.get_experiment(run.info.experiment_id).artifact_location == (tmp_path / "artifacts").as_uri()
        assert str(client.get_model_version_by_alias("pg_model", "champion").version) == meta["version"]
        model = resource.load_model("pg_model", meta["version"])
        assert list(model.predict(np.array([[0.0], [3.0]]))) == [0, 1]
        import psycopg2  # the registry's rows are in the PostgreSQL database

        con = psycopg2.connect(db)
        with con, con.cursor() as cur:
            cur.execute("SELECT name FROM registered_models")
            assert cur.fetchall() == [("pg_model",)]
        con.close()
    finally:
        drop_database(db)


def with_password(url: str) -> tuple[str, str]:
    """(url with a password, that password): the server's own when its URL has one (CI's
    password-authenticated service: any other would fail authentication first), else SECRET
    (a trust-authenticated throwaway server accepts any)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or 'postgres'}:{SECRET}@{host}").geturl(), SECRET


def test_with_password_keeps_a_servers_own_password():
    assert with_password("postgresql://postgres:pw@127.0.0.1:5432") == ("postgresql://postgres:pw@127.0.0.1:5432", "pw")
    assert with_password("postgresql://postgres@127.0.0.1:5") == (f"postgresql://postgres:{SECRET}@127.0.0.1:5", SECRET)


def test_mlflow_on_a_missing_postgres_database_says_to_run_prepare(postgres_url):
    import logging

    from mlops_assets.chain.resources import MlflowResource

    url, password = with_password(postgres_url)
    resource = MlflowResource(tracking_uri=f"{url}/no_such_db", artifact_root="file:///tmp/unused", experiment_name="x")
    with pytest.raises(RuntimeError, match="does not exist. Run `mlops-assets prepare`") as err:
        resource._prepare_store(logging.getLogger(__name__), None, None)
    # CI's password is "postgres", which the store's URL names anyway: look for it as a credential.
    assert f":{password}@" not in str(err.value) and (password != SECRET or SECRET not in str(err.value))
