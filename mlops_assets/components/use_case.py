"""The UseCase component: one `defs.yaml` per use case builds that use case's whole chain.

Its attributes are the fields of mlops_assets.use_cases.config.UseCase. The nested sections
(landing, features, model, split, retrain, thresholds) are mirrored from the config models with
their defaults and descriptions, so `dg check defs` and editors know every field; the bounds and
cross-field rules are checked once, by config.UseCase itself, when the component builds.

Templates in the file read environment variables named MLOPS_UC_* and nothing else: the
component renders them itself (mlops_assets/use_cases/templates.py) before Dagster's own
renderer sees the file.
"""
from __future__ import annotations

import datetime as dt
import functools
import operator
import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, TypeAdapter, create_model

from mlops_assets.components.scaffold import UseCaseScaffolder
from mlops_assets.use_cases import config, templates


def _plain(annotation: Any) -> Any:
    """The annotation Dagster's resolution accepts: constraints dropped (config.UseCase checks
    them), Literal as str, nested models mirrored."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _plain(args[0])
    if origin is Literal:
        return str
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, [_plain(a) for a in args])
    if origin is list:
        return list[_plain(args[0])]
    if origin is dict:
        return dict[str, Any]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _mirror(annotation)
    return annotation


@functools.cache
def _mirror(model: type[BaseModel]) -> type[dg.Model]:
    fields = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            fields[name] = (_plain(info.annotation), Field(description=info.description))
        else:
            fields[name] = (_plain(info.annotation),
                            Field(default=info.get_default(call_default_factory=True), description=info.description))
    return create_model(model.__name__, __base__=(dg.Model, dg.Resolvable), __module__=__name__, **fields)


def _section(name: str) -> tuple[type[dg.Model], Any]:
    """A nested section's mirrored model and its default instance (from config.UseCase)."""
    info = config.UseCase.model_fields[name]
    mirrored = _mirror(info.annotation)
    return mirrored, (None if info.is_required() else mirrored())


LandingSection, _ = _section("landing")
FeaturesSection, _ = _section("features")
ModelSection, _DEFAULT_MODEL = _section("model")
SplitSection, _DEFAULT_SPLIT = _section("split")
RetrainSection, _DEFAULT_RETRAIN = _section("retrain")
ThresholdsSection, _DEFAULT_THRESHOLDS = _section("thresholds")
MonitoringSection, _DEFAULT_MONITORING = _section("monitoring")
LabelsSection = _mirror(config.LabelsConfig)


def _component_file(folder: Path) -> Path | None:
    """The component file Dagster read in ``folder`` (its order: defs.yaml, defs.yml, component.yaml)."""
    return next((p for p in (folder / "defs.yaml", folder / "defs.yml", folder / "component.yaml") if p.is_file()), None)


def _date(context: dg.ResolutionContext, value: Any) -> dt.date:
    rendered = context.resolve_value(value)
    try:
        return rendered if isinstance(rendered, dt.date) else dt.date.fromisoformat(str(rendered))
    except ValueError as exc:
        raise ValueError(f"first_day: expected a date YYYY-MM-DD, got {rendered!r}") from exc


def _optional_date(context: dg.ResolutionContext, value: Any) -> dt.date | None:
    return None if context.resolve_value(value) is None else _date(context, value)


# `model` is a use-case field (the model family and its parameters); pydantic warns that it
# shadows Resolvable.model(), which stays reachable on the class because fields are not class
# attributes. Renaming the field would change every use case file.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "model"', category=UserWarning)

    @dg.scaffold_with(UseCaseScaffolder)
    class UseCase(dg.Component, dg.Model, dg.Resolvable):
        """A model's whole chain: raw data from a landing folder, dbt features, training,
        evaluation gates, promotion, batch scoring, drift monitoring and retraining.

        Scaffold one with `dg scaffold defs mlops_assets.components.UseCase <name>`. Fields are
        those of mlops_assets/use_cases/config.py; MLOPS_USE_CASE_OVERRIDES can override them
        per environment.
        """

        name: str = Field(description="Lower-case identifier: key prefix, group and table name.")
        description: str = ""
        landing: LandingSection
        first_day: Annotated[dt.date, dg.Resolver(_date, model_field_type=str)] = Field(
            description="First day of data (YYYY-MM-DD); daily partitions start here.")
        last_day: Annotated[dt.date | None, dg.Resolver(_optional_date, model_field_type=str | None)] = Field(
            default=None, description="Last day of data (YYYY-MM-DD); daily partitions end here. null: they "
                                      "run to tomorrow (in `timezone`), for live data.")
        entity_column: str
        timestamp_column: str
        timezone: str = Field(default="UTC", description=config.UseCase.model_fields["timezone"].description)
        target_column: str
        labels: LabelsSection | None = Field(default=None, description=config.UseCase.model_fields["labels"].description)
        features: FeaturesSection
        slice_columns: list[str] = Field(default_factory=list)
        model: ModelSection = _DEFAULT_MODEL
        split: SplitSection = _DEFAULT_SPLIT
        retrain: RetrainSection = _DEFAULT_RETRAIN
        thresholds: ThresholdsSection = _DEFAULT_THRESHOLDS
        monitoring: MonitoringSection = _DEFAULT_MONITORING

        @classmethod
        def get_additional_scope(cls) -> Mapping[str, Any]:
            # Dagster's `env` reads every variable; ours only MLOPS_UC_* (use_cases/templates.py).
            return {**super().get_additional_scope(), "env": templates.EnvScope()}

        @staticmethod
        @dg.template_var
        def use_case_file(context: dg.ComponentLoadContext) -> str | None:
            """The component file's path. Dagster computes this before it renders anything of the
            file or imports its `template_vars_module`: the file is checked here, first."""
            source = _component_file(context.path)
            if source is not None:
                templates.check_component_file(source)
            return None if source is None else str(source)

        @classmethod
        def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> UseCase:
            """Render the file's templates here (MLOPS_UC_* variables only, nothing else) before
            Dagster's resolution, which renders `{{ }}` with unsandboxed Jinja: Dagster then only
            sees plain values. A refused template raises, naming the file and the field; the defs
            folder then loads use case by use case and shows this one as a failing asset
            (definitions.py)."""
            source = _component_file(context.path)
            if source is not None:
                templates.check_component_file(source)  # post_processing and the other documents too
            if attributes is not None:
                raw = attributes.model_dump(mode="python", exclude_unset=True)
                rendered = templates.render(raw, source or context.path, "attributes")
                attributes = TypeAdapter(cls.get_model_cls()).validate_python(rendered)
            return super().load(attributes, context)

        def fields(self) -> dict[str, Any]:
            """The attributes as plain use-case fields (for config.UseCase)."""
            return self.model_dump(mode="python")

        def to_use_case(self, source: str) -> config.UseCase:
            from mlops_assets.use_cases.discovery import to_use_case

            return to_use_case(self.fields(), source)

        def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
            from mlops_assets.chain.build import build_use_case_defs, invalid_use_case_defs
            from mlops_assets.use_cases.config import InvalidUseCase, UseCaseError

            source = str(context.path / "defs.yaml")
            try:
                return build_use_case_defs(self.to_use_case(source))
            except UseCaseError as exc:  # one bad use case must not take the others down
                return invalid_use_case_defs([InvalidUseCase(source, str(exc))])
