"""Models beyond the built-in families: any scikit-learn-compatible estimator named by its import
path (``sklearn.linear_model.PoissonRegressor``) with its parameters, or the team's own training
function ``package.module:function``, which gets the training frame and the use case's settings
and returns a fitted model.

Everything the user names is checked early, and each failure says which path or function and
what is wrong, since these messages are what a use case's author sees. scikit-learn is imported
inside the functions: the code location may import this module without loading it.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mlops_assets.evaluation.tasks import BINARY, REGRESSION, Task, as_task

# Rows of the training frame the returned model is tried on.
PROBE_ROWS = 5


class TrainingFunctionError(ValueError):
    """A team's training function failed or returned something the platform cannot serve."""


# ------------------------------------------------------------------------------------ estimators


def resolve_estimator(import_path: str, params: Mapping[str, Any] | None = None):
    """An unfitted estimator of the class at ``import_path`` built with ``params``. A seed is fixed
    (random_state=0) unless the parameters set one, so the same data gives the same model."""
    params = dict(params or {})
    module_name, _, attr = import_path.rpartition(".")
    if not module_name or not attr or not all(part.isidentifier() for part in import_path.split(".")):
        raise ValueError(f"estimator {import_path!r} is not an import path like "
                         "'sklearn.linear_model.PoissonRegressor'")
    cls = _import_attr(module_name, attr, f"estimator {import_path!r}")
    if not inspect.isclass(cls):
        raise ValueError(f"estimator {import_path!r} is a {type(cls).__name__}, not a class")
    missing = [m for m in ("fit", "predict", "get_params") if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(f"estimator {import_path!r} is not a scikit-learn-compatible estimator: "
                         f"it has no {', '.join(missing)} method")
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"estimator {import_path!r}: bad parameters {params}: {exc}") from exc
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=0)
    return estimator


def preprocessing_mode(estimator, preprocessing: str = "auto") -> str:
    """The preprocessing (see pipeline.py) for an estimator given by path: ``auto`` is ``native``
    for a HistGradientBoosting model and ``one_hot`` otherwise, the safe choice for an estimator
    we know nothing about (numbers imputed and scaled, categories one-hot)."""
    from mlops_assets.training.pipeline import PREPROCESSING

    if preprocessing not in PREPROCESSING:
        raise ValueError(f"unknown model.preprocessing {preprocessing!r}; expected one of {list(PREPROCESSING)}")
    native = type(estimator).__name__.startswith("HistGradientBoosting")
    if preprocessing == "auto":
        return "native" if native else "one_hot"
    if preprocessing == "native" and not native:
        raise ValueError(f"model.preprocessing 'native' needs a HistGradientBoosting estimator, not "
                         f"{type(estimator).__name__} (only it splits on categories itself); use auto, one_hot or ordinal")
    return preprocessing


def build_estimator_pipeline(estimator, numeric: list[str], categorical: list[str], preprocessing: str = "auto"):
    """The use case's preprocessing followed by ``estimator``, the layout pipeline.build_pipeline
    gives the built-in families. One-hot output stays sparse only for estimators that declare
    sparse input (scikit-learn's tags); others get a dense matrix."""
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.utils import get_tags

    # The same column transformers as the built-in families, so both read the same frames.
    from mlops_assets.training.pipeline import _transformers

    mode = preprocessing_mode(estimator, preprocessing)
    estimator = clone(estimator)
    if mode == "native" and categorical:
        if estimator.get_params().get("categorical_features") not in (None, "from_dtype"):
            raise ValueError("model.params.categorical_features is set by model.preprocessing 'native' "
                             "(the use case's categorical columns); remove it from params")
        estimator.set_params(categorical_features=list(range(len(numeric), len(numeric) + len(categorical))))
    try:
        sparse = bool(get_tags(estimator).input_tags.sparse)
    except Exception:  # noqa: BLE001 - an estimator without tags: assume dense input only
        sparse = False
    max_bins = estimator.max_bins if mode == "native" else None
    preprocess = ColumnTransformer(_transformers(mode, numeric, categorical, max_bins, sparse), sparse_threshold=1.0)
    if mode == "native":
        preprocess.set_output(transform="pandas")  # keeps pd.NA of nullable integer columns, as build_pipeline does
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


# ---------------------------------------------------------------------------- training functions


def load_training_function(spec: str) -> Callable:
    """The function named ``package.module:function`` (the attribute may be dotted:
    ``module:Class.method``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or ":" in attr or not all(
            part.isidentifier() for part in [*module_name.split("."), *attr.split(".")]):
        raise ValueError(f"training function {spec!r} is not of the form 'package.module:function'")
    where = f"training function {spec!r}"
    obj = _import_attr(module_name, attr.split(".")[0], where)
    for part in attr.split(".")[1:]:
        if not hasattr(obj, part):
            raise ValueError(f"{where}: {attr.split('.')[0]!r} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{where} is a {type(obj).__name__}, not a function")
    return obj


def function_name(func: Callable) -> str:
    """``module:qualified name``, as a use case names the function."""
    module = getattr(func, "__module__", None) or "?"
    return f"{module}:{getattr(func, '__qualname__', None) or type(func).__name__}"


def fit_with_function(func: Callable, frame, settings: Mapping[str, Any], feature_columns: list[str],
                      task: Task | str, target_column: str | None = None):
    """Call ``func(frame, settings)`` and check what it returns before it is logged and served: a
    model with ``predict`` that gives one value per row on a few training rows (numbers for a
    regression; for a binary task without ``predict_proba``, probabilities in [0, 1]); a
    classifier's ``predict_proba``, when present, one probability per class and row. With
    ``target_column``, predicted labels must be training classes. Returns the model."""
    task = as_task(task)
    name = function_name(func)
    try:
        model = func(frame, settings)
    except Exception as exc:  # noqa: BLE001 - re-raised naming the function
        raise TrainingFunctionError(f"training function {name} raised {type(exc).__name__}: {exc}") from exc
    if model is None:
        raise TrainingFunctionError(f"training function {name} returned None, not a fitted model (no return statement?)")
    if not callable(getattr(model, "predict", None)):
        raise TrainingFunctionError(f"training function {name} returned a {type(model).__name__} without a predict "
                                    "method; return a fitted model (or an object whose predict(frame) scores rows)")
    probe = frame[list(feature_columns)].head(PROBE_ROWS)
    n = len(probe)
    predictions = _call(model.predict, probe, name, "predict")
    if predictions.ndim != 1 or len(predictions) != n:
        raise TrainingFunctionError(f"training function {name}: its model's predict on {n} rows returned shape "
                                    f"{predictions.shape}; expected one value per row, shape ({n},)")
    classes = None
    if target_column is not None and task.classification:
        classes = {_plain(c) for c in frame[target_column].dropna().unique()}
    if task.name == REGRESSION or (task.name == BINARY and not hasattr(model, "predict_proba")):
        try:
            numbers = predictions.astype(float)
        except (TypeError, ValueError):
            raise TrainingFunctionError(f"training function {name}: its model's predict returned non-numbers, "
                                        f"e.g. {_plain(predictions[0])!r}") from None
        if not np.isfinite(numbers).all():
            raise TrainingFunctionError(f"training function {name}: its model's predict returned NaN or infinity")
        if task.name == BINARY and ((numbers < 0) | (numbers > 1)).any():
            bad = numbers[(numbers < 0) | (numbers > 1)][0]
            raise TrainingFunctionError(f"training function {name}: its model has no predict_proba and its predict "
                                        f"returned {_plain(bad)!r}; a binary model's predict then gives the probability "
                                        "of class 1, in [0, 1]")
    elif classes is not None:
        unknown = [_plain(p) for p in predictions if _plain(p) not in classes]
        if unknown:
            raise TrainingFunctionError(f"training function {name}: its model's predict returned label {unknown[0]!r}, "
                                        f"not a class of {target_column!r} ({sorted(map(repr, classes))})")
    if task.classification and hasattr(model, "predict_proba"):
        _check_proba(model, probe, name, task, classes)
    return model


def _check_proba(model, probe, name: str, task: Task, classes: set | None) -> None:
    proba = _call(model.predict_proba, probe, name, "predict_proba")
    n = len(probe)
    model_classes = getattr(model, "classes_", None)
    if task.name != BINARY and model_classes is None:
        raise TrainingFunctionError(f"training function {name}: its model has predict_proba but no classes_ naming "
                                    "the probability columns")
    k = 2 if task.name == BINARY else len(model_classes)
    if proba.ndim != 2 or proba.shape != (n, k):
        raise TrainingFunctionError(f"training function {name}: its model's predict_proba on {n} rows returned shape "
                                    f"{proba.shape}; expected ({n}, {k}), one probability per class")
    if task.name == BINARY and model_classes is not None and 1 not in [_plain(c) for c in model_classes]:
        raise TrainingFunctionError(f"training function {name}: its model's classes_ {list(model_classes)} lack "
                                    "class 1, whose probability a binary model gives")
    try:
        proba = proba.astype(float)
    except (TypeError, ValueError):
        raise TrainingFunctionError(f"training function {name}: its model's predict_proba returned non-numbers") from None
    if not np.isfinite(proba).all() or (proba < 0).any() or (proba > 1).any() or not np.allclose(
            proba.sum(axis=1), 1.0, atol=1e-4):
        raise TrainingFunctionError(f"training function {name}: its model's predict_proba rows are not probabilities "
                                    f"in [0, 1] summing to 1, e.g. {proba[0].tolist()}")
    if classes is not None and model_classes is not None:
        unknown = [_plain(c) for c in model_classes if _plain(c) not in classes]
        if unknown:
            raise TrainingFunctionError(f"training function {name}: its model's classes_ hold {unknown[0]!r}, not a "
                                        "class of the training target")


def _call(method, probe, name: str, what: str) -> np.ndarray:
    try:
        return np.asarray(method(probe))
    except Exception as exc:  # noqa: BLE001 - re-raised naming the function
        raise TrainingFunctionError(f"training function {name}: its model's {what} failed on {len(probe)} training "
                                    f"rows: {type(exc).__name__}: {exc}") from exc


def _import_attr(module_name: str, attr: str, where: str):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{where}: module {module_name!r} cannot be imported ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - the module itself is broken: say so, naming it
        raise ValueError(f"{where}: importing module {module_name!r} raised {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        close = difflib.get_close_matches(attr, [n for n in dir(module) if not n.startswith("_")], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{where}: module {module_name!r} has no {attr!r}{hint}")
    return getattr(module, attr)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
