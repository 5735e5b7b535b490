"""The UseCase component: one `defs.yaml` per use case builds that use case's whole chain.

The component is the use-case schema itself (mlops_assets.use_cases.config.UseCase) with
Dagster's behaviour added: it loads its file through the one loader (use_cases/loader.py), builds
the chain, and scaffolds new use cases. Its fields, defaults and rules are those of the schema;
docs/use-case-fields.md lists them.

Dagster validates a component's attributes before the component's own code runs, and a refusal
there takes the whole code location down. The attributes Dagster sees are therefore any mapping;
the loader validates the file, and a use case that breaks a rule becomes one failing asset that
names the file and the field while the other use cases load.

Templates in the file read environment variables named MLOPS_UC_* and nothing else
(use_cases/templates.py): the loader renders the attributes, and Dagster never does.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict

from mlops_assets.chain.build import build_use_case_defs, invalid_use_case_defs
from mlops_assets.components.scaffold import UseCaseScaffolder
from mlops_assets.use_cases import config, loader, templates


class AnyAttributes(BaseModel):
    """What Dagster checks of the attributes at load: any mapping (the loader checks the rest).
    Its JSON schema, which `dg` hands to editors and YAML checks, is the use case's own."""
    model_config = ConfigDict(extra="allow")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return config.UseCase.model().model_json_schema(*args, **kwargs)


def component_file(folder: Path) -> Path | None:
    """The component file Dagster read in ``folder`` (its order: defs.yaml, defs.yml, component.yaml)."""
    return next((p for p in (folder / "defs.yaml", folder / "defs.yml", folder / "component.yaml") if p.is_file()), None)


class InvalidUseCaseFile(dg.Component):
    """A use-case file that did not load: one failing asset holding the error."""

    def __init__(self, path: str, error: str):
        self.invalid = config.InvalidUseCase(path, error)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return invalid_use_case_defs([self.invalid])


# The schema's `model` field shadows Resolvable.model() (see config.py); the subclass inherits it.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "model"', category=UserWarning)

    @dg.scaffold_with(UseCaseScaffolder)
    class UseCase(config.UseCase, dg.Component):
        """A model's whole chain: raw data from a landing folder, dbt features, training,
        evaluation gates, promotion, batch scoring, drift monitoring and retraining.

        Scaffold one with `dg scaffold defs mlops_assets.components.UseCase <name>`. Fields:
        docs/use-case-fields.md; MLOPS_USE_CASE_OVERRIDES can override them per environment.
        """

        # pydantic takes an inherited field's default from the class attribute it finds, and
        # for `model` that is Resolvable.model(): the schema's own field is restated here.
        model: config.ModelConfig = config.UseCase.model_fields["model"]

        @classmethod
        def get_model_cls(cls) -> type[BaseModel]:
            return AnyAttributes

        @classmethod
        def get_additional_scope(cls) -> Mapping[str, Any]:
            # Dagster's `env` reads every variable; ours only MLOPS_UC_* (use_cases/templates.py).
            return {**super().get_additional_scope(), "env": templates.EnvScope()}

        @staticmethod
        @dg.template_var
        def use_case_file(context: dg.ComponentLoadContext) -> str | None:
            """The component file's path. Dagster computes this before it imports the file's
            `template_vars_module` or renders its `post_processing`: those are checked here, and a
            refused one stops the load (the attributes are the loader's, checked in `load`)."""
            source = component_file(context.path)
            if source is not None:
                templates.check_component_file(source, except_attributes_of=loader.COMPONENT_TYPE)
            return None if source is None else str(source)

        @classmethod
        def from_file(cls, path: Path) -> dg.Component:
            """The component of one use-case file, or a failing stand-in naming the file and the
            field when the file does not load (one bad use case must not take the others down)."""
            try:
                uc = loader.load(path)
            except config.UseCaseError as exc:
                return InvalidUseCaseFile(str(path), str(exc))
            return cls.model_validate(dict(uc))

        @classmethod
        def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> dg.Component:
            """Read the file through the loader instead of Dagster's resolution: templates are
            rendered by use_cases/templates.py, overrides applied, the schema's rules checked."""
            source = component_file(context.path) or context.path / "defs.yaml"
            return cls.from_file(source)

        def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
            return build_use_case_defs(self)
