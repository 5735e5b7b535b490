"""Models beyond the built-in families (training/estimators.py): an estimator by import path with
the use case's preprocessing, and a team's own training function, with each way it can go wrong."""
import textwrap

import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation import tasks
from mlops_assets.training.estimators import (TrainingFunctionError, build_estimator_pipeline, fit_with_function,
                                              load_training_function, preprocessing_mode, resolve_estimator)

NUMERIC, CATEGORICAL = ["tenure", "spend"], ["region"]
FEATURES = NUMERIC + CATEGORICAL


def frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"tenure": rng.uniform(0, 10, n), "spend": rng.normal(50, 10, n),
                       "region": rng.choice(["north", "south", "east"], n)})
    df.loc[::17, "spend"] = np.nan  # missing values: the preprocessing imputes them
    rate = np.exp(0.1 * df["tenure"] + (df["region"] == "south") * 0.5)
    df["visits"] = rng.poisson(rate)
    df["churned"] = (df["tenure"] + rng.normal(0, 1, n) < 4).astype(int)
    df["plan"] = np.where(df["tenure"] < 3, "basic", np.where(df["tenure"] < 7, "plus", "pro"))
    return df


def test_poisson_regressor_by_path_with_the_use_cases_preprocessing():
    est = resolve_estimator("sklearn.linear_model.PoissonRegressor", {"alpha": 0.01})
    assert type(est).__name__ == "PoissonRegressor" and est.alpha == 0.01
    df = frame()
    model = build_estimator_pipeline(est, NUMERIC, CATEGORICAL).fit(df[FEATURES], df["visits"])
    pred = tasks.predict("regression", model, df[FEATURES])
    assert (pred > 0).all()
    m = tasks.task_metrics("regression", df["visits"], pred)
    base = tasks.task_metrics("regression", df["visits"], tasks.baseline_prediction("regression", df["visits"], len(df)))
    assert tasks.beats_baseline(tasks.get_task("regression"), m, base, 0.05).passed


def test_logistic_regression_by_path_gets_a_fixed_seed_and_keeps_a_given_one():
    assert resolve_estimator("sklearn.linear_model.LogisticRegression", {"C": 0.5}).get_params()["random_state"] == 0
    assert resolve_estimator("sklearn.linear_model.LogisticRegression", {"random_state": 7}).random_state == 7
    df = frame()
    pipe = build_estimator_pipeline(resolve_estimator("sklearn.linear_model.LogisticRegression", {}), NUMERIC,
                                    CATEGORICAL).fit(df[FEATURES], df["plan"])
    m = tasks.task_metrics("multiclass", df["plan"], tasks.predict("multiclass", pipe, df[FEATURES]))
    assert m["macro_f1"] > 0.7 and {k for k in m if k.startswith("recall_")} == {"recall_basic", "recall_plus",
                                                                                  "recall_pro"}


def test_native_preprocessing_only_for_hist_gradient_boosting():
    hgb = resolve_estimator("sklearn.ensemble.HistGradientBoostingRegressor", {"max_iter": 20})
    assert preprocessing_mode(hgb) == "native"
    assert preprocessing_mode(resolve_estimator("sklearn.linear_model.PoissonRegressor", {})) == "one_hot"
    df = frame()
    pipe = build_estimator_pipeline(hgb, NUMERIC, CATEGORICAL).fit(df[FEATURES], df["visits"])
    assert pipe.named_steps["model"].categorical_features == [2]
    with pytest.raises(ValueError, match="'native' needs a HistGradientBoosting estimator, not PoissonRegressor"):
        preprocessing_mode(resolve_estimator("sklearn.linear_model.PoissonRegressor", {}), "native")
    with pytest.raises(ValueError, match="unknown model.preprocessing 'scaled'"):
        preprocessing_mode(hgb, "scaled")


@pytest.mark.parametrize("path,params,message", [
    ("PoissonRegressor", {}, "estimator 'PoissonRegressor' is not an import path like"),
    ("sklearn.linear_model.PoissonRegresor", {}, ("module 'sklearn.linear_model' has no 'PoissonRegresor' "
                                                   r"\(did you mean 'PoissonRegressor'\?\)")),
    ("no_such_package.Model", {}, "estimator 'no_such_package.Model': module 'no_such_package' cannot be imported"),
    ("math.pi", {}, "estimator 'math.pi' is a float, not a class"),
    ("collections.OrderedDict", {}, ("'collections.OrderedDict' is not a scikit-learn-compatible estimator: "
                                     "it has no fit, predict, get_params method")),
    ("sklearn.linear_model.PoissonRegressor", {"alfa": 1}, (r"'sklearn.linear_model.PoissonRegressor': bad "
                                                            r"parameters \{'alfa': 1\}")),
])
def test_bad_estimator_paths_are_named(path, params, message):
    with pytest.raises(ValueError, match=message):
        resolve_estimator(path, params)


@pytest.fixture
def team_package(tmp_path, monkeypatch):
    """A team's package on the path, as a use case would name it."""
    pkg = tmp_path / "team_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(textwrap.dedent("""
        import numpy as np

        NOT_A_FUNCTION = 3


        class ThresholdRule:
            '''Nothing fitted: churn when tenure is below the threshold.'''
            def __init__(self, threshold):
                self.threshold = threshold

            def predict(self, frame):
                return (frame["tenure"] < self.threshold).astype(float).to_numpy()


        def rule(frame, settings):
            return ThresholdRule(settings.get("threshold", 4.0))


        class Factory:
            @staticmethod
            def build(frame, settings):
                return ThresholdRule(1.0)
    """))
    (pkg / "broken.py").write_text("raise RuntimeError('missing credentials file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "team_models"


def test_rule_based_function_by_name(team_package):
    func = load_training_function("team_models.train:rule")
    df = frame()
    model = fit_with_function(func, df, {"threshold": 4.0}, FEATURES, "binary", target_column="churned")
    prob = tasks.predict("binary", model, df[FEATURES])
    assert set(prob) == {0.0, 1.0}
    assert tasks.task_metrics("binary", df["churned"], prob)["roc_auc"] > 0.8
    assert load_training_function("team_models.train:Factory.build")(df, {}).threshold == 1.0


@pytest.mark.parametrize("spec,message", [
    ("team_models.train.rule", "'team_models.train.rule' is not of the form 'package.module:function'"),
    ("team_models.missing:rule", "'team_models.missing:rule': module 'team_models.missing' cannot be imported"),
    ("team_models.train:rules", r"module 'team_models.train' has no 'rules' \(did you mean 'rule'\?\)"),
    ("team_models.train:Factory.make", "'Factory' has no attribute 'make'"),
    ("team_models.train:NOT_A_FUNCTION", "'team_models.train:NOT_A_FUNCTION' is a int, not a function"),
    ("team_models.broken:train", "importing module 'team_models.broken' raised RuntimeError: missing credentials"),
])
def test_bad_function_names_are_named(team_package, spec, message):
    with pytest.raises(ValueError, match=message):
        load_training_function(spec)


def test_statsmodels_glm_function():
    sm = pytest.importorskip("statsmodels.api")

    class GlmModel:
        def __init__(self, results, columns):
            self.results, self.columns = results, columns

        def predict(self, frame):
            X = pd.get_dummies(frame[NUMERIC + CATEGORICAL], columns=CATEGORICAL, dtype=float)
            X = X.reindex(columns=self.columns, fill_value=0.0).fillna(0.0)
            return np.asarray(self.results.predict(sm.add_constant(X, has_constant="add")))

    def glm(frame, settings):
        X = pd.get_dummies(frame[NUMERIC + CATEGORICAL], columns=CATEGORICAL, drop_first=True, dtype=float).fillna(0.0)
        results = sm.GLM(frame["visits"], sm.add_constant(X), family=sm.families.Poisson()).fit()
        return GlmModel(results, list(X.columns))

    df = frame()
    model = fit_with_function(glm, df, {}, FEATURES, "regression")
    pred = tasks.predict("regression", model, df[FEATURES])
    assert pred.shape == (len(df),) and (pred > 0).all()
    assert tasks.task_metrics("regression", df["visits"], pred)["r2"] > 0.1


class _Predicts:
    def __init__(self, predict=None, predict_proba=None, classes=None):
        if predict is not None:
            self.predict = predict
        if predict_proba is not None:
            self.predict_proba = predict_proba
        if classes is not None:
            self.classes_ = np.array(classes)


def _raises(frame, settings):
    raise KeyError("tenure_days")


@pytest.mark.parametrize("func,task,message", [
    (_raises, "binary", r"training function test_estimators:_raises raised KeyError: 'tenure_days'"),
    (lambda f, s: None, "binary", r"returned None, not a fitted model"),
    (lambda f, s: {"weights": [1, 2]}, "regression", r"returned a dict without a predict method"),
    (lambda f, s: _Predicts(lambda X: np.zeros((len(X), 2))), "regression",
     r"predict on 5 rows returned shape \(5, 2\); expected one value per row, shape \(5,\)"),
    (lambda f, s: _Predicts(lambda X: np.zeros(3)), "regression", r"returned shape \(3,\); expected .* shape \(5,\)"),
    (lambda f, s: _Predicts(lambda X: 1 / 0), "regression",
     r"its model's predict failed on 5 training rows: ZeroDivisionError"),
    (lambda f, s: _Predicts(lambda X: np.array(["a"] * len(X))), "regression", r"predict returned non-numbers, e.g. 'a'"),
    (lambda f, s: _Predicts(lambda X: np.full(len(X), np.nan)), "regression", r"returned NaN or infinity"),
    (lambda f, s: _Predicts(lambda X: np.full(len(X), 2.0)), "binary",
     r"has no predict_proba and its predict returned 2.0; a binary model's predict then gives the probability"),
    (lambda f, s: _Predicts(lambda X: np.zeros(len(X), int), lambda X: np.full((len(X), 3), 1 / 3), [0, 1, 2]),
     "binary", r"predict_proba on 5 rows returned shape \(5, 3\); expected \(5, 2\)"),
    (lambda f, s: _Predicts(lambda X: np.zeros(len(X), int), lambda X: np.full((len(X), 2), 0.7), [0, 1]),
     "binary", r"predict_proba rows are not probabilities in \[0, 1\] summing to 1, e.g. \[0.7, 0.7\]"),
    (lambda f, s: _Predicts(lambda X: np.array(["gold"] * len(X))), "multiclass",
     r"predict returned label 'gold', not a class of 'plan'"),
    (lambda f, s: _Predicts(lambda X: np.array(["pro"] * len(X)), lambda X: np.full((len(X), 3), 1 / 3)),
     "multiclass", r"has predict_proba but no classes_"),
])
def test_bad_training_functions_are_named_with_the_problem(func, task, message):
    with pytest.raises(TrainingFunctionError, match=message) as err:
        fit_with_function(func, frame(), {}, FEATURES, task, target_column="plan" if task == "multiclass" else None)
    assert "training function test_estimators:" in str(err.value)
