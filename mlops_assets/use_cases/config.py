"""The use-case schema: every field of a use case, its default, its bounds and the rules across
fields, defined once.

A use case names its landing folder, key columns, the dbt model that holds its features (or
none, when the raw table already is the feature table), the model family and its
hyper-parameters, and the quality thresholds its gates use. The platform builds the same chain
of assets for each one under its own key prefix and group.

The classes are Dagster `Model`/`Resolvable` models, so the UseCase component
(mlops_assets/components/) is this same class with Dagster's behaviour added; the loader
(loader.py) reads the files and fields.py renders the field table.
"""
from __future__ import annotations

import datetime as dt
import re
import warnings
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from mlops_assets import settings
from mlops_assets.warehouse.sql import is_plain

Task = Literal["binary", "multiclass", "regression"]
ModelFamily = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
Preprocessing = Literal["auto", "native", "one_hot", "ordinal"]  # mlops_assets/training/pipeline.py


class UseCaseError(ValueError):
    pass


@dataclass(frozen=True)
class InvalidUseCase:
    """A use-case file (or folder) that could not be loaded, and why."""
    path: str
    error: str


def plain_identifier(value: str) -> str:
    # Column and model names reach SQL, dbt and MLflow; only plain names are portable and
    # readable in error messages (quoting through mlops_assets.warehouse.sql stays the second guard).
    if not is_plain(value):
        raise ValueError(f"{value!r} is not a plain identifier (letters, digits and '_', not starting with a digit)")
    return value


Identifier = Annotated[str, AfterValidator(plain_identifier)]


def cron_string(value: str) -> str:
    # The retrain schedule is a dg.ScheduleDefinition (chain/retrain.py): its own check is the rule.
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=value, job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        raise ValueError(f"{value!r} is not a valid cron string (5 fields: minute hour day-of-month month "
                         "day-of-week)") from None
    return value


def time_zone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {v!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)") from None
    return v


def _date(context: dg.ResolutionContext, value: Any) -> dt.date:
    # Dagster's resolution reads a day as its YAML string; the class itself parses it.
    rendered = context.resolve_value(value)
    return rendered if isinstance(rendered, dt.date) else dt.date.fromisoformat(str(rendered))


def _optional_date(context: dg.ResolutionContext, value: Any) -> dt.date | None:
    return None if context.resolve_value(value) is None else _date(context, value)


Day = Annotated[dt.date, dg.Resolver(_date, model_field_type=str)]
OptionalDay = Annotated[dt.date | None, dg.Resolver(_optional_date, model_field_type=str | None)]


class _Section(dg.Model, dg.Resolvable):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LandingConfig(_Section):
    folder: str = Field(description="Folder with batch files; relative paths are under the data folder's landing/.")
    pattern: str = Field(default="*.csv", description="Glob for batch files (.csv or .parquet).")
    # 10 s: the poll is the largest wait from a file landing to its run, and a tick is a folder listing.
    poll_seconds: int = Field(default=10, ge=1, description="How often the landing sensor looks for new files.")
    settle_seconds: float = Field(default=5.0, ge=0, description="A file modified more recently is left for a later tick.")

    def path(self) -> Path:
        p = Path(self.folder)
        return p if p.is_absolute() else settings.landing_root() / p


class LabelsConfig(_Section):
    """Outcomes that arrive after their rows: files of (entity, timestamp of the event, label)."""
    folder: str = Field(description="Folder with label files; relative paths are under the data folder's landing/.")
    pattern: str = Field(default="*.csv", description="Glob for label files (.csv or .parquet).")
    poll_seconds: int = Field(default=30, ge=1, description="How often the label sensor looks for new files.")
    settle_seconds: float = Field(default=5.0, ge=0, description="A label file modified more recently is left for a later tick.")
    label_column: Identifier | None = Field(default=None, description="Column of the label in the label files (the task's target: 0/1, a class label or a number); null: the use case's target_column.")

    def path(self) -> Path:
        p = Path(self.folder)
        return p if p.is_absolute() else settings.landing_root() / p


class FeaturesConfig(_Section):
    dbt_model: Identifier | None = Field(default=None, description="dbt model with one row per example; null: use the raw table.")
    numeric: list[Identifier] = Field(description="Numeric feature columns.")
    categorical: list[Identifier] = Field(default_factory=list, description="Categorical feature columns (encoded as model.preprocessing says).")

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


# The metrics each task may judge models by (evaluation/tasks.py computes them; a unit test keeps
# the two in step). The first is the default primary metric.
TASK_METRICS = {
    "binary": ("roc_auc", "f1", "log_loss", "brier", "ece"),
    "multiclass": ("macro_f1", "accuracy", "log_loss"),
    "regression": ("r2", "mae", "rmse", "mape"),
}
# Lower is better: their size depends on the target (or the classes), so no tolerance fits every use case.
ERROR_METRICS = frozenset({"mae", "rmse", "mape", "log_loss", "brier", "ece"})
MONITORING_SCORE_DROP = 0.05  # a day's default tolerance on a score bounded by 1 (r2, macro_f1, accuracy)
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_FUNCTION_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def estimator_path(value: str) -> str:
    # Only the form is checked when use cases load: importing the class (scikit-learn or a
    # gradient-boosting library) is left to the training run, which names it if it fails.
    if not _IMPORT_PATH.fullmatch(value):
        raise ValueError(f"model.estimator {value!r} is not an import path like 'sklearn.linear_model.PoissonRegressor'")
    return value


def function_spec(value: str) -> str:
    if not _FUNCTION_SPEC.fullmatch(value):
        raise ValueError(f"model.training_function {value!r} is not of the form 'package.module:function'")
    return value


class ModelSpec(_Section):
    """One model: a built-in family, any scikit-learn-compatible estimator by import path, or the
    team's own training function; at most one of the three is named."""
    family: ModelFamily = Field(default="hist_gradient_boosting", description="Built-in family, fitted as the task's classifier (binary, multiclass) or regressor (regression).")
    estimator: Annotated[str, AfterValidator(estimator_path)] | None = Field(default=None, description="Any scikit-learn-compatible estimator by import path (e.g. sklearn.linear_model.PoissonRegressor), fitted after the use case's preprocessing; excludes family and training_function.")
    training_function: Annotated[str, AfterValidator(function_spec)] | None = Field(default=None, description="The team's own training code, 'package.module:function': called with the training frame and the use case's settings, it returns a fitted model (predict, and predict_proba with classes_ for a classifier) or an MLflow pyfunc; excludes family and estimator.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the estimator (family or estimator; for a training function, handed to it in its settings); omitted ones take the library's defaults.")
    preprocessing: Preprocessing = Field(default="auto", description="How categorical features are encoded: native (hist_gradient_boosting's own categorical splits; missing and unseen categories count as missing), one_hot (sparse one-hot, numeric columns imputed and standardised; dense for hist_gradient_boosting, which refuses sparse input), ordinal (integer codes, missing as its own category, unseen -1; numeric columns median-imputed); auto: native for hist_gradient_boosting, one_hot for logistic_regression and for an estimator by path, ordinal for random_forest. A training function does its own.")

    @property
    def kind(self) -> str:
        """``family``, ``estimator`` or ``training_function``: how the model is built."""
        return "estimator" if self.estimator else "training_function" if self.training_function else "family"

    @property
    def label(self) -> str:
        """What the model is, for logs and MLflow params."""
        return self.estimator or self.training_function or self.family

    @model_validator(mode="after")
    def _one_way_to_build(self) -> ModelSpec:
        named = [f for f in ("family", "estimator", "training_function")
                 if f in self.model_fields_set and getattr(self, f) is not None]
        if len(named) > 1:
            raise ValueError(f"model names {' and '.join(named)}: name at most one of family, estimator and "
                             "training_function")
        if self.preprocessing == "native" and (self.kind != "family" or self.family != "hist_gradient_boosting"):
            if self.kind == "family":
                raise ValueError(f"model.preprocessing 'native' needs family hist_gradient_boosting, not "
                                 f"{self.family!r}; use auto, one_hot or ordinal")
            if self.kind == "training_function":
                raise ValueError("model.preprocessing does not apply to a training_function (it prepares its own data)")
        return self


class CandidateSpec(ModelSpec):
    name: Identifier = Field(description="Name of the candidate (its nested MLflow run and its figures in the evaluation).")


class ModelConfig(ModelSpec):
    registered_name: Identifier | None = Field(default=None, description="MLflow registered model name; null: `<name>_model`.")
    candidates: list[CandidateSpec] = Field(default_factory=list, description="Several models to compare: one training run fits each, picks the best on a validation window just before the holdout (split.validation_days), refits the winner on the whole training window and sends only it through the gates. When set, the model is described by the candidates only (not by family, estimator, training_function, params or preprocessing here).")

    @model_validator(mode="after")
    def _candidates_alone(self) -> ModelConfig:
        if not self.candidates:
            return self
        names = [c.name for c in self.candidates]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"model.candidates names {twice} more than once; each candidate needs its own name")
        clash = sorted({"family", "estimator", "training_function", "params", "preprocessing"} & self.model_fields_set)
        if clash:
            raise ValueError(f"model.candidates is set, so model.{', model.'.join(clash)} belong inside each candidate")
        return self

    def specs(self) -> list[ModelSpec]:
        """The models one training run fits: the candidates, or the one model."""
        return list(self.candidates) or [self]


class SplitConfig(_Section):
    holdout_days: int = Field(default=7, ge=1, description="The most recent days are held out for evaluation.")
    training_window_days: int | None = Field(default=None, ge=1, description="Train on at most this many days before the holdout.")
    validation_days: int = Field(default=3, ge=1, description="With model.candidates: the last days of the training window on which the candidates are compared (fitted on the days before them).")


class RetrainConfig(_Section):
    cron: Annotated[str, AfterValidator(cron_string)] = Field(default="0 3 * * 1", description="Scheduled retraining, cron in UTC (default: Mondays 03:00).")
    on_drift: bool = Field(default=True, description="Retrain when the latest day's drift check fails.")
    min_new_rows: int | None = Field(default=5000, ge=1, description="Retrain once this many labelled rows arrived since the last training set; null: off.")
    cooldown_minutes: float = Field(default=30, ge=0, description="No trigger fires again this soon after a retrain finished.")


class Thresholds(_Section):
    min_roc_auc: float = Field(default=0.6, ge=0.0, le=1.0, description="Holdout ROC AUC a candidate needs to be promoted.")
    max_log_loss: float | None = Field(default=None, gt=0.0, description="Holdout log loss a candidate may not exceed; null: no limit.")
    min_lift_over_baseline: float = Field(default=0.02, description="Primary metric (ROC AUC for binary) the model must gain over the trivial baseline (class prior; regression: training mean or median); for an error metric, the reduction.")
    # Every task: gates on its primary metric. Unset, each takes the task's default (binary: the
    # ROC AUC fields above and below; see primary_bounds).
    primary_metric: str | None = Field(default=None, description="The metric the gates and the candidate choice judge by; null: the task's default (binary roc_auc, multiclass macro_f1, regression r2). Binary: roc_auc, f1, log_loss, brier, ece; multiclass: macro_f1, accuracy, log_loss; regression: r2, mae, rmse, mape.")
    min_primary_metric: float | None = Field(default=None, description="The primary metric's bound a candidate must meet: a minimum when higher is better, a maximum when lower is better (an error such as rmse); null: binary ROC AUC min_roc_auc, regression R² 0, none otherwise.")
    max_primary_metric_drop: float | None = Field(default=None, ge=0.0, description="Primary metric the candidate may lose vs the champion (a rise, for an error); null: binary max_roc_auc_drop, otherwise 0.01.")
    max_slice_primary_metric_drop: float | None = Field(default=None, ge=0.0, description="Primary metric a slice may lose vs the champion; null: binary max_slice_roc_auc_drop, otherwise 0.03.")
    regression_baseline: Literal["mean", "median"] | None = Field(default=None, description="A regression's trivial baseline; null: the median when the primary metric is mae or mape, else the mean.")
    drift_share: float = Field(default=0.3, gt=0.0, le=1.0, description="Drift is flagged when the share of drifted columns is at or above this (one threshold for the HTML report and the check).")
    # Champion/challenger gates. Both models are scored on the same holdout, so the tolerances
    # only absorb the noise of a finite holdout; a candidate may not be worse by more than that.
    max_roc_auc_drop: float = Field(default=0.01, ge=0.0, description="ROC AUC the candidate may lose vs the champion.")
    max_log_loss_increase: float = Field(default=0.01, ge=0.0, description="Log loss the candidate may gain vs the champion.")
    max_slice_roc_auc_drop: float = Field(default=0.03, ge=0.0, description="ROC AUC a slice may lose vs the champion.")
    min_slice_rows: int = Field(default=30, ge=1, description="Slices with fewer holdout rows are not compared.")
    # Serving budget of one batch prediction and of the logged model.
    latency_batch_rows: int = Field(default=1000, ge=1, description="Rows in the batch whose prediction latency is timed.")
    max_batch_latency_ms: float = Field(default=500.0, gt=0.0, description="Latency budget for that batch (best of several calls).")
    max_model_size_mb: float = Field(default=50.0, gt=0.0, description="Size budget of the logged model's files.")




@dataclass(frozen=True)
class PrimaryBounds:
    """The gates' settings on a task's primary metric, defaults resolved."""
    metric: str
    bound: float | None
    min_lift: float
    max_drop: float
    max_slice_drop: float
    baseline: str | None


def primary_bounds(task: str, t: Thresholds) -> PrimaryBounds:
    """The primary metric and its gate settings for ``task``: the set fields, else the task's
    defaults. Binary with ROC AUC keeps its named fields (min_roc_auc, max_roc_auc_drop, ...)."""
    metric = t.primary_metric or TASK_METRICS[task][0]
    if task == "binary" and metric == "roc_auc":
        bound, drop, slice_drop = t.min_roc_auc, t.max_roc_auc_drop, t.max_slice_roc_auc_drop
    else:
        # R² 0 is the training mean's score: a model must at least match it. Other metrics
        # depend on the classes or the target's unit, so no bound unless the use case sets one.
        bound, drop, slice_drop = (0.0 if metric == "r2" else None), 0.01, 0.03
    return PrimaryBounds(
        metric=metric,
        bound=t.min_primary_metric if t.min_primary_metric is not None else bound,
        min_lift=t.min_lift_over_baseline,
        max_drop=t.max_primary_metric_drop if t.max_primary_metric_drop is not None else drop,
        max_slice_drop=(t.max_slice_primary_metric_drop if t.max_slice_primary_metric_drop is not None
                        else slice_drop),
        baseline=t.regression_baseline)


# Evidently 0.7's stattest names (evidently.legacy.calculations.stattests); a unit test keeps
# this list in step with the installed Evidently without importing it when use cases load.
StatTest = Literal["anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es", "fisher_exact",
                   "g_test", "hellinger", "jensenshannon", "kl_div", "ks", "mannw", "psi", "t_test", "TVD",
                   "wasserstein", "z"]


class DriftSettings(_Section):
    exclude_columns: list[Identifier] = Field(default_factory=list, description="Features left out of the daily drift report, e.g. ones constant within a day (month, day of week) that would make every day drift.")
    column_stattests: dict[str, StatTest] = Field(default_factory=dict, description="Statistical test per feature (Evidently's names, e.g. psi, ks, wasserstein, jensenshannon, chisquare); others: Evidently's choice by type and size.")
    prediction_stattest: StatTest | None = Field(default=None, description="Test of the score distribution (prediction drift) and of the label rate (target drift); null: Evidently's choice.")


class MonitoringConfig(_Section):
    min_label_coverage: float = Field(default=0.8, gt=0.0, le=1.0, description="Share of a day's scored rows that must have a label before its performance is reported.")
    min_labelled_rows: int = Field(default=100, ge=1, description="Labelled rows a day needs (as well) before its performance is reported.")
    max_roc_auc_drop: float = Field(default=0.05, ge=0.0, description="Binary: ROC AUC a day's served predictions may lose against the model version's holdout ROC AUC before performance_within_tolerance fails.")
    max_primary_metric_drop: float | None = Field(default=None, ge=0.0, description="Multiclass and regression: what a day's served predictions may lose on the primary metric against the model version's holdout figure (for an error such as rmse, the rise, in the target's unit) before performance_within_tolerance fails. null: 0.05 for a score (r2, macro_f1, accuracy); required when the primary metric is an error (mae, rmse, mape, log_loss). Binary days are judged on ROC AUC with max_roc_auc_drop.")
    open_day_min_rows: int | None = Field(default=None, ge=1, description="A day still open (not yet ended in the use case's zone) gets its drift and performance reports once it holds this many rows; null: only after it ends.")
    performance_retrain_days: int | None = Field(default=3, ge=1, description="Retrain when performance_within_tolerance failed on this many consecutive labelled days; null: off.")
    drift: DriftSettings = Field(default_factory=DriftSettings, description="Per-column drift settings.")


# `model` is a use-case field (the model family and its parameters); pydantic warns that it
# shadows Resolvable.model(), which stays reachable on the class because fields are not class
# attributes. Renaming the field would change every use case file.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "model"', category=UserWarning)

    class UseCase(_Section):
        name: str = Field(description="Lower-case identifier: table name, asset key prefix and group.")
        description: str = Field(default="", description="Free text shown in the UI.")
        landing: LandingConfig = Field(description="Where the batch files arrive.")
        first_day: Day = Field(description="First day of data; daily partitions start here.")
        last_day: OptionalDay = Field(default=None, description="Last day of data; daily partitions end here. null: they run to tomorrow (in `timezone`), for live data.")
        entity_column: Identifier = Field(description="Column identifying the entity (e.g. customer id).")
        timestamp_column: Identifier = Field(description="Event time column; its day in `timezone` is the row's partition.")
        timezone: Annotated[str, AfterValidator(time_zone)] = Field(default="UTC", description="IANA time zone of the use case's days (e.g. Europe/Berlin): partitions are days in this zone, naive timestamps are read as wall-clock time in it, and zoned ones are converted to it.")
        task: Task = Field(default="binary", description="What the model predicts: binary (a 0/1 target, scored as the probability of 1), multiclass (one of several labels), regression (a number).")
        target_column: Identifier = Field(description="Target column of the landing files (0/1 for binary, a label for multiclass, a number for regression); may be empty for rows whose outcome is not known yet.")
        labels: LabelsConfig | None = Field(default=None, description="Where labels that arrive after their rows land; null: labels only come in the landing files' target column.")
        features: FeaturesConfig = Field(description="Feature columns and the dbt model that holds them.")
        slice_columns: list[Identifier] = Field(default_factory=list, description="Categorical features whose values are compared one by one by the evaluation gates.")
        segment_column: Identifier | None = Field(default=None, description="A categorical feature (e.g. region) with one model per value, each trained and gated on its own, plus a global fallback; null: one model.")
        segment_min_rows: int = Field(default=200, ge=1, description="Training rows a segment needs for a model of its own; a segment with fewer is scored by the global model.")
        model: ModelConfig = Field(default_factory=ModelConfig, description="The model (family, estimator by import path or training function) and its parameters, or several candidates.")
        split: SplitConfig = Field(default_factory=SplitConfig, description="Time-based train/holdout split.")
        retrain: RetrainConfig = Field(default_factory=RetrainConfig, description="When retraining is requested.")
        thresholds: Thresholds = Field(default_factory=Thresholds, description="Quality, drift and serving gates.")
        monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Label coverage, performance tolerance, performance retrain and per-column drift settings.")
        source_file: str | None = Field(default=None, exclude=True, description="The YAML file it was loaded from (set by the loader).")

        @field_validator("name")
        @classmethod
        def _name_is_identifier(cls, v: str) -> str:
            # The name becomes a DuckDB table name, an asset key prefix and a group name.
            if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
                raise ValueError(f"use case name {v!r} must be lower-case letters, digits and '_' (start with a letter)")
            return v

        @model_validator(mode="after")
        def _columns_are_distinct(self) -> "UseCase":
            if self.last_day is not None and self.last_day < self.first_day:
                raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
            keys = {self.entity_column, self.timestamp_column, self.target_column}
            clash = keys & set(self.features.all)
            if clash:
                raise ValueError(f"columns {sorted(clash)} are listed both as key/target columns and as features")
            unknown = set(self.slice_columns) - set(self.features.categorical)
            if unknown:
                raise ValueError(f"slice_columns {sorted(unknown)} must be categorical features")
            if self.segment_column is not None and self.segment_column not in self.features.categorical:
                raise ValueError(f"segment_column {self.segment_column!r} must be a categorical feature "
                                 f"(categorical: {self.features.categorical})")
            metrics = TASK_METRICS[self.task]
            if self.thresholds.primary_metric is not None and self.thresholds.primary_metric not in metrics:
                raise ValueError(f"thresholds.primary_metric {self.thresholds.primary_metric!r} is not a metric of the "
                                 f"{self.task} task; expected one of {list(metrics)}")
            if self.thresholds.regression_baseline is not None and self.task != "regression":
                raise ValueError("thresholds.regression_baseline applies to a regression task only "
                                 f"(this use case's task is {self.task})")
            self._check_performance_tolerance()
            drift = self.monitoring.drift
            for what, cols in (("monitoring.drift.exclude_columns", drift.exclude_columns),
                               ("monitoring.drift.column_stattests", list(drift.column_stattests))):
                unknown = sorted(set(cols) - set(self.features.all))
                if unknown:
                    raise ValueError(f"{what} {unknown} are not features (features: {self.features.all})")
            if not set(self.features.all) - set(drift.exclude_columns):
                raise ValueError("monitoring.drift.exclude_columns leaves no feature to check for drift")
            return self

        def _check_performance_tolerance(self) -> None:
            mon, metric = self.monitoring, self.primary.metric
            if self.task == "binary":
                if mon.max_primary_metric_drop is not None:
                    raise ValueError("monitoring.max_primary_metric_drop is for multiclass and regression use cases; "
                                     "a binary day is judged on ROC AUC with monitoring.max_roc_auc_drop")
                return
            if "max_roc_auc_drop" in mon.model_fields_set:
                raise ValueError(f"monitoring.max_roc_auc_drop judges binary days; a {self.task} day is judged on "
                                 f"{metric}: set monitoring.max_primary_metric_drop instead")
            if mon.max_primary_metric_drop is None and metric in ERROR_METRICS:
                raise ValueError(f"monitoring.max_primary_metric_drop is required: the primary metric {metric} is an "
                                 "error whose size depends on the target, so no default tolerance fits (e.g. the "
                                 f"{metric} a day may rise above the holdout's, in the target's unit)")

        @property
        def performance_tolerance(self) -> float:
            """What a day's served predictions may lose on the monitored metric against the serving
            version's holdout figure: ROC AUC for binary, else the primary metric (a rise, for an error)."""
            mon = self.monitoring
            if self.task == "binary":
                return mon.max_roc_auc_drop
            return mon.max_primary_metric_drop if mon.max_primary_metric_drop is not None else MONITORING_SCORE_DROP

        @property
        def raw_table(self) -> str:
            return f"raw.{self.name}"

        @property
        def features_table(self) -> str:
            """The table that training and monitoring read: the dbt model, or the raw table."""
            return f"main.{self.features.dbt_model}" if self.features.dbt_model else self.raw_table

        @property
        def primary(self) -> PrimaryBounds:
            """The task's primary metric and the gates' settings on it (defaults resolved)."""
            return primary_bounds(self.task, self.thresholds)

        @property
        def registered_model_name(self) -> str:
            return self.model.registered_name or f"{self.name}_model"

