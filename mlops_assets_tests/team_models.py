"""Training functions a team might write, named by use cases in the tests as
``mlops_assets_tests.team_models:<function>``: each gets the training frame and the use case's
settings and returns a fitted model."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

FAIL_ENV = "TEAM_MODEL_FAIL"  # set: rule_model raises, as a broken training function would


class DemandRule:
    """A hand-written rule, nothing fitted: demand is twice x1 plus one, three when x1 is unknown."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x1 = pd.to_numeric(frame["x1"], errors="coerce").to_numpy(dtype=float)
        return np.where(np.isnan(x1), 3.0, 2.0 * x1 + 1.0)


def rule_model(frame: pd.DataFrame, settings) -> DemandRule:
    if os.environ.get(FAIL_ENV):
        raise RuntimeError("the rule's reference table is missing")
    return DemandRule()


class PoissonGlm:
    """A statsmodels Poisson GLM on the numeric features, with an intercept."""

    def __init__(self, result, columns: list[str]):
        self.result, self.columns = result, columns

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        import statsmodels.api as sm

        X = frame[self.columns].astype(float).fillna(0.0)
        return np.asarray(self.result.predict(sm.add_constant(X, has_constant="add")), dtype=float)


def glm_model(frame: pd.DataFrame, settings) -> PoissonGlm:
    import statsmodels.api as sm

    columns = list(settings["numeric_columns"])
    X = sm.add_constant(frame[columns].astype(float).fillna(0.0), has_constant="add")
    result = sm.GLM(frame[settings["target_column"]].astype(float), X, family=sm.families.Poisson()).fit()
    return PoissonGlm(result, columns)


def no_predict(frame: pd.DataFrame, settings):
    return {"coefficients": [1.0, 2.0]}
