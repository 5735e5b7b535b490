"""The scikit-learn Pipeline for a use case: preprocessing per column type plus the estimator
named by the use case's model family. scikit-learn is imported here, so import this module
only inside asset bodies."""
from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ESTIMATORS = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
}


def build_pipeline(family: str, params: dict[str, Any], numeric: list[str], categorical: list[str]) -> Pipeline:
    if family not in ESTIMATORS:
        raise ValueError(f"unknown model family {family!r}; expected one of {sorted(ESTIMATORS)}")
    cls = ESTIMATORS[family]
    # A fixed seed unless the use case sets one: the same training set gives the same model.
    if "random_state" in cls().get_params() and "random_state" not in params:
        params = {**params, "random_state": 0}
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad hyper-parameters for {family}: {exc}") from exc
    transformers = [("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)]
    if categorical:
        transformers.append((
            "cat",
            Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                # Unknown categories at scoring time (a new region, say) must not crash scoring.
                ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False)),
            ]),
            categorical,
        ))
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("model", estimator)])


def skops_trusted_types(pipeline: Pipeline) -> list[str]:
    """Types MLflow's skops format must be told to trust for this pipeline. We built the object
    ourselves, so numpy and scikit-learn internals are trusted; anything else is refused."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=sio.dumps(pipeline))
    foreign = [t for t in untrusted if not t.startswith(("numpy.", "sklearn."))]
    if foreign:
        raise ValueError(f"pipeline holds types outside numpy/scikit-learn that skops cannot vouch for: {foreign}")
    return untrusted
