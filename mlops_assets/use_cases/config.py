"""Typed description of a use case, loaded from YAML.

A use case names its landing folder, key columns, the dbt model that holds its features (or
none, when the raw table already is the feature table), the model family and its
hyper-parameters, and the quality thresholds its gates use. The platform builds the same chain
of assets for each one under its own key prefix and group.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_assets import settings
from mlops_assets.warehouse.sql import is_plain

log = logging.getLogger(__name__)

USE_CASE_DIRS_ENV = "MLOPS_USE_CASE_DIRS"

ModelFamily = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
Preprocessing = Literal["auto", "native", "one_hot", "ordinal"]  # mlops_assets/training/pipeline.py


def _plain(value: str) -> str:
    # Column and model names reach SQL, dbt and MLflow; only plain names are portable and
    # readable in error messages (quoting through mlops_assets.warehouse.sql stays the second guard).
    if not is_plain(value):
        raise ValueError(f"{value!r} is not a plain identifier (letters, digits and '_', not starting with a digit)")
    return value


Identifier = Annotated[str, AfterValidator(_plain)]


def _cron(value: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string  # the rule Dagster's schedules apply

    if not isinstance(value, str) or not is_valid_cron_string(value):
        raise ValueError(f"{value!r} is not a valid cron string (5 fields: minute hour day-of-month month day-of-week)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LandingConfig(_Strict):
    folder: str = Field(description="Folder with batch files; relative paths are under the data folder's landing/.")
    pattern: str = Field(default="*.csv", description="Glob for batch files (.csv or .parquet).")
    # 10 s: the poll is the largest wait from a file landing to its run, and a tick is a folder listing.
    poll_seconds: int = Field(default=10, ge=1, description="How often the landing sensor looks for new files.")
    settle_seconds: float = Field(default=5.0, ge=0, description="A file modified more recently is left for a later tick.")

    def path(self) -> Path:
        p = Path(self.folder)
        return p if p.is_absolute() else settings.landing_root() / p


class LabelsConfig(_Strict):
    """Outcomes that arrive after their rows: files of (entity, timestamp of the event, label)."""
    folder: str = Field(description="Folder with label files; relative paths are under the data folder's landing/.")
    pattern: str = Field(default="*.csv", description="Glob for label files (.csv or .parquet).")
    poll_seconds: int = Field(default=30, ge=1, description="How often the label sensor looks for new files.")
    settle_seconds: float = Field(default=5.0, ge=0, description="A label file modified more recently is left for a later tick.")
    label_column: Identifier | None = Field(default=None, description="Column of the label (0/1) in the label files; null: the use case's target_column.")

    def path(self) -> Path:
        p = Path(self.folder)
        return p if p.is_absolute() else settings.landing_root() / p


class FeaturesConfig(_Strict):
    dbt_model: Identifier | None = Field(default=None, description="dbt model with one row per example; null: use the raw table.")
    numeric: list[Identifier] = Field(description="Numeric feature columns.")
    categorical: list[Identifier] = Field(default_factory=list, description="Categorical feature columns (encoded as model.preprocessing says).")

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class ModelConfig(_Strict):
    family: ModelFamily = Field(default="hist_gradient_boosting", description="scikit-learn estimator family.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the estimator; omitted ones take scikit-learn's defaults.")
    registered_name: Identifier | None = Field(default=None, description="MLflow registered model name; null: `<name>_model`.")
    preprocessing: Preprocessing = Field(default="auto", description="How categorical features are encoded: native (hist_gradient_boosting's own categorical splits; missing and unseen categories count as missing), one_hot (sparse one-hot, numeric columns imputed and standardised; dense for hist_gradient_boosting, which refuses sparse input), ordinal (integer codes, missing as its own category, unseen -1; numeric columns median-imputed); auto: native for hist_gradient_boosting, one_hot for logistic_regression, ordinal for random_forest.")

    @model_validator(mode="after")
    def _native_needs_hgb(self) -> ModelConfig:
        if self.preprocessing == "native" and self.family != "hist_gradient_boosting":
            raise ValueError(f"model.preprocessing 'native' needs family hist_gradient_boosting, not {self.family!r}; "
                             f"use auto, one_hot or ordinal")
        return self


class SplitConfig(_Strict):
    holdout_days: int = Field(default=7, ge=1, description="The most recent days are held out for evaluation.")
    training_window_days: int | None = Field(default=None, ge=1, description="Train on at most this many days before the holdout.")


def _timezone(v: str) -> str:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {v!r} is not an IANA time zone name (e.g. UTC, Europe/Berlin, America/New_York)") from None
    return v


class RetrainConfig(_Strict):
    cron: Annotated[str, AfterValidator(_cron)] = Field(default="0 3 * * 1", description="Scheduled retraining, cron in UTC (default: Mondays 03:00).")
    on_drift: bool = Field(default=True, description="Retrain when the latest day's drift check fails.")
    min_new_rows: int | None = Field(default=5000, ge=1, description="Retrain once this many labelled rows arrived since the last training set; null: off.")
    cooldown_minutes: float = Field(default=30, ge=0, description="No trigger fires again this soon after a retrain finished.")


class Thresholds(_Strict):
    min_roc_auc: float = Field(default=0.6, ge=0.0, le=1.0, description="Holdout ROC AUC a candidate needs to be promoted.")
    max_log_loss: float | None = Field(default=None, gt=0.0, description="Holdout log loss a candidate may not exceed; null: no limit.")
    min_lift_over_baseline: float = Field(default=0.02, description="ROC AUC the model must gain over the trivial baseline.")
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


# Evidently 0.7's stattest names (evidently.legacy.calculations.stattests); a unit test keeps
# this list in step with the installed Evidently without importing it when use cases load.
StatTest = Literal["anderson", "chisquare", "cramer_von_mises", "ed", "empirical_mmd", "es", "fisher_exact",
                   "g_test", "hellinger", "jensenshannon", "kl_div", "ks", "mannw", "psi", "t_test", "TVD",
                   "wasserstein", "z"]


class DriftSettings(_Strict):
    exclude_columns: list[Identifier] = Field(default_factory=list, description="Features left out of the daily drift report, e.g. ones constant within a day (month, day of week) that would make every day drift.")
    column_stattests: dict[str, StatTest] = Field(default_factory=dict, description="Statistical test per feature (Evidently's names, e.g. psi, ks, wasserstein, jensenshannon, chisquare); others: Evidently's choice by type and size.")
    prediction_stattest: StatTest | None = Field(default=None, description="Test of the score distribution (prediction drift) and of the label rate (target drift); null: Evidently's choice.")


class MonitoringConfig(_Strict):
    min_label_coverage: float = Field(default=0.8, gt=0.0, le=1.0, description="Share of a day's scored rows that must have a label before its performance is reported.")
    min_labelled_rows: int = Field(default=100, ge=1, description="Labelled rows a day needs (as well) before its performance is reported.")
    max_roc_auc_drop: float = Field(default=0.05, ge=0.0, description="ROC AUC a day's served predictions may lose against the model version's holdout ROC AUC before performance_within_tolerance fails.")
    open_day_min_rows: int | None = Field(default=None, ge=1, description="A day still open (not yet ended in the use case's zone) gets its drift and performance reports once it holds this many rows; null: only after it ends.")
    performance_retrain_days: int | None = Field(default=3, ge=1, description="Retrain when performance_within_tolerance failed on this many consecutive labelled days; null: off.")
    drift: DriftSettings = Field(default_factory=DriftSettings, description="Per-column drift settings.")


class UseCase(_Strict):
    name: str = Field(description="Lower-case identifier: table name, asset key prefix and group.")
    description: str = Field(default="", description="Free text shown in the UI.")
    landing: LandingConfig = Field(description="Where the batch files arrive.")
    first_day: dt.date = Field(description="First day of data; daily partitions start here.")
    last_day: dt.date | None = Field(default=None, description="Last day of data; daily partitions end here. null: they run to tomorrow (in `timezone`), for live data.")
    entity_column: Identifier = Field(description="Column identifying the entity (e.g. customer id).")
    timestamp_column: Identifier = Field(description="Event time column; its day in `timezone` is the row's partition.")
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(default="UTC", description="IANA time zone of the use case's days (e.g. Europe/Berlin): partitions are days in this zone, naive timestamps are read as wall-clock time in it, and zoned ones are converted to it.")
    target_column: Identifier = Field(description="Binary label column (0/1) of the landing files; may be empty for rows whose outcome is not known yet.")
    labels: LabelsConfig | None = Field(default=None, description="Where labels that arrive after their rows land; null: labels only come in the landing files' target column.")
    features: FeaturesConfig = Field(description="Feature columns and the dbt model that holds them.")
    slice_columns: list[Identifier] = Field(default_factory=list, description="Categorical features whose values are compared one by one by the evaluation gates.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model family and hyper-parameters.")
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
        drift = self.monitoring.drift
        for what, cols in (("monitoring.drift.exclude_columns", drift.exclude_columns),
                           ("monitoring.drift.column_stattests", list(drift.column_stattests))):
            unknown = sorted(set(cols) - set(self.features.all))
            if unknown:
                raise ValueError(f"{what} {unknown} are not features (features: {self.features.all})")
        if not set(self.features.all) - set(drift.exclude_columns):
            raise ValueError("monitoring.drift.exclude_columns leaves no feature to check for drift")
        return self

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"

    @property
    def features_table(self) -> str:
        """The table that training and monitoring read: the dbt model, or the raw table."""
        return f"main.{self.features.dbt_model}" if self.features.dbt_model else self.raw_table

    @property
    def registered_model_name(self) -> str:
        return self.model.registered_name or f"{self.name}_model"


class UseCaseError(ValueError):
    pass


def load_use_case(path: Path) -> UseCase:
    """One use case from a plain YAML file of its fields or from a component defs.yaml."""
    from mlops_assets.use_cases.discovery import read_fields, to_use_case

    fields = read_fields(path)
    if fields is None:
        raise UseCaseError(f"{path}: not a use case (its `type` is not mlops_assets.components.UseCase)")
    return to_use_case(fields, path)


def use_case_dirs() -> list[Path]:
    """Folders of extra use cases (MLOPS_USE_CASE_DIRS); the defs folder is always read."""
    return [Path(p) for p in os.environ.get(USE_CASE_DIRS_ENV, "").split(os.pathsep) if p]


@dataclass(frozen=True)
class InvalidUseCase:
    """A use-case file (or folder) that could not be loaded, and why."""
    path: str
    error: str


@dataclass(frozen=True)
class UseCaseSet:
    use_cases: list[UseCase]
    invalid: list[InvalidUseCase]


def load_use_case_set(dirs: list[Path] | None = None) -> UseCaseSet:
    """Every use case that loads, sorted by name, and every file that does not: the defs
    folder's defs.yaml files and MLOPS_USE_CASE_DIRS (or only ``dirs`` when given). One bad
    file must not take the others down: the code location shows it as a failing asset."""
    from mlops_assets.use_cases.discovery import DEFS_DIR, load_set

    return load_set(defs_dir=DEFS_DIR if dirs is None else None, dirs=dirs)


_logged: set[tuple[str, str]] = set()


def load_use_cases(dirs: list[Path] | None = None, *, strict: bool = False) -> list[UseCase]:
    """All use cases that load, sorted by name. Names must be unique across folders. Files
    that do not load are logged (once per process) and left out; with `strict` they raise."""
    loaded = load_use_case_set(dirs)
    if strict and loaded.invalid:
        raise UseCaseError("\n".join(i.error for i in loaded.invalid))
    for bad in loaded.invalid:
        if (bad.path, bad.error) not in _logged:
            _logged.add((bad.path, bad.error))
            log.error("skipping use case file: %s", bad.error)
    return loaded.use_cases


def get_use_case(name: str, dirs: list[Path] | None = None) -> UseCase:
    """One use case by name; when it is unknown, the error lists the known ones and every
    file that failed to load (the wanted one may be among them)."""
    loaded = load_use_case_set(dirs)
    for uc in loaded.use_cases:
        if uc.name == name:
            return uc
    message = f"unknown use case {name!r}; known: {[uc.name for uc in loaded.use_cases]}"
    if loaded.invalid:
        message += "; files that failed to load: " + "; ".join(i.error for i in loaded.invalid)
    raise UseCaseError(message)


@dataclass(frozen=True)
class FieldDoc:
    path: str          # dotted, as written in the YAML file
    type: str
    required: bool
    default: str       # as YAML would spell it; "" when required
    description: str


def _type_name(annotation: Any) -> str:
    import typing

    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "date": "date (YYYY-MM-DD)"}.get(annotation.__name__, annotation.__name__)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        base = args[0]
        if any(getattr(m, "func", None) is _plain for m in args[1:]):
            return "identifier"
        if any(getattr(m, "func", None) is _cron for m in args[1:]):
            return "cron string"
        return _type_name(base)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    return str(annotation)


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def describe_fields(model: type[BaseModel] = UseCase, prefix: str = "") -> list[FieldDoc]:
    """Every field of the use-case schema with its type, default and meaning, in file order;
    nested sections are followed by their own fields. The README's table is generated from it."""
    rows: list[FieldDoc] = []
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, not written in files
            continue
        path = f"{prefix}{name}"
        required = field.is_required()
        validators = {getattr(m, "func", None) for m in field.metadata}  # Annotated[...] of a plain field
        kind = "identifier" if _plain in validators else "cron string" if _cron in validators else None
        nested = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        default = "" if required or nested else _yaml_value(field.get_default(call_default_factory=True))
        rows.append(FieldDoc(path, "section" if nested else kind or _type_name(field.annotation), required, default,
                             field.description or ""))
        if nested:
            rows += describe_fields(nested, prefix=f"{path}.")
    return rows


def fields_markdown() -> str:
    """describe_fields() as a Markdown table."""
    lines = ["| Field | Type | Default | Meaning |", "|---|---|---|---|"]
    for f in describe_fields():
        default = "**required**" if f.required else f"`{f.default}`" if f.type != "section" else ""
        lines.append(f"| `{f.path}` | {f.type} | {default} | {f.description.replace('|', '/')} |")
    return "\n".join(lines)
