"""The whole demo graph on small data in a temporary folder: real DuckDB, real dbt, real MLflow
store, real Evidently, materialized by Dagster against a real (SQLite) instance."""
import datetime as dt
import types

import dagster as dg
import duckdb
import pytest

from mlops_assets import settings
from mlops_assets.chain import handoffs
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)


def _metadata(instance, *key):
    event = instance.get_latest_materialization_event(dg.AssetKey(list(key)))
    assert event is not None, f"{key} was not materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _keys(*names):
    return [dg.AssetKey(["churn", n]) for n in names]


def _latest_run(instance, job_name):
    run = instance.get_runs(filters=dg.RunsFilter(job_name=job_name), limit=1)[0]
    assert run.is_success, run.status

    events = [r.dagster_event for r in instance.all_logs(run.run_id) if r.dagster_event]
    return types.SimpleNamespace(run_id=run.run_id, all_events=events)


def _check(result, asset, name):
    (evaluation,) = [e.asset_check_evaluation_data for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION"
                     and e.asset_check_evaluation_data.asset_check_key.name == name
                     and e.asset_check_evaluation_data.asset_check_key.asset_key == dg.AssetKey(asset)]
    return evaluation


def test_demo_graph_end_to_end_then_drift(data_dir, dbt_manifest):
    import mlflow

    from mlops_assets.definitions import build_defs
    from mlops_assets.orchestrate import execute, run_pipeline

    folder = data_dir / "landing" / "churn"
    write_days(folder, day_range(D0, 20), SimulationConfig(rows_per_day=300))
    instance = dg.DagsterInstance.get()
    assert str(data_dir) in instance.root_directory

    assert run_pipeline(only=["churn"])
    result = _latest_run(instance, "churn_training")

    # rows in DuckDB, through every layer
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 6000
        assert con.execute("SELECT count(*) FROM main.features_churn").fetchone()[0] == 6000
        splits = dict(con.execute("SELECT _split, count(*) FROM ml.churn_training_set GROUP BY 1").fetchall())
    assert splits == {"train": 13 * 300, "holdout": 7 * 300}
    split_md = _metadata(instance, "churn", "training_set")
    assert (split_md["holdout_start"], split_md["holdout_end"]) == ("2026-01-14", "2026-01-20")

    # an MLflow run with params, metrics, Dagster's run id and a loadable model
    model_md = _metadata(instance, "churn", "candidate_model")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    run = mlflow.MlflowClient().get_run(model_md["mlflow_run_id"])
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert run.data.params["model_family"] == "hist_gradient_boosting"
    assert run.data.metrics["holdout_roc_auc"] > 0.7
    assert run.data.metrics["holdout_roc_auc"] > run.data.metrics["baseline_roc_auc"] + 0.1
    model = mlflow.sklearn.load_model(model_md["model_uri"])
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        sample = con.execute("SELECT * FROM main.features_churn LIMIT 5").df()
    probs = model.predict_proba(sample)[:, 1]
    assert ((probs >= 0) & (probs <= 1)).all()
    report = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/evaluation/report.json")
    assert set(report["slices"]) == {"plan_type", "contract"}

    eval_md = _metadata(instance, "churn", "model_evaluation")
    for metric in ("roc_auc", "f1", "log_loss", "ece"):
        assert f"holdout_{metric}" in eval_md and f"baseline_{metric}" in eval_md
    assert _check(result, ["churn", "model_evaluation"], "meets_minimum_quality").passed

    # no drift injected: the latest day looks like the training data
    drift_md = _metadata(instance, "churn", "drift_report")
    assert drift_md["drift_share"] < 0.3, drift_md["drifted_columns"]
    assert drift_md["current_day"] == "2026-01-20"
    html = settings.drift_report_path("churn")
    assert html.exists() and html.stat().st_size > 10_000

    # two more days with covariate drift: only the new files load, and drift is flagged
    write_days(folder, day_range(D0 + dt.timedelta(days=20), 2),
               SimulationConfig(rows_per_day=300, covariate_drift_from=D0 + dt.timedelta(days=20)))
    defs = build_defs()
    new_days = {"dagster/asset_partition_range_start": "2026-01-21", "dagster/asset_partition_range_end": "2026-01-22"}
    assert execute(defs, instance, "churn_daily", _keys("raw", "stg_churn", "features_churn"), tags=new_days)
    result2 = defs.resolve_job_def("churn_daily").execute_in_process(
        instance=instance, asset_selection=_keys("drift_report"), partition_key="2026-01-22")
    assert result2.success
    assert handoffs.read_rows_per_day(_metadata(instance, "churn", "raw")) == {"2026-01-21": 300, "2026-01-22": 300}
    drift_md = _metadata(instance, "churn", "drift_report")
    assert drift_md["current_day"] == "2026-01-22"
    assert drift_md["drift_share"] > 0.5
    assert {"num_support_calls", "monthly_charges", "plan_type"} <= set(drift_md["drifted_columns"])
    assert not _check(result2, ["churn", "drift_report"], "drift_below_threshold").passed


def test_bad_landing_files_are_named_and_keep_loaded_rows(data_dir, dbt_manifest):
    from mlops_assets.definitions import build_defs

    folder = data_dir / "landing" / "churn"
    write_days(folder, day_range(D0, 2), SimulationConfig(rows_per_day=50))
    defs = build_defs()
    instance = dg.DagsterInstance.get()
    raw_only = [dg.AssetKey(["churn", "raw"])]
    job = defs.resolve_job_def("churn_daily")
    two_days = {"dagster/asset_partition_range_start": "2026-01-01", "dagster/asset_partition_range_end": "2026-01-02"}
    assert job.execute_in_process(instance=instance, asset_selection=raw_only, tags=two_days).success

    # a re-delivered file for day 2 that lacks the target: the day is not touched
    (folder / "churn_2026-01-02_fix.csv").write_text(
        "customer_id,event_ts\nC1,2026-01-02 08:00:00\n")
    result = job.execute_in_process(instance=instance, asset_selection=raw_only, partition_key="2026-01-02",
                                    raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "churn_2026-01-02_fix.csv" in message and "churned" in message
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 100

    # a file that does not parse at all is in no day: other days still load, and every load's
    # landing_files_readable check fails naming it until it is fixed
    (folder / "churn_2026-01-02_fix.csv").write_text('customer_id,event_ts,churned\n"C1,2026-01-02 08:00:00,1\n')
    result = job.execute_in_process(instance=instance, asset_selection=raw_only, partition_key="2026-01-01")
    check = _check(result, ["churn", "raw"], "landing_files_readable")
    assert not check.passed and "churn_2026-01-02_fix.csv" in check.description

    # re-loading a day replaces it: no duplicates
    (folder / "churn_2026-01-02_fix.csv").unlink()
    assert job.execute_in_process(instance=instance, asset_selection=raw_only, partition_key="2026-01-02").success
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.churn").fetchone()[0] == 100


def test_main_job_names_an_unreadable_landing_file(data_dir, dbt_manifest):
    from mlops_assets.orchestrate import run_pipeline

    folder = data_dir / "landing" / "churn"
    folder.mkdir(parents=True)
    (folder / "churn_2026-01-01.csv").write_text("customer_id,churned\nC1,1\n")
    lines = []
    assert run_pipeline(only=["churn"], log=lines.append) is False
    assert any("churn_2026-01-01.csv" in line and "event_ts" in line for line in lines), lines
