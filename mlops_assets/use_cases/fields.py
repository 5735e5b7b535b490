"""The field table of a use case, rendered from the schema (config.UseCase).

`python -m mlops_assets.use_cases.fields > docs/use-case-fields.md` regenerates the docs page; a
test fails when the page and the schema differ.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel

from mlops_assets.use_cases.config import UseCase, cron_string, plain_identifier, time_zone

REGENERATE = "python -m mlops_assets.use_cases.fields > docs/use-case-fields.md"


@dataclass(frozen=True)
class FieldDoc:
    path: str          # dotted, as written in the YAML file
    type: str
    required: bool
    default: str       # as YAML would spell it; "" when required
    description: str


_NAMES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "date (YYYY-MM-DD)"}


def _validator_kind(metadata: list[Any]) -> str | None:
    funcs = {getattr(m, "func", None) for m in metadata}
    return ("identifier" if plain_identifier in funcs else "cron string" if cron_string in funcs
            else "time zone name" if time_zone in funcs else None)


def _section(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section class of a field (a nested model), and whether it may be null."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner, _ = _section(next(a for a in args if a is not type(None)))
        return inner, inner is not None
    return None, False


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return _NAMES.get(annotation.__name__, annotation.__name__)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _validator_kind(list(args[1:])) or _type_name(args[0])
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
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
    nested sections are followed by their own fields."""
    rows: list[FieldDoc] = []
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, not written in files
            continue
        path = f"{prefix}{name}"
        required = field.is_required()
        nested, nullable = _section(field.annotation)
        listed = None
        if nested is None and typing.get_origin(field.annotation) is list:
            listed, _ = _section(typing.get_args(field.annotation)[0])  # a list of sections (model.candidates)
        default = "" if required or (nested and not nullable) else _yaml_value(field.get_default(call_default_factory=True))
        kind = ("section or null" if nullable else "section") if nested else "list of sections" if listed else (
            _validator_kind(field.metadata) or _type_name(field.annotation))
        nested = nested or listed
        rows.append(FieldDoc(path, kind, required, default, field.description or ""))
        if nested:
            rows += describe_fields(nested, prefix=f"{path}.")
    return rows


def fields_markdown() -> str:
    """describe_fields() as a Markdown table."""
    lines = ["| Field | Type | Default | Meaning |", "|---|---|---|---|"]
    for f in describe_fields():
        default = "**required**" if f.required else f"`{f.default}`" if f.default else ""
        lines.append(f"| `{f.path}` | {f.type} | {default} | {f.description.replace('|', '/')} |")
    return "\n".join(lines)


def fields_page() -> str:
    """The docs page: a line saying how it is made, then the table."""
    return (f"_Generated from mlops_assets/use_cases/config.py by `{REGENERATE}`; do not edit by hand._\n\n"
            "# Use-case fields\n\n"
            "Every field of a use case's `attributes` (a `defs.yaml` of type `mlops_assets.components.UseCase`), "
            "with its type and default; dotted names are fields of a section.\n\n"
            f"{fields_markdown()}\n")


if __name__ == "__main__":
    print(fields_page(), end="")
