"""Performance monitoring of a regression and a multiclass use case on real DuckDB, MLflow,
Evidently and Dagster: a day's rows land without their target and are scored by the champion,
the day's performance report waits for labels, the label file arrives, and the report's figures
equal the ones recomputed here from the stored served predictions and labels (scikit-learn's
maths). The drift report names the task's prediction drift."""
import datetime as dt
import json
import math

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from mlops_assets import settings

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 3, 5)
CLASSES = ("high", "low", "mid")


def _rows(rng, n: int, day: dt.date) -> pd.DataFrame:
    start = pd.Timestamp(day)
    return pd.DataFrame({"item_id": [f"I{i:03d}" for i in range(n)],
                         "event_ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_000, n)), unit="s"),
                         "x1": rng.normal(0, 1, n).round(4), "x2": rng.normal(0, 1, n).round(4),
                         "store": rng.choice(["north", "south"], n)})


def _target(task: str, rows: pd.DataFrame, rng) -> pd.Series:
    signal = 3 * rows["x1"] - rows["x2"] + rng.normal(0, 0.8, len(rows))
    if task == "regression":
        return (20 + signal).round(3)  # never zero: MAPE defined
    return pd.Series(np.where(signal > 1, "high", np.where(signal < -1, "low", "mid")), index=rows.index)


def _use_case_yaml(name: str, task: str, root) -> str:
    primary = "rmse" if task == "regression" else "macro_f1"
    return "\n".join([
        "type: mlops_assets.components.UseCase",
        "attributes:",
        f"  name: {name}",
        f"  task: {task}",
        f"  landing: {{folder: {json.dumps(str(root / 'landing' / name))}, pattern: '*.csv'}}",
        f"  labels: {{folder: {json.dumps(str(root / 'labels' / name))}, pattern: '*.csv'}}",
        "  first_day: 2026-03-01",
        "  last_day: 2026-03-10",
        "  entity_column: item_id",
        "  timestamp_column: event_ts",
        "  target_column: y",
        "  features: {dbt_model: null, numeric: [x1, x2], categorical: [store]}",
        # the regression's days are also reported per store (each segment's own figures)
        *(["  segment_column: store"] if task == "regression" else []),
        f"  thresholds: {{primary_metric: {primary}}}",
        "  monitoring: {min_labelled_rows: 50, min_label_coverage: 0.8, max_primary_metric_drop: 0.5}",
        "",
    ])


def _register_champion(uc, task: str, rng) -> float:
    """A champion fitted on labelled history, its holdout figure of the primary metric logged as
    model_evaluation logs it; returns that figure."""
    import mlflow
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline

    from mlops_assets.evaluation import tasks
    from mlops_assets.governance import registry

    history = _rows(rng, 600, DAY - dt.timedelta(days=3))
    y = _target(task, history, rng)
    train, holdout = slice(0, 400), slice(400, 600)
    estimator = LinearRegression() if task == "regression" else LogisticRegression(max_iter=500)
    # the numeric features only; the store column passes through scoring untouched
    model = make_pipeline(make_column_transformer(("passthrough", ["x1", "x2"])), estimator).fit(
        history[train], y[train])
    task_def = tasks.get_task(task, uc.primary.metric)
    figures = tasks.task_metrics(task_def, y[holdout].to_numpy(), tasks.predict(task_def, model, history[["x1", "x2"]][holdout]))
    # this test's store for tracking and registry alike (an earlier test's resource set both)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    mlflow.set_registry_uri(settings.mlflow_tracking_uri())
    experiment = mlflow.set_experiment(settings.mlflow_experiment())
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.sklearn.log_model(model, name="model")
        for name, value in figures.items():
            mlflow.log_metric(f"holdout_{name}", value)
    client = mlflow.MlflowClient()
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", uc.registered_model_name).version
    client.set_registered_model_alias(uc.registered_model_name, registry.CHAMPION_ALIAS, str(version))
    # the training set: its target is the reference of target drift, its holdout rows the
    # reference of prediction drift
    with duckdb.connect(str(settings.duckdb_path())) as con:
        from mlops_assets.training import data

        split = np.where(np.arange(len(history)) < 400, "train", "holdout")
        frame = history.assign(y=y, **{data.SPLIT_COLUMN: split})  # noqa: F841 (read by DuckDB)
        schema, table = data.training_table(uc).split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE TABLE {schema}.{table} AS SELECT * FROM frame")
    return figures[task_def.primary_metric]


@pytest.fixture
def world(data_dir, tmp_path, monkeypatch):
    from mlops_assets.use_cases.loader import load_use_cases

    cases = tmp_path / "use_cases"
    for name, task in (("shopdemand", "regression"), ("tiering", "multiclass")):
        (cases / name).mkdir(parents=True)
        (cases / name / "defs.yaml").write_text(_use_case_yaml(name, task, tmp_path))
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(cases))
    for name, value in settings.resource_env_values().items():
        monkeypatch.setenv(name, value)
    return {uc.name: uc for uc in load_use_cases() if uc.name in ("shopdemand", "tiering")}, tmp_path


def _materialize(asset, uc, instance):
    from mlops_assets.chain.resources import MlflowResource, warehouse_resource

    result = dg.materialize([asset], partition_key=DAY.isoformat(), instance=instance,
                            resources={"warehouse": warehouse_resource(), "mlflow": MlflowResource.from_env()})
    assert result.success
    (mat,) = result.asset_materializations_for_node(asset.op.name)
    checks = result.get_asset_check_evaluations()
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}, checks


def _recompute(uc, task: str, segment: str | None = None) -> dict:
    """The day's figures straight from served.<uc> joined with labels.<uc>, by scikit-learn
    (with `segment`: per value of that column of raw.<uc>)."""
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        df = con.execute(f"SELECT s.*, l.y AS label, r.store FROM served.{uc.name} s JOIN labels.{uc.name} l "
                         f"USING (item_id, event_ts) JOIN (SELECT DISTINCT item_id, event_ts, store FROM {uc.raw_table}) r "
                         "USING (item_id, event_ts) "
                         "WHERE CAST(s.event_ts AS DATE) = ?", [DAY]).df()
    if segment is not None:
        return {value: _figures(task, rows) for value, rows in df.groupby(segment)}
    return _figures(task, df)


def _figures(task: str, df: pd.DataFrame) -> dict:
    from sklearn import metrics as sk

    if task == "regression":
        y, p = df["label"].astype(float), df["score"]
        return {"rows": len(df), "mae": sk.mean_absolute_error(y, p), "rmse": math.sqrt(sk.mean_squared_error(y, p)),
                "r2": sk.r2_score(y, p), "mape": sk.mean_absolute_percentage_error(y, p)}
    proba = pd.DataFrame([json.loads(t) for t in df["class_probabilities"]])[list(CLASSES)]
    predicted = df["predicted_class"]
    recalls = sk.recall_score(df["label"], predicted, labels=list(CLASSES), average=None, zero_division=0)
    return {"rows": len(df), "accuracy": sk.accuracy_score(df["label"], predicted),
            "macro_f1": sk.f1_score(df["label"], predicted, average="macro"),
            "log_loss": sk.log_loss(df["label"], proba.to_numpy(), labels=list(CLASSES)),
            **{f"recall_{c}": r for c, r in zip(CLASSES, recalls) if (df["label"] == c).any()}}


@pytest.mark.parametrize(("name", "task"), [("shopdemand", "regression"), ("tiering", "multiclass")])
def test_a_days_performance_report_matches_the_stored_predictions_and_labels(world, name, task):
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.drift import build_drift_report
    from mlops_assets.chain.labels import build_labels_asset
    from mlops_assets.chain.performance import build_performance_report
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.scoring import build_batch_predictions

    use_cases, root = world
    uc = use_cases[name]
    rng = np.random.default_rng(11)
    holdout_figure = _register_champion(uc, task, rng)
    instance = dg.DagsterInstance.ephemeral()

    # the day's rows land without their target and are scored
    rows = _rows(rng, 160, DAY)
    landing = uc.landing.path()
    landing.mkdir(parents=True, exist_ok=True)
    rows.assign(y=None).to_csv(landing / f"{name}_{DAY}.csv", index=False)
    _materialize(build_raw_asset(uc), uc, instance)
    _materialize(build_batch_predictions(uc), uc, instance)
    pending, checks = _materialize(build_performance_report(uc), uc, instance)
    assert pending[handoffs.PERF_EVALUATED] is False and pending[handoffs.PERF_COVERAGE] == 0.0
    assert pending[handoffs.PERF_METRIC] == uc.primary.metric and checks[0].passed

    # the labels arrive: the report is recomputed from the stored predictions and labels
    labels = uc.labels.path()
    labels.mkdir(parents=True, exist_ok=True)
    rows[["item_id", "event_ts"]].assign(y=_target(task, rows, rng)).to_csv(labels / f"{name}_labels_{DAY}.csv",
                                                                           index=False)
    _materialize(build_labels_asset(uc), uc, instance)
    md, checks = _materialize(build_performance_report(uc), uc, instance)
    expected = _recompute(uc, task)
    assert md[handoffs.PERF_EVALUATED] is True and md["labelled_rows"] == expected.pop("rows") == 160
    for figure, value in expected.items():
        assert md[figure] == pytest.approx(value, abs=1e-5), figure
    primary = uc.primary.metric
    assert md[handoffs.PERF_VALUE] == pytest.approx(expected[primary], abs=1e-5)
    assert md[handoffs.PERF_HOLDOUT_VALUE] == pytest.approx(holdout_figure, abs=1e-5)
    (check,) = checks
    verdict = handoffs.read_performance_verdict(DAY.isoformat(), check.passed, check.metadata)
    assert verdict.evaluated and verdict.metric == primary and verdict.value == pytest.approx(expected[primary], abs=1e-5)
    direction = -1 if primary == "rmse" else 1
    assert verdict.drop == pytest.approx((holdout_figure - expected[primary]) * direction, abs=1e-5)
    assert "target_drift_score" in md and md["report"].endswith(f"performance_report_{DAY}.html")
    if uc.segment_column:  # each store's figure, recomputed from the same rows
        stores = _recompute(uc, task, segment="store")
        assert md["segment_figures"] == pytest.approx({s: stores[s][primary] for s in ("north", "south")}, abs=1e-5)

    # prediction drift of the day: predicted values (regression) or predicted classes (multiclass)
    drift, _ = _materialize(build_drift_report(uc), uc, instance)
    assert handoffs.PREDICTION_DRIFT_SCORE in drift
    if task == "multiclass":
        assert set(drift["predicted_class_shares"]["day"]) <= set(CLASSES)
