"""Any model through the chain, on small data written here, with real DuckDB, MLflow and Dagster
materializations: a multiclass and a regression use case (an estimator by import path), a
hand-written rule and a statsmodels GLM (training functions of mlops_assets_tests/team_models.py),
and several candidates in one use case. Each is trained, gated, promoted and scored; a worse
candidate is refused by the gates with the margin named; a training function that raises fails
its run naming the function, and the champion stays."""
import datetime as dt
import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets_tests import team_models

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 3, 1)
DAYS = 14
ROWS = 80
ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "MLOPS_USE_CASE_DIRS",
            "MLOPS_MLFLOW_ARTIFACT_ROOT", "MLOPS_MLFLOW_UI_URL")


def _frame(kind: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAYS * ROWS
    x1, x2 = rng.uniform(0, 4, n), rng.normal(size=n)
    seg = rng.choice(["north", "south", "east"], n)
    if kind == "multiclass":
        score = x1 + 0.3 * rng.normal(size=n)
        y = np.where(score < 1.3, "low", np.where(score < 2.7, "mid", "high"))
    else:  # demand: a count whose mean follows the rule 2 * x1 + 1
        y = rng.poisson(2 * x1 + 1 + 0.5 * (seg == "north")).astype(float)
    day = np.repeat(np.arange(DAYS), ROWS)
    ts = [dt.datetime.combine(D0 + dt.timedelta(days=int(d)), dt.time(8)) + dt.timedelta(seconds=int(s))
          for d, s in zip(day, rng.integers(0, 36_000, n))]
    return pd.DataFrame({"id": [f"E{i:05d}" for i in range(n)], "ts": ts, "x1": x1.round(4), "x2": x2.round(4),
                         "seg": seg, "y": y, "_day": day})


def _use_case(name: str, task: str, model: dict, **extra) -> dict:
    return {"name": name, "landing": {"folder": name}, "first_day": D0.isoformat(),
            "last_day": (D0 + dt.timedelta(days=DAYS - 1)).isoformat(), "entity_column": "id",
            "timestamp_column": "ts", "task": task, "target_column": "y",
            "features": {"numeric": ["x1", "x2"], "categorical": ["seg"]}, "slice_columns": ["seg"],
            "model": model, "split": {"holdout_days": 3, "validation_days": 3},
            "retrain": {"min_new_rows": None, "on_drift": False}, **extra}


USE_CASES = {
    "kinds": ("multiclass", {"family": "random_forest", "params": {"n_estimators": 40}}),
    "demand_est": ("regression", {"estimator": "sklearn.linear_model.PoissonRegressor", "params": {"alpha": 0.01}}),
    "demand_rule": ("regression", {"training_function": "mlops_assets_tests.team_models:rule_model"}),
    "demand_glm": ("regression", {"training_function": "mlops_assets_tests.team_models:glm_model"}),
    "demand_pick": ("regression", {"candidates": [
        {"name": "constant", "estimator": "sklearn.dummy.DummyRegressor"},
        {"name": "ridge", "family": "logistic_regression"},
        {"name": "trees", "family": "hist_gradient_boosting", "params": {"max_iter": 60}},
        {"name": "rule", "training_function": "mlops_assets_tests.team_models:rule_model"}]}),
}


class Platform:
    def __init__(self, root, defs, instance):
        self.root, self.defs, self.instance = root, defs, instance
        self.assets = list(defs.get_repository_def().assets_defs_by_key.values())

    def materialize(self, name: str, steps: list[str], shuffle_labels=False, partition_key=None, tags=None):
        config = ({"ops": {f"{name}__candidate_model": {"config": {"shuffle_labels": shuffle_labels}}}}
                  if "candidate_model" in steps else None)
        return dg.materialize(self.assets, selection=[dg.AssetKey([name, s]) for s in steps], instance=self.instance,
                              run_config=config, partition_key=partition_key, tags=tags, raise_on_error=False)

    def chain(self, name: str):
        """raw for every day, then training set -> champion, then the last day scored."""
        last = D0 + dt.timedelta(days=DAYS - 1)
        raw = self.materialize(name, ["raw"], tags={"dagster/asset_partition_range_start": D0.isoformat(),
                                                    "dagster/asset_partition_range_end": last.isoformat()})
        assert raw.success, f"{name}: raw failed"
        training = self.materialize(name, ["training_set", "candidate_model", "model_evaluation", "champion_model"])
        assert training.success, f"{name}: training chain failed: {_failures(training)}"
        scoring = self.materialize(name, ["batch_predictions"], partition_key=last.isoformat())
        assert scoring.success, f"{name}: scoring failed: {_failures(scoring)}"

    def metadata(self, name: str, step: str) -> dict:
        event = self.instance.get_latest_materialization_event(dg.AssetKey([name, step]))
        assert event is not None, f"{name}/{step} was never materialized"
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}

    def client(self):
        from mlops_assets.chain.resources import MlflowResource

        return MlflowResource.from_settings().client()

    def champion(self, name: str):
        from mlops_assets.governance import registry

        return registry.champion_version(self.client(), f"{name}_model")

    def predictions(self, name: str) -> pd.DataFrame:
        from mlops_assets import settings

        with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
            return con.execute(f"SELECT * FROM predictions.{name} ORDER BY ts, id").df()


def _failures(result) -> str:
    """The failed steps' messages: a dg.Failure's description, else the error."""
    out = []
    for e in result.all_events:
        if e.event_type_value == "STEP_FAILURE":
            data = e.step_failure_data
            user = data.user_failure_data
            out.append(user.description if user and user.description else (data.error.message if data.error else ""))
    return "; ".join(out)[:3000]


def _failed_checks(result) -> dict[str, str]:
    return {e.asset_check_evaluation_data.asset_check_key.name: e.asset_check_evaluation_data.description
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed}


@pytest.fixture(scope="module")
def platform(tmp_path_factory, dbt_manifest):
    root = tmp_path_factory.mktemp("any_model") / "data"
    cases = root.parent / "use_cases"
    cases.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k in ENV_KEYS:
            mp.delenv(k, raising=False)
        mp.setenv("MLOPS_DATA_DIR", str(root))
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        mp.setenv("MLOPS_USE_CASE_DIRS", str(cases))
        (root / "dagster_home").mkdir(parents=True)
        for seed, (name, (task, model)) in enumerate(USE_CASES.items()):
            frame = _frame(task, seed)
            folder = root / "landing" / name
            folder.mkdir(parents=True)
            for d in range(DAYS):
                part = frame[frame["_day"] == d].drop(columns="_day")
                part.to_csv(folder / f"{name}_{D0 + dt.timedelta(days=d)}.csv", index=False)
            (cases / f"{name}.yaml").write_text(yaml.safe_dump(_use_case(name, task, model), sort_keys=False))
        from mlops_assets.definitions import build_defs

        defs = build_defs()
        with dg.DagsterInstance.get() as instance:
            yield Platform(root, defs, instance)


def test_multiclass_use_case_is_trained_gated_promoted_and_scored(platform):
    platform.chain("kinds")
    evaluation = platform.metadata("kinds", "model_evaluation")
    assert evaluation["primary_metric"] == "macro_f1" and evaluation["holdout_macro_f1"] > 0.7
    assert evaluation["holdout_macro_f1"] > evaluation["baseline_macro_f1"] + 0.3
    assert {"holdout_accuracy", "holdout_log_loss", "holdout_recall_low"} <= set(evaluation)
    assert all(v["passed"] for v in evaluation["gate_verdicts"].values()), evaluation["gate_verdicts"]
    assert platform.champion("kinds") == evaluation["candidate_version"]
    mv = platform.client().get_model_version("kinds_model", evaluation["candidate_version"])
    assert float(mv.tags["mlops.promoted_holdout_macro_f1"]) == pytest.approx(evaluation["holdout_macro_f1"], abs=1e-5)

    scored = platform.predictions("kinds")
    assert list(scored.columns) == ["id", "ts", "score", "predicted_class", "class_probabilities", "model_version",
                                    "scored_at"]
    assert len(scored) == ROWS and set(scored["predicted_class"]) <= {"low", "mid", "high"}
    probabilities = [json.loads(p) for p in scored["class_probabilities"]]
    assert all(set(p) == {"high", "low", "mid"} and sum(p.values()) == pytest.approx(1.0) for p in probabilities)
    assert scored["score"].tolist() == pytest.approx([max(p.values()) for p in probabilities])
    assert [max(p, key=p.get) for p in probabilities] == scored["predicted_class"].tolist()


def test_regression_estimator_by_path_is_trained_gated_promoted_and_scored(platform):
    platform.chain("demand_est")
    candidate = platform.metadata("demand_est", "candidate_model")
    assert candidate["model_family"] == "sklearn.linear_model.PoissonRegressor"
    evaluation = platform.metadata("demand_est", "model_evaluation")
    assert evaluation["primary_metric"] == "r2" and evaluation["holdout_r2"] > 0.35
    assert {"holdout_mae", "holdout_rmse", "baseline_r2"} <= set(evaluation)
    assert all(v["passed"] for v in evaluation["gate_verdicts"].values()), evaluation["gate_verdicts"]
    assert platform.champion("demand_est") == evaluation["candidate_version"]
    scored = platform.predictions("demand_est")
    assert list(scored.columns) == ["id", "ts", "score", "model_version", "scored_at"]  # the binary layout
    assert len(scored) == ROWS and (scored["score"] > 0).all()  # Poisson: a positive mean per row
    # the sklearn flavour, servable, and the requirements pinned without exporting the project
    from mlops_assets import settings
    from mlops_assets.governance import registry

    model = registry.load_model(settings.mlflow_tracking_uri(), "demand_est_model", evaluation["candidate_version"])
    assert type(model).__name__ == "Pipeline"
    import mlflow

    info = mlflow.models.get_model_info(f"models:/demand_est_model/{evaluation['candidate_version']}")
    assert "sklearn" in info.flavors
    requirements = mlflow.pyfunc.get_model_dependencies(f"models:/demand_est_model/{evaluation['candidate_version']}")
    pinned = open(requirements).read()
    assert "scikit-learn==" in pinned and "skops==" in pinned and "mlflow==" in pinned


def test_worse_candidate_is_refused_by_the_gates_with_the_margin_named(platform):
    if platform.champion("demand_est") is None:
        platform.chain("demand_est")
    champion = platform.champion("demand_est")
    result = platform.materialize("demand_est", ["candidate_model", "model_evaluation", "champion_model"],
                                  shuffle_labels=True)
    assert not result.success
    failed = _failed_checks(result)
    assert "no_regression_vs_champion" in failed
    assert f"vs champion v{champion}" in failed["no_regression_vs_champion"]
    assert "beyond the allowed -0.01 by" in failed["no_regression_vs_champion"]
    assert "beats_baseline" in failed and "short by" in failed["beats_baseline"]
    assert platform.champion("demand_est") == champion


def test_rule_training_function_runs_the_chain_and_a_raising_one_keeps_the_champion(platform, monkeypatch):
    platform.chain("demand_rule")
    candidate = platform.metadata("demand_rule", "candidate_model")
    assert candidate["model_family"] == "mlops_assets_tests.team_models:rule_model"
    evaluation = platform.metadata("demand_rule", "model_evaluation")
    assert evaluation["holdout_r2"] > 0.35
    champion = platform.champion("demand_rule")
    assert champion == evaluation["candidate_version"]
    from mlops_assets import settings
    from mlops_assets.governance import registry

    model = registry.load_model(settings.mlflow_tracking_uri(), "demand_rule_model", champion)
    assert isinstance(model, team_models.DemandRule)  # the pyfunc keeps the object itself
    # what `mlflow models serve` calls: the generic pyfunc's predict
    import mlflow

    served = mlflow.pyfunc.load_model(f"models:/demand_rule_model/{champion}")
    assert list(served.predict(pd.DataFrame({"x1": [1.0, 2.0], "x2": [0.0, 0.0], "seg": ["north", "east"]}))) \
        == pytest.approx([3.0, 5.0])
    scored = platform.predictions("demand_rule")
    assert scored["score"].round(6).tolist() == pytest.approx(
        (2 * pd.read_csv(platform.root / "landing" / "demand_rule" / f"demand_rule_{D0 + dt.timedelta(days=DAYS - 1)}.csv")
         .sort_values(["ts", "id"])["x1"] + 1).round(6).tolist())

    monkeypatch.setenv(team_models.FAIL_ENV, "1")
    broken = platform.materialize("demand_rule", ["candidate_model", "model_evaluation", "champion_model"])
    assert not broken.success
    message = _failures(broken)
    assert "training function mlops_assets_tests.team_models:rule_model raised RuntimeError" in message
    assert "the champion stays" in message
    assert platform.champion("demand_rule") == champion


def test_statsmodels_glm_training_function_runs_the_chain(platform):
    platform.chain("demand_glm")
    evaluation = platform.metadata("demand_glm", "model_evaluation")
    assert evaluation["holdout_r2"] > 0.35
    assert platform.champion("demand_glm") == evaluation["candidate_version"]
    scored = platform.predictions("demand_glm")
    assert len(scored) == ROWS and scored["score"].notna().all()


def test_candidates_are_logged_as_nested_runs_and_the_best_is_chosen(platform):
    platform.chain("demand_pick")
    candidate = platform.metadata("demand_pick", "candidate_model")
    figures = {c["name"]: c for c in candidate["candidates"]}
    assert set(figures) == {"constant", "ridge", "trees", "rule"}
    best = max(figures.values(), key=lambda c: c["validation_r2"])
    assert candidate["winner"] == best["name"] != "constant" and best["chosen"]
    assert figures["constant"]["validation_r2"] < 0.05
    evaluation = platform.metadata("demand_pick", "model_evaluation")
    assert {c["name"] for c in evaluation["candidate_figures"]} == set(figures)
    assert platform.champion("demand_pick") == evaluation["candidate_version"]
    client = platform.client()
    parent = client.get_run(candidate["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {r.data.tags["mlops.candidate"] for r in children} == set(figures)
    assert all("validation_r2" in r.data.metrics for r in children)


def test_a_candidate_that_raises_fails_the_run_naming_it_and_the_champion_stays(platform, monkeypatch):
    if platform.champion("demand_pick") is None:
        platform.chain("demand_pick")
    champion = platform.champion("demand_pick")
    monkeypatch.setenv(team_models.FAIL_ENV, "1")
    broken = platform.materialize("demand_pick", ["candidate_model", "model_evaluation", "champion_model"])
    assert not broken.success
    message = _failures(broken)
    assert ("demand_pick: candidate 'rule': training function mlops_assets_tests.team_models:rule_model raised "
            "RuntimeError") in message and "the champion stays" in message
    assert platform.champion("demand_pick") == champion


def test_the_http_answer_has_the_task_shape(platform):
    import httpx

    from mlops_assets import settings
    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.holder import ChampionHolder
    from mlops_assets.serving.validation import FeatureSpec
    from mlops_assets_tests.dev_server import serve_app

    spec = FeatureSpec(numeric=("x1", "x2"), categorical=("seg",))
    rows = [{"x1": 0.2, "x2": 0.0, "seg": "north"}, {"x1": 3.9, "x2": 1.0, "seg": "east"}]
    answers = {}
    for name, task in (("kinds", "multiclass"), ("demand_rule", "regression")):
        if platform.champion(name) is None:
            platform.chain(name)
        holder = ChampionHolder(f"{name}_model", spec, settings.mlflow_tracking_uri(), poll_seconds=3600, task=task)
        assert holder.refresh()  # loads the champion from the registry and warms it up
        with serve_app(create_app(holder, poll=False)) as port:
            r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"rows": rows}, timeout=30)
        assert r.status_code == 200, r.text
        answers[name] = r.json()
    kinds = answers["kinds"]
    assert kinds["predictions"] == ["low", "high"] and sorted(kinds["classes"]) == ["high", "low", "mid"]
    assert all(sum(p) == pytest.approx(1.0) for p in kinds["probabilities"]) and "scores" not in kinds
    assert answers["demand_rule"]["predictions"] == pytest.approx([1.4, 8.8])  # the rule: 2 * x1 + 1


def test_a_target_that_does_not_fit_the_task_is_refused_naming_column_and_value(tmp_path):
    from mlops_assets.evaluation.tasks import check_target
    from mlops_assets.ingest.landing import LandingFileError, check_target_values

    con = duckdb.connect()
    con.execute("CREATE TABLE staged AS SELECT * FROM (VALUES ('a', '3.5'), ('b', 'lots'), ('c', NULL)) t(id, y)")
    with pytest.raises(LandingFileError, match=r"column 'y' of the regression task must hold numbers; 1 row\(s\) do "
                                               r"not \(e.g. 'lots'\)"):
        check_target_values(con, "staged", "y", "regression", tmp_path / "f.csv", allow_empty=True)
    check_target_values(con, "staged", "y", "multiclass", tmp_path / "f.csv", allow_empty=True)  # any label
    with pytest.raises(ValueError, match=r"target column 'y' of the multiclass task holds a single class \('a'\)"):
        check_target("multiclass", pd.Series(["a", "a", None]), "y")


@pytest.mark.parametrize("model, extra, message", [
    ({"estimator": "PoissonRegressor"}, {}, "model.estimator 'PoissonRegressor' is not an import path"),
    ({"training_function": "team_models.rule_model"}, {}, "is not of the form 'package.module:function'"),
    ({"family": "random_forest", "estimator": "sklearn.linear_model.Ridge"}, {},
     "name at most one of family, estimator and training_function"),
    ({"candidates": [{"name": "a"}, {"name": "a", "family": "random_forest"}]}, {}, r"names \['a'\] more than once"),
    ({"family": "random_forest", "candidates": [{"name": "a"}]}, {}, "model.family belong inside each candidate"),
    ({}, {"segment_column": "x1"}, "segment_column 'x1' must be a categorical feature"),
    ({}, {"thresholds": {"primary_metric": "roc_auc"}}, "'roc_auc' is not a metric of the regression task"),
])
def test_the_schema_refuses_a_model_it_cannot_build(model, extra, message):
    from mlops_assets.use_cases.config import UseCase

    with pytest.raises(ValueError, match=message):
        UseCase(**_use_case("bad", "regression", model, **extra))


def test_task_defaults_and_the_metric_names_agree_with_the_tasks():
    from mlops_assets.evaluation import tasks
    from mlops_assets.use_cases.config import TASK_METRICS, UseCase

    for task, names in TASK_METRICS.items():
        assert set(names) == set(tasks.get_task(task).directions) and tasks.get_task(task).primary_metric == names[0]
    binary = UseCase(**_use_case("b", "binary", {})).primary
    assert (binary.metric, binary.bound, binary.max_drop, binary.max_slice_drop) == ("roc_auc", 0.6, 0.01, 0.03)
    rmse = UseCase(**_use_case("r", "regression", {}, thresholds={"primary_metric": "rmse"},
                               monitoring={"max_primary_metric_drop": 2.0})).primary
    assert (rmse.metric, rmse.bound) == ("rmse", None)  # an error in the target's unit: no default bound
    assert UseCase(**_use_case("r", "regression", {})).primary.bound == 0.0  # R² of the training mean


def test_a_training_function_returning_no_model_is_refused_naming_it():
    from mlops_assets.training import models
    from mlops_assets.training.estimators import TrainingFunctionError
    from mlops_assets.use_cases.config import ModelSpec, UseCase

    uc = UseCase(**_use_case("bad", "regression", {"training_function": "mlops_assets_tests.team_models:no_predict"}))
    frame = _frame("regression", 0).head(50)
    with pytest.raises(TrainingFunctionError, match=r"training function mlops_assets_tests.team_models:no_predict "
                                                    r"returned a dict without a predict method"):
        models.fit(uc, uc.model, frame, frame["y"])
    glm = ModelSpec(training_function="mlops_assets_tests.team_models:glm_model")
    fitted = models.fit(uc, glm, frame, frame["y"])
    assert "statsmodels" in " ".join(models.pip_requirements(models.flavour_of(fitted), fitted))
