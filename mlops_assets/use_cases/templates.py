"""Templates in use-case files: environment variables named `MLOPS_UC_*`, and nothing else.

A value of a use-case file (a `defs.yaml` under mlops_assets/defs/ or a file under
MLOPS_USE_CASE_DIRS) may read an environment variable whose name starts with `MLOPS_UC_`:
`{{ env.MLOPS_UC_X }}` (null when unset), `{{ env('MLOPS_UC_X') }}` (an error when unset) or
`{{ env('MLOPS_UC_X', 'default') }}`. The prefix is an opt-in: a variable is readable by use-case
files only when named for them, so secrets (`MLOPS_WAREHOUSE_PG_PASSWORD`, tokens, URLs with
credentials) never are. Nothing else is rendered: any other `{{ }}` expression, any `{% %}` or
`{# #}`, a template in a key, a value read from the environment that holds template syntax, and
Dagster's `template_vars_module` are refused with an error naming the file and the field.

This is a parser of that one form, not Jinja: Dagster renders `{{ }}` in a component's defs.yaml
with an unsandboxed Jinja template and a scope holding every environment variable, so the
UseCase component reads its file through the loader (loader.py), which renders it with this
module, and Dagster never renders a use case's attributes.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from mlops_assets.use_cases.config import UseCaseError

ALLOWED_PREFIX = "MLOPS_UC_"
# Jinja's default delimiters: what Dagster's renderer would act on.
MARKERS = ("{{", "{%", "{#")
# Dagster's own keys of a component file that run code or import modules.
REFUSED_KEYS = ("template_vars_module",)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPR = re.compile(
    rf"""\s*env\s*(?:
        \.\s*(?P<attr>{_NAME})
      | \(\s*(?P<q>['"])(?P<name>{_NAME})(?P=q)\s*(?:,\s*(?P<dq>['"])(?P<default>[^'"\\{{}}%#]*)(?P=dq)\s*)?\)
    )\s*""", re.VERBOSE)


def allowed(name: str) -> bool:
    return name.startswith(ALLOWED_PREFIX) and len(name) > len(ALLOWED_PREFIX)


def has_template(text: str) -> bool:
    return any(m in text for m in MARKERS)


class _Refused(Exception):
    pass


def _lookup(name: str, default: str | None, required: bool) -> str | None:
    if not allowed(name):
        raise _Refused(f"reads the environment variable {name}; use-case files may read only variables "
                       f"named {ALLOWED_PREFIX}* (mlops_assets/use_cases/templates.py)")
    value = os.environ.get(name, default)
    if value is None and required:
        raise _Refused(f"the environment variable {name} is not set and the template gives no default "
                       f"(`{{{{ env('{name}', 'default') }}}}`)")
    if value is not None and has_template(value):
        raise _Refused(f"the environment variable {name} holds template syntax ({', '.join(MARKERS)}); "
                       "its value is not rendered again")
    return value


def render_value(text: str) -> str | None:
    """One string with its `{{ env... }}` blocks replaced; a string that is one `{{ env.X }}` of an
    unset variable is None (as Dagster renders it). Raises _Refused for anything else."""
    if not has_template(text):
        return text
    blocks = list(_BLOCK.finditer(text))
    whole = len(blocks) == 1 and blocks[0].span() == (0, len(text))
    out, pos = [], 0
    for block in blocks:
        expr = _EXPR.fullmatch(block.group(1))
        if expr is None:
            raise _Refused(f"template {_short(block.group(0))} is not allowed: only `{{{{ env.{ALLOWED_PREFIX}NAME }}}}` "
                           f"or `{{{{ env('{ALLOWED_PREFIX}NAME', 'default') }}}}` is rendered")
        if expr.group("attr"):
            value = _lookup(expr.group("attr"), None, required=not whole)
        else:
            value = _lookup(expr.group("name"), expr.group("default"), required=True)
        if whole:
            return value
        out += [text[pos:block.start()], value]
        pos = block.end()
    out.append(text[pos:])
    literal = "".join(text[a:b] for a, b in _gaps(blocks, len(text)))
    if has_template(literal):  # `{%`, `{#` or an unclosed `{{` outside the blocks
        raise _Refused(f"template syntax in {_short(text)} is not allowed: only `{{{{ env.{ALLOWED_PREFIX}NAME }}}}` is rendered")
    return "".join(out)


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _gaps(blocks: list[re.Match], end: int) -> list[tuple[int, int]]:
    gaps, pos = [], 0
    for b in blocks:
        gaps.append((pos, b.start()))
        pos = b.end()
    gaps.append((pos, end))
    return gaps


def render(value: Any, source: str | Path, field: str = "") -> Any:
    """``value`` (a use-case file's mapping, or part of it at ``field``) with its allowed templates
    rendered. Raises UseCaseError naming the file and the field for anything refused."""
    if isinstance(value, str):
        try:
            return render_value(value)
        except _Refused as exc:
            raise UseCaseError(f"{source}: field {field or '(top level)'}: {exc}") from None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and has_template(key):
                raise UseCaseError(f"{source}: field {path}: template syntax in a key is not allowed")
            if key in REFUSED_KEYS and not field:
                raise UseCaseError(f"{source}: field {key}: not allowed in a use-case file (it imports a "
                                   "Python module); use `{{ env.MLOPS_UC_NAME }}` for values from the environment")
            out[key] = render(item, source, path)
        return out
    if isinstance(value, list | tuple):
        return [render(item, source, f"{field}[{i}]") for i, item in enumerate(value)]
    return value


def check_component_file(path: Path, *, except_attributes_of: str | None = None) -> None:
    """Refuse a component file (every YAML document in it) holding anything but allowed
    templates, before Dagster renders it. With ``except_attributes_of`` (a component type), the
    `attributes` of that type's documents are left out: its loader renders them itself."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UseCaseError(f"{path}: cannot be read as a YAML file: {exc}") from exc
    for doc in documents:
        if except_attributes_of and isinstance(doc, dict) and doc.get("type") == except_attributes_of:
            doc = {k: v for k, v in doc.items() if k != "attributes"}
        render(doc, path)


class EnvScope:
    """`env` in Dagster's template scope for the UseCase component: allowed variables only. The
    component renders its attributes itself; this covers whatever Dagster would render anyway."""

    def __call__(self, key: str, default: str | None = None) -> str | None:
        try:
            return _lookup(key, default, required=default is None)
        except _Refused as exc:
            raise UseCaseError(str(exc)) from None

    def __getattr__(self, key: str) -> str | None:
        if key.startswith(("jinja", "_")):
            raise AttributeError(key)
        try:
            return _lookup(key, None, required=False)
        except _Refused as exc:
            raise UseCaseError(str(exc)) from None
