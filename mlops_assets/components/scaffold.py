"""`dg scaffold defs mlops_assets.components.UseCase <name>`: a use case skeleton.

Writes <defs>/<name>/defs.yaml with every field and its default (descriptions as comments),
and dbt_project/models/<name>/ with the raw source, a staging model and a feature model that
already read only the window being built (`in_window`) and carry `event_date` (the column the
incremental models and tests partition on; see dbt_project/macros/window.sql).
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import BaseModel

from mlops_assets.use_cases import config
from mlops_assets.use_cases.loader import COMPONENT_TYPE

# Placeholders for the fields without a default; the dbt models below produce these columns.
ENTITY, TIMESTAMP, TARGET = "entity_id", "event_ts", "label"
NUMERIC, CATEGORICAL = ["feature_1", "feature_2"], ["segment"]


def _required(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"TODO: what {name} predicts.",
        "landing": {"folder": name},
        "first_day": dt.date.today().replace(day=1),
        "entity_column": ENTITY,
        "timestamp_column": TIMESTAMP,
        "target_column": TARGET,
        "features": {"dbt_model": f"features_{name}", "numeric": NUMERIC, "categorical": CATEGORICAL},
    }


def _scalar(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _emit(model: type[BaseModel], values: dict[str, Any], indent: int) -> list[str]:
    lines, pad = [], "  " * indent
    for field, info in model.model_fields.items():
        if info.exclude:
            continue
        value = values[field] if field in values else info.get_default(call_default_factory=True)
        comment = f"  # {info.description}" if info.description else ""
        nested = info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        if nested is not None:
            sub = value.model_dump() if isinstance(value, BaseModel) else (value or {})
            lines += [f"{pad}{field}:{comment}", *_emit(nested, sub, indent + 1)]
        else:
            lines.append(f"{pad}{field}: {_scalar(value)}{comment}")
    return lines


def defs_yaml(name: str) -> str:
    """The component file of a new use case: every field of config.UseCase, with its default."""
    fields = _required(name)
    config.UseCase(**fields)  # the skeleton itself must be a valid use case
    return "\n".join([
        f"# Use case {name}: every field with its type, default and meaning: `uv run mlops-assets fields`.",
        f"# Replace the TODO and the placeholder columns, and edit dbt_project/models/{name}/ to match",
        "# your raw files.",
        f"type: {COMPONENT_TYPE}",
        "attributes:",
        *_emit(config.UseCase, fields, 1),
        "",
    ])


def _typed_columns() -> str:
    """The staging select list: one cast per column, `event_date` from the timestamp."""
    exprs = [(f"cast({ENTITY} as varchar)", ENTITY), (f"cast({TIMESTAMP} as timestamp)", TIMESTAMP),
             (f"cast({TIMESTAMP} as date)", "event_date"),
             *[(f"cast({c} as double)", c) for c in NUMERIC],
             *[(f"lower(trim(cast({c} as varchar)))", c) for c in CATEGORICAL],
             (f"cast({TARGET} as integer)", TARGET)]
    return "\n".join(f"    {expr:<40} as {col}," for expr, col in exprs)


def dbt_files(name: str) -> dict[str, str]:
    """File name -> text of dbt_project/models/<name>/."""
    cols = ",\n".join(f"    {c}" for c in [ENTITY, TIMESTAMP, "event_date", *NUMERIC, *CATEGORICAL, TARGET])
    return {
        "sources.yml": f"""version: 2

sources:
  - name: raw
    schema: raw
    tables:
      - name: {name}
        description: Batch files of the {name} use case, loaded by its raw asset as they land.
""",
        f"stg_{name}.sql": f"""-- Typed, de-duplicated rows of the window being built. The same ({ENTITY}, {TIMESTAMP}) can
-- arrive in two files: keep the latest load.
with ranked as (
    select
        *,
        row_number() over (
            partition by {ENTITY}, {TIMESTAMP}
            order by _loaded_at desc, _source_file desc
        ) as _rank
    from {{{{ source('raw', '{name}') }}}}
    where {{{{ in_window('{TIMESTAMP}') }}}}
)

select
{_typed_columns()}
    _source_file
from ranked
where _rank = 1
""",
        f"features_{name}.sql": f"""-- One row per labelled example with the model's inputs; derived features belong here so
-- training and batch scoring read the same definitions.
select
{cols}
from {{{{ ref('stg_{name}') }}}}
where {{{{ in_window('{TIMESTAMP}') }}}}
""",
        "schema.yml": f"""version: 2

models:
  - name: features_{name}
    description: Model inputs of the {name} use case, one row per labelled example.
    columns:
      - name: {ENTITY}
        data_tests: [not_null]
      - name: event_date
        data_tests: [not_null]
      - name: {TARGET}
        data_tests: [not_null]
""",
    }


def scaffold_use_case(defs_folder: Path, dbt_models_dir: Path, name: str) -> list[Path]:
    """Write the skeleton; refuses a bad name or files that already exist."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"use case name {name!r} must be lower-case letters, digits and '_' (start with a letter)")
    targets = {defs_folder / "defs.yaml": defs_yaml(name),
               **{dbt_models_dir / name / f: text for f, text in dbt_files(name).items()}}
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"not overwriting existing files: {existing}")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


class UseCaseScaffolder(dg.Scaffolder):
    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        project_root = request.project_root or Path.cwd()
        scaffold_use_case(Path(request.target_path), project_root / "dbt_project" / "models",
                          Path(request.target_path).name)
