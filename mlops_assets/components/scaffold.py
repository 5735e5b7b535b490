"""`dg scaffold defs mlops_assets.components.UseCase <name> [--task binary|multiclass|regression]`:
a use case skeleton for its task.

Writes <defs>/<name>/defs.yaml with every field and its default (descriptions as comments), the
task's own defaults set (its primary metric), and dbt_project/models/<name>/ with the raw and
label sources, a staging model and a feature model that already read only the window being built
(`in_window`), carry `event_date` (the column the incremental models and tests partition on; see
dbt_project/macros/window.sql) and take a row's target from its label file when one arrived.
The target has no not_null test: rows land without it and are scored before their labels come.
"""
from __future__ import annotations

import datetime as dt
import re
import types
import typing
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import BaseModel, Field

from mlops_assets.use_cases import config
from mlops_assets.use_cases.loader import COMPONENT_TYPE

# Placeholders for the fields without a default; the dbt models below produce these columns.
ENTITY, TIMESTAMP, TARGET = "entity_id", "event_ts", "label"
NUMERIC, CATEGORICAL = ["feature_1", "feature_2"], ["segment"]


class ScaffoldParams(BaseModel):
    """`dg scaffold defs mlops_assets.components.UseCase <name> --task regression` (or --json-params)."""
    task: config.Task = Field(default="binary", description="What the model predicts: binary, multiclass or regression.")
    labels: bool = Field(default=True, description="Outcomes arrive later in label files (a labels section and the dbt join).")


# The SQL type of the target per task, and the dbt test its values can take (none for a
# number or an open set of classes).
TARGET_TYPE = {"binary": "integer", "multiclass": "{{ type_text() }}", "regression": "{{ type_double() }}"}


def _required(name: str, task: str = "binary", labels: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": name,
        "description": f"TODO: what {name} predicts.",
        "task": task,
        "landing": {"folder": name},
        "first_day": dt.date.today().replace(day=1),
        "entity_column": ENTITY,
        "timestamp_column": TIMESTAMP,
        "target_column": TARGET,
        "features": {"dbt_model": f"features_{name}", "numeric": NUMERIC, "categorical": CATEGORICAL},
    }
    if labels:
        fields["labels"] = {"folder": f"{name}_labels"}
    if task != "binary":  # binary keeps its ROC AUC fields; the others name their primary metric
        fields["thresholds"] = {"primary_metric": config.TASK_METRICS[task][0]}
    return fields


def _scalar(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _section(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The section class of a field written as a nested block: a section, or an optional one
    that has a value (`labels:`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if value is not None and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return None


# Fields a task other than binary must not set (the schema refuses them even at their default).
BINARY_ONLY = {"monitoring.max_roc_auc_drop"}


def _emit(model: type[BaseModel], values: dict[str, Any], indent: int, skip: frozenset[str] = frozenset(),
          where: str = "") -> list[str]:
    lines, pad = [], "  " * indent
    for field, info in model.model_fields.items():
        if info.exclude or f"{where}{field}" in skip:
            continue
        value = values[field] if field in values else info.get_default(call_default_factory=True)
        comment = f"  # {info.description}" if info.description else ""
        nested = _section(info.annotation, value)
        if nested is not None:
            sub = value.model_dump() if isinstance(value, BaseModel) else (value or {})
            lines += [f"{pad}{field}:{comment}", *_emit(nested, sub, indent + 1, skip, f"{where}{field}.")]
        else:
            lines.append(f"{pad}{field}: {_scalar(value)}{comment}")
    return lines


def defs_yaml(name: str, task: str = "binary", labels: bool = True) -> str:
    """The component file of a new use case: every field of config.UseCase, with its default,
    and the task's own defaults."""
    fields = _required(name, task, labels)
    text = "\n".join([
        f"# Use case {name} ({task}): every field with its type, default and meaning: `uv run mlops-assets fields`.",
        f"# Replace the TODO and the placeholder columns, and edit dbt_project/models/{name}/ to match",
        "# your raw files" + (" and label files." if labels else "."),
        f"type: {COMPONENT_TYPE}",
        "attributes:",
        *_emit(config.UseCase, fields, 1, frozenset() if task == "binary" else frozenset(BINARY_ONLY)),
        "",
    ])
    config.UseCase(**yaml.safe_load(text)["attributes"])  # the skeleton as written must be a valid use case
    return text


def _typed_columns(task: str) -> str:
    """The staging select list: one cast per column, `event_date` from the timestamp."""
    exprs = [(f"cast({ENTITY} as {{{{ type_text() }}}})", ENTITY), (f"cast({TIMESTAMP} as timestamp)", TIMESTAMP),
             (f"cast({TIMESTAMP} as date)", "event_date"),
             *[(f"cast({c} as {{{{ type_double() }}}})", c) for c in NUMERIC],
             *[(f"lower(trim(cast({c} as {{{{ type_text() }}}})))", c) for c in CATEGORICAL],
             (f"cast({TARGET} as {TARGET_TYPE[task]})", TARGET)]
    return "\n".join(f"    {expr:<48} as {col}," for expr, col in exprs)


def _features_sql(name: str, task: str, labels: bool) -> str:
    inputs = ",\n".join(f"    s.{c}" for c in [ENTITY, TIMESTAMP, "event_date", *NUMERIC, *CATEGORICAL])
    if not labels:
        return f"""-- One row per example with the model's inputs; derived features belong here so training and
-- batch scoring read the same definitions. Rows whose {TARGET} is empty are scored, not trained on.
select
{inputs},
    s.{TARGET}
from {{{{ ref('stg_{name}') }}}} as s
where {{{{ in_window('s.{TIMESTAMP}') }}}}
"""
    return f"""-- One row per example with the model's inputs, labelled or not; derived features belong here so
-- training and batch scoring read the same definitions. The target is the label file's
-- (labels.{name}, loaded when outcomes arrive) when there is one, else the landing file's, else
-- empty: such rows are scored, and training reads only rows whose target is known.
{{%- set labels_source = source('labels', '{name}') %}}
{{#- The labels table exists once a label file was loaded; before that, the target alone. #}}
{{%- set has_labels = execute and load_relation(labels_source) is not none %}}
select
{inputs},
{{%- if has_labels %}}
    cast(coalesce(l.{TARGET}, s.{TARGET}) as {TARGET_TYPE[task]}) as {TARGET}
{{%- else %}}
    s.{TARGET}
{{%- endif %}}
from {{{{ ref('stg_{name}') }}}} as s
{{%- if has_labels %}}
left join {{{{ labels_source }}}} as l
    on l.{ENTITY} = s.{ENTITY}
    and l.{TIMESTAMP} = s.{TIMESTAMP}
    and {{{{ in_window('l.{TIMESTAMP}') }}}}
{{%- endif %}}
where {{{{ in_window('s.{TIMESTAMP}') }}}}
"""


def _target_tests(task: str) -> str:
    """The target's column in schema.yml: never not_null (rows are scored before their labels
    arrive); a binary target's values are 0 or 1."""
    why = "# empty until its outcome is known: no not_null test"
    if task == "binary":
        return f"""      - name: {TARGET}  {why}
        data_tests:
          - accepted_values:
              arguments:
                values: [0, 1]
"""
    if task == "multiclass":
        return f"""      - name: {TARGET}  {why}; list your classes in an accepted_values test
"""
    return f"""      - name: {TARGET}  {why}; add a range test (tests/) if the number has bounds
"""


def dbt_files(name: str, task: str = "binary", labels: bool = True) -> dict[str, str]:
    """File name -> text of dbt_project/models/<name>/."""
    label_source = f"""  - name: labels
    schema: labels
    tables:
      - name: {name}
        description: One label per ({ENTITY}, {TIMESTAMP}) of the {name} use case; the newest label file wins.
""" if labels else ""
    return {
        "sources.yml": f"""version: 2

sources:
  - name: raw
    schema: raw
    tables:
      - name: {name}
        description: Batch files of the {name} use case, loaded by its raw asset as they land.
{label_source}""",
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
{_typed_columns(task)}
    _source_file
from ranked
where _rank = 1
""",
        f"features_{name}.sql": _features_sql(name, task, labels),
        "schema.yml": f"""version: 2

models:
  - name: features_{name}
    description: Model inputs of the {name} use case ({task}), one row per example, labelled or not.
    columns:
      - name: {ENTITY}
        data_tests: [not_null]
      - name: event_date
        data_tests: [not_null]
{_target_tests(task)}""",
    }


def scaffold_use_case(defs_folder: Path, dbt_models_dir: Path, name: str, task: str = "binary",
                      labels: bool = True) -> list[Path]:
    """Write the skeleton; refuses a bad name, an unknown task or files that already exist."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"use case name {name!r} must be lower-case letters, digits and '_' (start with a letter)")
    if task not in TARGET_TYPE:
        raise ValueError(f"task {task!r} is not one of {sorted(TARGET_TYPE)}")
    targets = {defs_folder / "defs.yaml": defs_yaml(name, task, labels),
               **{dbt_models_dir / name / f: text for f, text in dbt_files(name, task, labels).items()}}
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"not overwriting existing files: {existing}")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


class UseCaseScaffolder(dg.Scaffolder[ScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        project_root = request.project_root or Path.cwd()
        params = request.params or ScaffoldParams()
        scaffold_use_case(Path(request.target_path), project_root / "dbt_project" / "models",
                          Path(request.target_path).name, params.task, params.labels)
