"""One model of a use case, however it is built: a built-in family (the task's classifier or
regressor), any scikit-learn-compatible estimator by import path, or the team's own training
function. Fitted here, logged to MLflow here.

Logging: a scikit-learn Pipeline of numpy/scikit-learn types is logged with MLflow's sklearn
flavour (skops format), as before; anything else (a training function's result, a rule, a
statsmodels wrapper, an estimator from another library) as a pyfunc model that keeps the object
(cloudpickle). Both are servable by ``mlflow models serve`` and load back, through
governance.registry.load_model, as the object itself. scikit-learn and MLflow are imported inside
the functions: the code location may import this module without them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from collections.abc import Mapping
from typing import Any

from mlops_assets import settings
from mlops_assets.evaluation.tasks import MULTICLASS, REGRESSION, Task, as_task
from mlops_assets.use_cases.config import ModelSpec, UseCase

PYFUNC_FLAVOUR, SKLEARN_FLAVOUR = "python_function", "sklearn"


def training_settings(uc: UseCase, spec: ModelSpec) -> dict[str, Any]:
    """What a training function receives beside the frame: the use case's fields (JSON-ready),
    with the model's own parameters under ``params`` and the columns it is to use."""
    return {**uc.model_dump(mode="json"), "params": dict(spec.params), "feature_columns": list(uc.features.all),
            "numeric_columns": list(uc.features.numeric), "categorical_columns": list(uc.features.categorical),
            "target_column": uc.target_column, "task": uc.task}


def build_pipeline(uc: UseCase, spec: ModelSpec):
    """The unfitted scikit-learn Pipeline of a family or an estimator by path."""
    from mlops_assets.training import estimators, pipeline

    if spec.kind == "estimator":
        return estimators.build_estimator_pipeline(estimators.resolve_estimator(spec.estimator, spec.params),
                                                   uc.features.numeric, uc.features.categorical, spec.preprocessing)
    return pipeline.build_pipeline(spec.family, spec.params, uc.features.numeric, uc.features.categorical,
                                   spec.preprocessing, task=uc.task)


def fit(uc: UseCase, spec: ModelSpec, train, y):
    """The fitted model of ``spec`` on the training rows ``train`` (with target ``y``, already
    checked against the task). A training function gets the frame with ``y`` as its target column
    and its result is checked (estimators.fit_with_function raises TrainingFunctionError naming it)."""
    from mlops_assets.training import estimators

    if spec.kind == "training_function":
        func = estimators.load_training_function(spec.training_function)
        frame = train.assign(**{uc.target_column: y.to_numpy()})
        return estimators.fit_with_function(func, frame, training_settings(uc, spec), uc.features.all, uc.task,
                                            uc.target_column)
    model = build_pipeline(uc, spec)
    model.fit(train[uc.features.all], y)
    return model


class KeptModel:
    """An MLflow pyfunc model that keeps a fitted object (made a PythonModel subclass by
    ``_pyfunc_class``, so this module imports no MLflow). Its ``predict`` answers in the task's
    form: P(1) (binary), the class-probability matrix in ``classes_`` order (multiclass), the
    value (regression); ``model`` is the object itself, which registry.load_model returns."""

    def __init__(self, model, task: str):
        self.model, self.task = model, task

    def predict(self, context, model_input, params=None):
        import numpy as np

        from mlops_assets.evaluation.tasks import predict

        prediction = predict(self.task, self.model, model_input)
        return np.asarray(prediction[0] if self.task == MULTICLASS else prediction)


_PYFUNC_CLASSES: dict[str, type] = {}


def _pyfunc_class() -> type:
    import mlflow.pyfunc

    if "kept" not in _PYFUNC_CLASSES:
        _PYFUNC_CLASSES["kept"] = type("KeptPythonModel", (KeptModel, mlflow.pyfunc.PythonModel),
                                       {"__module__": __name__})
    return _PYFUNC_CLASSES["kept"]


def __getattr__(name: str):
    # cloudpickle stores the pyfunc class by reference (module, name); loading the model resolves
    # it here, so a server needs nothing but this package.
    if name == "KeptPythonModel":
        return _pyfunc_class()
    raise AttributeError(name)


def is_sklearn_pipeline(model) -> bool:
    """Whether ``model`` is logged with the sklearn flavour: a scikit-learn Pipeline whose types
    skops can vouch for (numpy and scikit-learn only)."""
    from sklearn.pipeline import Pipeline

    from mlops_assets.training.pipeline import skops_trusted_types

    if not isinstance(model, Pipeline):
        return False
    try:
        skops_trusted_types(model)
    except ValueError:
        return False
    return True


# Requirements per (lock file hash, flavour, extra distributions): computed once per process and
# lock, so logging a model never runs MLflow's inference (which exports the whole uv project).
_REQUIREMENTS: dict[tuple, list[str]] = {}
_BASE_PACKAGES = ("mlflow", "scikit-learn", "scipy", "numpy", "pandas")
_FLAVOUR_PACKAGES = {SKLEARN_FLAVOUR: ("skops",), PYFUNC_FLAVOUR: ("cloudpickle",)}


def lock_hash() -> str:
    lock = settings.PROJECT_ROOT / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.exists() else "no-lock"


def pip_requirements(flavour: str, model=None) -> list[str]:
    """Pinned requirements of a logged model: MLflow, the scientific stack, the flavour's
    serialiser and, for a kept object, the distributions its class comes from."""
    extra = tuple(sorted(_model_distributions(model))) if flavour == PYFUNC_FLAVOUR else ()
    key = (lock_hash(), flavour, extra)
    if key not in _REQUIREMENTS:
        names = dict.fromkeys([*_BASE_PACKAGES, *_FLAVOUR_PACKAGES[flavour], *extra])
        _REQUIREMENTS[key] = [f"{n}=={_version(n)}" for n in names if _version(n)]
    return list(_REQUIREMENTS[key])


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _model_distributions(model) -> set[str]:
    """Installed distributions providing the model's class and, for a wrapper, the classes of its
    attributes (a statsmodels result kept by a team's class), leaving out this project."""
    if model is None:
        return set()
    roots = {type(model).__module__.split(".")[0]}
    for value in getattr(model, "__dict__", {}).values():
        roots.add(type(value).__module__.split(".")[0])
    by_module = importlib.metadata.packages_distributions()
    out = set()
    for root in roots:
        if root in sys.stdlib_module_names or root in ("builtins", "mlops_assets"):
            continue
        out.update(d for d in by_module.get(root, []) if d != "mlops-assets")
    return out


def log_model(model, example, task: Task | str, name: str = "model"):
    """Log ``model`` to the active MLflow run with a signature and input example; returns
    MLflow's ModelInfo. ``example``: a few feature rows (integer columns declared as doubles)."""
    import mlflow
    from mlflow.models import infer_signature

    from mlops_assets.evaluation.tasks import predict
    from mlops_assets.training.pipeline import skops_trusted_types

    task = as_task(task)
    if is_sklearn_pipeline(model):
        regression = task.name == REGRESSION
        output = model.predict(example) if regression else model.predict_proba(example)
        return mlflow.sklearn.log_model(
            model, name=name, signature=infer_signature(example, output), input_example=example,
            pyfunc_predict_fn="predict" if regression else "predict_proba",
            skops_trusted_types=skops_trusted_types(model), pip_requirements=pip_requirements(SKLEARN_FLAVOUR))
    prediction = predict(task, model, example)
    output = prediction[0] if task.name == MULTICLASS else prediction
    return mlflow.pyfunc.log_model(
        name=name, python_model=_pyfunc_class()(model, task.name), signature=infer_signature(example, output),
        input_example=example, pip_requirements=pip_requirements(PYFUNC_FLAVOUR, model))


def flavour_of(model) -> str:
    return SKLEARN_FLAVOUR if is_sklearn_pipeline(model) else PYFUNC_FLAVOUR


def kept_object(pyfunc_model):
    """The object a pyfunc model logged by log_model keeps; other pyfunc models as they are."""
    inner = pyfunc_model.unwrap_python_model() if hasattr(pyfunc_model, "unwrap_python_model") else None
    return getattr(inner, "model", pyfunc_model) if isinstance(inner, KeptModel) else pyfunc_model


def describe(spec: ModelSpec) -> Mapping[str, Any]:
    """The MLflow params saying how the model is built."""
    return {"model_kind": spec.kind, "model": spec.label,
            **({"model_family": spec.family} if spec.kind == "family" else {})}


def segment_plan(values, min_rows: int) -> tuple[dict[str, int], dict[str, int]]:
    """The segments of the training rows (``values``: each row's segment value) that get a model
    of their own (at least ``min_rows`` rows) and those left to the global model, each with its
    row count. Values are named as strings (as the registry tags and the routing name them);
    rows without a value only train the global model."""
    counts = values.dropna().astype(str).value_counts().sort_index()
    own = {str(k): int(n) for k, n in counts.items() if n >= min_rows}
    return own, {str(k): int(n) for k, n in counts.items() if n < min_rows}
