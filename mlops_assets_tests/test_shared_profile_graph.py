"""Issue 11 #1: the demo graph on the shared profile (MLOPS_PROFILE=shared). Landing files load
into a PostgreSQL warehouse (COPY), dbt builds the features there with its `postgres` target,
training, evaluation, promotion, scoring and drift run as on the embedded profile, MLflow's
tracking and registry and the Dagster instance live in PostgreSQL too. The same results as the
embedded end-to-end test (test_pipeline_integration.py) are checked, read from PostgreSQL."""
import datetime as dt

import dagster as dg
import pytest

from mlops_assets import settings
from mlops_assets.instance import home as instance_home
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)
DAYS, ROWS = 20, 300


@pytest.fixture
def shared_profile(data_dir, postgres_url, monkeypatch, tmp_path):
    """A fresh data folder and three fresh databases on the test server, the shared profile on."""
    from mlops_assets_tests.pg_server import drop_database, fresh_database

    dbs = {role: fresh_database(postgres_url, f"e2e_{role}") for role in ("dagster", "mlflow", "warehouse")}
    for name in (settings.DBT_TARGET_ENV, *settings.WAREHOUSE_PG_ENV.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.PROFILE_ENV, "shared")
    monkeypatch.setenv(settings.POSTGRES_URL_ENV, postgres_url)
    monkeypatch.setenv(settings.DAGSTER_PG_URL_ENV, dbs["dagster"])
    monkeypatch.setenv(settings.TRACKING_URI_ENV, dbs["mlflow"])
    monkeypatch.setenv(settings.WAREHOUSE_URL_ENV, dbs["warehouse"])
    monkeypatch.setenv(settings.ARTIFACT_ROOT_ENV, (tmp_path / "artifacts").as_uri())
    # dbt's own files of this test (it parses the project for the postgres target)
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    instance_home.ensure_local_env()  # dagster.yaml on PostgreSQL in this DAGSTER_HOME
    yield dbs
    for url in dbs.values():
        drop_database(url)


def _pg_rows(url, sql):
    import psycopg2

    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def _metadata(instance, name):
    event = instance.get_latest_materialization_event(dg.AssetKey(["churn", name]))
    assert event is not None, f"churn/{name} was not materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_demo_graph_on_the_shared_profile(shared_profile, dbt_manifest):
    import mlflow

    from mlops_assets.orchestrate import run_pipeline

    write_days(settings.landing_root() / "churn", day_range(D0, DAYS), SimulationConfig(rows_per_day=ROWS))
    instance = dg.DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    assert run_pipeline(only=["churn"])

    # rows through every layer, in the PostgreSQL warehouse
    wh = shared_profile["warehouse"]
    assert _pg_rows(wh, "SELECT count(*) FROM raw.churn") == [(DAYS * ROWS,)]
    assert _pg_rows(wh, "SELECT count(*) FROM main.features_churn") == [(DAYS * ROWS,)]
    splits = dict(_pg_rows(wh, "SELECT _split, count(*) FROM ml.churn_training_set GROUP BY 1"))
    assert splits == {"train": 13 * ROWS, "holdout": 7 * ROWS}
    last = (D0 + dt.timedelta(days=DAYS - 1)).isoformat()
    assert _pg_rows(wh, "SELECT count(*), min(event_ts)::date::text FROM predictions.churn") == [(ROWS, last)]
    # the raw load's bookkeeping is there too (the file index), one row per file and day
    assert _pg_rows(wh, "SELECT count(*) FROM raw._file_days WHERE use_case = 'churn'") == [(DAYS,)]

    # a champion in the MLflow registry on PostgreSQL, with the run Dagster logged
    model_md = _metadata(instance, "candidate_model")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri(),
                                 registry_uri=settings.mlflow_tracking_uri())
    run = client.get_run(model_md["mlflow_run_id"])
    assert run.data.metrics["holdout_roc_auc"] > 0.7
    assert run.data.metrics["holdout_roc_auc"] > run.data.metrics["baseline_roc_auc"] + 0.1
    name = model_md["registered_model"]
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == model_md["registered_version"]  # the first candidate passed the gates
    assert _pg_rows(shared_profile["mlflow"], "SELECT name FROM registered_models") == [(name,)]

    # drift of the latest day, computed from the PostgreSQL rows
    drift_md = _metadata(instance, "drift_report")
    assert drift_md["current_day"] == last and drift_md["drift_share"] < 0.3, drift_md["drifted_columns"]

    # every run is stored in the Dagster instance's PostgreSQL database, and succeeded
    runs = _pg_rows(shared_profile["dagster"], "SELECT status, count(*) FROM runs GROUP BY 1")
    assert dict(runs).get("SUCCESS", 0) >= 3 and set(dict(runs)) == {"SUCCESS"}, runs
