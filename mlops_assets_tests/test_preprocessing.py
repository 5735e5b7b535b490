"""Issue 10 item 2: preprocessing per model family (model.preprocessing), with no dense one-hot
blow-up, and the served input unchanged (a DataFrame of object categoricals and float numerics,
unseen categories and NaN allowed)."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlops_assets.use_cases.config import ModelConfig

BENCH = Path(__file__).parent / "benchmarks" / "bench_preprocessing.py"
FAMILIES = {"hist_gradient_boosting": {"max_iter": 40}, "logistic_regression": {"max_iter": 500},
            "random_forest": {"n_estimators": 30, "min_samples_leaf": 5}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny fits on a shared machine: OpenMP threads of HistGradientBoosting only contend."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _bench():
    spec = importlib.util.spec_from_file_location("bench_preprocessing", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data():
    frame, numeric, categorical = _bench().churn_frame(6000, seed=5)
    return frame.iloc[:4000], frame.iloc[4000:].reset_index(drop=True), numeric, categorical


def _scoring_frame(holdout, numeric, categorical):
    """The holdout as serving builds it, with unseen categories, missing categoricals (None and
    NaN) and NaN numerics, plus one row where every feature is missing (serving's warm-up row)."""
    x = holdout[numeric + categorical].astype({c: object for c in categorical}).copy()
    x.loc[0:9, categorical[0]] = "never_seen_plan"
    x.loc[10:19, categorical[1]] = None
    x.loc[20:29, categorical[2]] = np.nan
    x.loc[30:39, numeric[0]] = np.nan
    x.loc[40:49, numeric] = np.nan
    blank = pd.DataFrame({**{c: pd.Series([np.nan], dtype="float64") for c in numeric},
                          **{c: pd.Series([np.nan], dtype="object") for c in categorical}})
    return pd.concat([x, blank], ignore_index=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_scores_unseen_categories_and_nan(family, data):
    from mlops_assets.training.pipeline import build_pipeline, skops_trusted_types

    train, holdout, numeric, categorical = data
    pipeline = build_pipeline(family, FAMILIES[family], numeric, categorical)
    pipeline.fit(train[numeric + categorical], train["churned"])
    x = _scoring_frame(holdout, numeric, categorical)
    scores = pipeline.predict_proba(x)[:, 1]
    assert scores.shape == (len(x),) and np.isfinite(scores).all() and ((0 <= scores) & (scores <= 1)).all()
    # an unseen category scores like a known row's neighbours would: not a crash, not a constant
    assert np.unique(scores[:10]).size > 1
    # the model goes through MLflow's skops format and scores the same after loading
    import skops.io as sio

    loaded = sio.loads(sio.dumps(pipeline), trusted=skops_trusted_types(pipeline))
    np.testing.assert_array_equal(loaded.predict_proba(x)[:, 1], scores)


@pytest.mark.parametrize("family", FAMILIES)
def test_quality_close_to_the_dense_one_hot_pipeline(family, data):
    from sklearn.metrics import roc_auc_score

    from mlops_assets.training.pipeline import build_pipeline

    train, holdout, numeric, categorical = data
    features = numeric + categorical
    auc = {}
    for name, pipeline in [("old", _bench().legacy_pipeline(family, FAMILIES[family], numeric, categorical)),
                           ("new", build_pipeline(family, FAMILIES[family], numeric, categorical))]:
        pipeline.fit(train[features], train["churned"])
        auc[name] = roc_auc_score(holdout["churned"], pipeline.predict_proba(holdout[features])[:, 1])
    assert auc["new"] > 0.7, auc  # a real model on the simulator's data
    assert auc["new"] >= auc["old"] - 0.015, auc


def test_hgb_uses_native_categorical_support(data):
    from mlops_assets.training.pipeline import build_pipeline

    train, _, numeric, categorical = data
    pipeline = build_pipeline("hist_gradient_boosting", {"max_iter": 5}, numeric, categorical)
    pipeline.fit(train[numeric + categorical], train["churned"])
    hgb = pipeline.named_steps["model"]
    assert hgb.is_categorical_.tolist() == [False] * len(numeric) + [True] * len(categorical)
    # one column per feature reaches the trees: no one-hot expansion
    assert pipeline.named_steps["preprocess"].transform(train[numeric + categorical].head()).shape[1] == len(numeric) + len(categorical)


@pytest.mark.parametrize("family", FAMILIES)
def test_nullable_integer_columns_from_duckdb(family):
    """DuckDB returns an INTEGER column with NULLs as pandas Int32 holding pd.NA."""
    import duckdb

    from mlops_assets.training.pipeline import build_pipeline

    frame = duckdb.connect().execute(
        "SELECT CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 7)::INTEGER END AS n, (i % 3)::DOUBLE AS f, "
        "CASE WHEN i % 11 = 0 THEN NULL ELSE 'c' || (i % 4) END AS c, (i % 7 > 3)::INTEGER AS y "
        "FROM range(600) t(i)").df()
    assert str(frame["n"].dtype) == "Int32" and frame["n"].isna().any()
    pipeline = build_pipeline(family, FAMILIES[family], ["n", "f"], ["c"]).fit(frame[["n", "f", "c"]], frame["y"])
    assert np.isfinite(pipeline.predict_proba(frame[["n", "f", "c"]])[:, 1]).all()


def test_hgb_native_pools_rare_levels_beyond_max_bins():
    from mlops_assets.training.pipeline import build_pipeline

    rng = np.random.default_rng(0)
    n = 3000
    x = pd.DataFrame({"num": rng.normal(size=n), "cat": [f"v{i}" for i in rng.integers(0, 400, n)]})
    y = (x["num"] + rng.normal(size=n) > 0).astype(int)
    # 400 levels > max_bins=255: sklearn alone raises; the pipeline pools the rarest levels
    pipeline = build_pipeline("hist_gradient_boosting", {"max_iter": 5}, ["num"], ["cat"]).fit(x, y)
    assert pipeline.predict_proba(x.head()).shape == (5, 2)


def test_linear_model_matrix_is_sparse(data):
    import scipy.sparse as sp

    from mlops_assets.training.pipeline import build_pipeline

    train, holdout, numeric, categorical = data
    pipeline = build_pipeline("logistic_regression", {}, numeric, categorical)
    pipeline.fit(train[numeric + categorical], train["churned"])
    matrix = pipeline.named_steps["preprocess"].transform(holdout[numeric + categorical])
    assert sp.issparse(matrix)
    assert matrix.shape[1] > len(numeric) + len(categorical)  # one-hot columns


def test_random_forest_auto_is_ordinal(data):
    from mlops_assets.training.pipeline import build_pipeline

    train, _, numeric, categorical = data
    pipeline = build_pipeline("random_forest", {"n_estimators": 2}, numeric, categorical)
    pipeline.fit(train[numeric + categorical], train["churned"])
    matrix = pipeline.named_steps["preprocess"].transform(train[numeric + categorical].head())
    assert isinstance(matrix, np.ndarray) and matrix.shape[1] == len(numeric) + len(categorical)


@pytest.mark.parametrize("mode", ["one_hot", "ordinal"])
def test_preprocessing_can_be_set_for_hgb(mode, data):
    from mlops_assets.training.pipeline import build_pipeline

    train, _, numeric, categorical = data
    pipeline = build_pipeline("hist_gradient_boosting", {"max_iter": 5}, numeric, categorical, mode)
    pipeline.fit(train[numeric + categorical], train["churned"])
    assert pipeline.named_steps["model"].is_categorical_ is None  # no native categoricals
    width = pipeline.named_steps["preprocess"].transform(train[numeric + categorical].head()).shape[1]
    assert (width > len(numeric) + len(categorical)) == (mode == "one_hot")


def test_config_field_and_its_errors():
    from mlops_assets.training.pipeline import build_pipeline

    assert ModelConfig().preprocessing == "auto"
    assert "native" in ModelConfig.model_fields["preprocessing"].description
    assert ModelConfig(family="random_forest", preprocessing="one_hot").preprocessing == "one_hot"
    with pytest.raises(ValidationError, match="native.*needs family hist_gradient_boosting"):
        ModelConfig(family="logistic_regression", preprocessing="native")
    with pytest.raises(ValidationError):
        ModelConfig(preprocessing="dense")
    with pytest.raises(ValueError, match="unknown model.preprocessing 'dense'"):
        build_pipeline("random_forest", {}, ["a"], ["b"], "dense")
    with pytest.raises(ValueError, match="categorical_features is set by model.preprocessing"):
        build_pipeline("hist_gradient_boosting", {"categorical_features": [1]}, ["a"], ["b"])
