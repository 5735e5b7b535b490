"""The scikit-learn Pipeline for a use case: preprocessing chosen per model family (or set by the
use case's `model.preprocessing`) plus the estimator named by the family. scikit-learn is imported
here, so import this module only inside asset bodies.

The pipeline's input stays what serving and batch scoring pass: a DataFrame of the feature columns,
numeric ones as floats (NaN = missing), categorical ones as objects (None/NaN = missing). Encoding
happens inside the pipeline, so the MLflow signature and the callers do not change.

Preprocessing modes:
- ``native`` (hist_gradient_boosting only): categoricals ordinal-encoded and declared as
  ``categorical_features``, so the trees split on category sets; numeric columns and missing values
  go straight to the estimator, which handles NaN itself. Unknown categories become missing.
- ``one_hot``: sparse one-hot categoricals next to imputed and standardised numeric columns; the
  matrix stays sparse (CSR) for the estimators that take sparse input. HistGradientBoosting does
  not, so for it the one-hot matrix is dense: the slow layout, kept for comparison only.
- ``ordinal``: categoricals as integer codes (missing: its own category, unknown: -1), numeric columns imputed
  with the median and not scaled (trees do not need it).
- ``auto``: native for hist_gradient_boosting, one_hot for logistic_regression, ordinal for
  random_forest.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

ESTIMATORS = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}
# A regression task fits the family's regressor: the linear family is ridge regression (least
# squares with the same L2 penalty logistic regression has by default).
REGRESSORS = {
    "logistic_regression": Ridge,
    "random_forest": RandomForestRegressor,
    "hist_gradient_boosting": HistGradientBoostingRegressor,
}
AUTO_PREPROCESSING = {
    "hist_gradient_boosting": "native",
    "logistic_regression": "one_hot",
    "random_forest": "ordinal",
}
PREPROCESSING = ("auto", "native", "one_hot", "ordinal")
# Categories seen fewer times than this in training are pooled into one "infrequent" level, so a
# long tail of rare values neither widens the one-hot matrix nor overfits the trees.
MIN_FREQUENCY = 5
MISSING = "__missing__"


def resolve_preprocessing(family: str, preprocessing: str) -> str:
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"unknown model.preprocessing {preprocessing!r}; expected one of {list(PREPROCESSING)}")
    mode = AUTO_PREPROCESSING[family] if preprocessing == "auto" else preprocessing
    if mode == "native" and family != "hist_gradient_boosting":
        raise ValueError(f"model.preprocessing 'native' needs family hist_gradient_boosting, not {family!r} "
                         f"(only it splits on categories itself); use auto, one_hot or ordinal")
    return mode


def build_pipeline(family: str, params: dict[str, Any], numeric: list[str], categorical: list[str],
                   preprocessing: str = "auto", task: str = "binary") -> Pipeline:
    if family not in ESTIMATORS:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(ESTIMATORS)}")
    mode = resolve_preprocessing(family, preprocessing)
    cls = (REGRESSORS if task == "regression" else ESTIMATORS)[family]
    # A fixed seed unless the use case sets one: the same training set gives the same model.
    if "random_state" in cls().get_params() and "random_state" not in params:
        params = {**params, "random_state": 0}
    if mode == "native" and categorical:
        if "categorical_features" in params:
            raise ValueError("model.params.categorical_features is set by model.preprocessing 'native' "
                             "(the use case's categorical columns); remove it from params")
        # The ColumnTransformer below puts the numeric columns first, then the categorical ones.
        params = {**params, "categorical_features": list(range(len(numeric), len(numeric) + len(categorical)))}
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad hyper-parameters for {family}: {exc}") from exc
    max_bins = estimator.max_bins if mode == "native" else None
    # sparse_threshold=1.0: keep the output sparse whenever a part is sparse (the default 0.3
    # would densify a one-hot matrix that is more than 30% non-zero, i.e. few wide columns).
    # HistGradientBoosting refuses sparse input: one-hot for it is dense (the slow layout).
    sparse = family != "hist_gradient_boosting"
    preprocess = ColumnTransformer(_transformers(mode, numeric, categorical, max_bins, sparse), sparse_threshold=1.0)
    if mode == "native":
        # Numeric columns pass through untouched, and DuckDB gives integer columns with NULLs as
        # pandas nullable dtypes (pd.NA), which a numpy output refuses; a DataFrame output keeps
        # them and the estimator reads pd.NA as missing.
        preprocess.set_output(transform="pandas")
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _transformers(mode: str, numeric: list[str], categorical: list[str], max_bins: int | None,
                  sparse: bool) -> list:
    if mode == "native":
        # HistGradientBoosting bins numeric columns and routes NaN itself: no imputing, no scaling.
        steps = [("num", "passthrough", numeric)]
        if categorical:
            # Codes 0..k-1; missing and unknown become NaN, which the trees treat as missing.
            # At most max_bins codes per column (the estimator's limit), the rarest pooled.
            steps.append(("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                                encoded_missing_value=np.nan, min_frequency=MIN_FREQUENCY,
                                                max_categories=max_bins, dtype=np.float64), categorical))
        return steps
    if mode == "one_hot":
        steps = [("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)]
        if categorical:
            steps.append(("cat", Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
                # Unknown categories at scoring time (a new region, say) encode as all zeros.
                ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=MIN_FREQUENCY,
                                         sparse_output=sparse)),
            ]), categorical))
        return steps
    # ordinal
    steps = [("num", SimpleImputer(strategy="median"), numeric)]
    if categorical:
        steps.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
            ("ordinal", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       min_frequency=MIN_FREQUENCY, dtype=np.float64)),
        ]), categorical))
    return steps


def skops_trusted_types(pipeline: Pipeline) -> list[str]:
    """Types MLflow's skops format must be told to trust for this pipeline. We built the object
    ourselves, so numpy and scikit-learn internals are trusted; anything else is refused."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=sio.dumps(pipeline))
    # functools.partial: HistGradientBoosting with categorical features keeps
    # partial(sklearn.utils.validation.check_array, ...) in its own preprocessor. skops loads
    # the wrapped function and arguments as separate nodes, each checked against this list.
    foreign = [t for t in untrusted if not t.startswith(("numpy.", "sklearn.")) and t != "functools.partial"]
    if foreign:
        raise ValueError(f"pipeline holds types outside numpy/scikit-learn that skops cannot vouch for: {foreign}")
    return untrusted
