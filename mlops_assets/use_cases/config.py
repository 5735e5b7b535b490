"""Typed description of a use case, loaded from YAML.

A use case names its landing folder, key columns, the dbt model that holds its features (or
none, when the raw table already is the feature table), the model family and its
hyper-parameters, and the quality thresholds its gates use. The platform builds the same chain
of assets for each one under its own key prefix and group.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_assets import settings

USE_CASE_DIRS_ENV = "MLOPS_USE_CASE_DIRS"

ModelFamily = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LandingConfig(_Strict):
    folder: str = Field(description="Folder with batch files; relative paths are under the data folder's landing/.")
    pattern: str = Field(default="*.csv", description="Glob for batch files (.csv or .parquet).")
    poll_seconds: int = Field(default=30, ge=1, description="How often the landing sensor looks for new files.")
    settle_seconds: float = Field(default=5.0, ge=0, description="A file modified more recently is left for a later tick.")

    def path(self) -> Path:
        p = Path(self.folder)
        return p if p.is_absolute() else settings.landing_root() / p


class FeaturesConfig(_Strict):
    dbt_model: str | None = Field(default=None, description="dbt model with one row per example; None: use the raw table.")
    numeric: list[str]
    categorical: list[str] = Field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


class ModelConfig(_Strict):
    family: ModelFamily = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)
    registered_name: str | None = None


class SplitConfig(_Strict):
    holdout_days: int = Field(default=7, ge=1, description="The most recent days are held out for evaluation.")
    training_window_days: int | None = Field(default=None, ge=1, description="Train on at most this many days before the holdout.")


class RetrainConfig(_Strict):
    cron: str = Field(default="0 3 * * 1", description="Scheduled retraining (default: Mondays 03:00 UTC).")
    on_drift: bool = Field(default=True, description="Retrain when the latest day's drift check fails.")
    min_new_rows: int | None = Field(default=5000, ge=1, description="Retrain once this many labelled rows arrived since the last training set; None: off.")
    cooldown_minutes: float = Field(default=30, ge=0, description="No trigger fires again this soon after a retrain finished.")


class Thresholds(_Strict):
    min_roc_auc: float = Field(default=0.6, ge=0.0, le=1.0)
    max_log_loss: float | None = None
    min_lift_over_baseline: float = Field(default=0.02, description="ROC AUC the model must gain over the trivial baseline.")
    drift_share: float = Field(default=0.3, gt=0.0, le=1.0, description="Share of drifted columns above which drift is flagged.")
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


class UseCase(_Strict):
    name: str
    description: str = ""
    landing: LandingConfig
    first_day: dt.date = Field(description="First day of data; daily partitions start here.")
    entity_column: str
    timestamp_column: str
    target_column: str
    features: FeaturesConfig
    slice_columns: list[str] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    source_file: str | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        # The name becomes a DuckDB table name, an asset key prefix and a group name.
        if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
            raise ValueError(f"use case name {v!r} must be lower-case letters, digits and '_' (start with a letter)")
        return v

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> "UseCase":
        keys = {self.entity_column, self.timestamp_column, self.target_column}
        clash = keys & set(self.features.all)
        if clash:
            raise ValueError(f"columns {sorted(clash)} are listed both as key/target columns and as features")
        unknown = set(self.slice_columns) - set(self.features.categorical)
        if unknown:
            raise ValueError(f"slice_columns {sorted(unknown)} must be categorical features")
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


def load_use_cases(dirs: list[Path] | None = None) -> list[UseCase]:
    """All use cases, sorted by name: the defs folder's defs.yaml files and MLOPS_USE_CASE_DIRS
    (or only ``dirs`` when given). Names must be unique across folders."""
    from mlops_assets.use_cases.discovery import DEFS_DIR, load_all

    return load_all(defs_dir=DEFS_DIR if dirs is None else None, dirs=dirs)
