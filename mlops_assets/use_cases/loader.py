"""The one loader of use cases: `load(path)` reads one file into a validated UseCase.

A use case is a `defs.yaml` of type `mlops_assets.components.UseCase` under mlops_assets/defs/
(the component loads each through `load`); folders listed in MLOPS_USE_CASE_DIRS add more, as
plain YAML files of use-case fields or as `<name>/defs.yaml` component files. `load_use_cases()`
returns all of them for the commands that are not Dagster (serve, rollback, the main job).

Templates in use-case files read environment variables named MLOPS_UC_* and nothing else
(templates.py). MLOPS_USE_CASE_OVERRIDES names a YAML file `{<use case>: {<field>: ...}}` deep-merged into the
use case's fields (e.g. stricter thresholds in CI), so an environment never copies a file.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops_assets.use_cases import templates
from mlops_assets.use_cases.config import InvalidUseCase, UseCase, UseCaseError

log = logging.getLogger(__name__)

COMPONENT_TYPE = "mlops_assets.components.UseCase"
OVERRIDES_ENV = "MLOPS_USE_CASE_OVERRIDES"
USE_CASE_DIRS_ENV = "MLOPS_USE_CASE_DIRS"
DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"


class NotAUseCase(UseCaseError):
    """A defs.yaml of another component type (the defs folder may hold those too)."""


@dataclass(frozen=True)
class UseCaseSet:
    use_cases: list[UseCase]
    invalid: list[InvalidUseCase]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; mappings merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for k, v in override.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def read_overrides() -> dict[str, dict[str, Any]]:
    """The override file named by MLOPS_USE_CASE_OVERRIDES, or {} when the variable is unset."""
    path = os.environ.get(OVERRIDES_ENV)
    if not path:
        return {}
    file = Path(path)
    if not file.is_file():
        raise UseCaseError(f"{file}: override file (from {OVERRIDES_ENV}) does not exist")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UseCaseError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise UseCaseError(f"{file}: expected a mapping of use case name -> mapping of fields to override")
    return raw


def to_use_case(fields: dict[str, Any], source: str | Path, overrides: dict[str, dict] | None = None) -> UseCase:
    """Validate a use case's fields (after its overrides, if any). The error names the file,
    the field and, when an override was applied, the override file."""
    overrides = read_overrides() if overrides is None else overrides
    own = overrides.get(fields.get("name")) if isinstance(fields.get("name"), str) else None
    merged = deep_merge(fields, own) if own else fields
    if "source_file" in merged:
        raise UseCaseError(f"{source}: invalid use case: source_file: set by the loader, not in files")
    try:
        return UseCase(**merged, source_file=str(source))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'use case'}: {e['msg']}" for e in exc.errors())
        via = f" (with overrides from {os.environ.get(OVERRIDES_ENV)})" if own else ""
        raise UseCaseError(f"{source}: invalid use case{via}: {problems}") from exc


def read_fields(path: Path) -> dict[str, Any] | None:
    """A file's use-case fields: a plain YAML mapping, or the `attributes` of a defs.yaml of
    type mlops_assets.components.UseCase (None for a defs.yaml of another component type).
    Templates may read `MLOPS_UC_*` variables only (templates.py); anything else is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UseCaseError(f"{path}: cannot be read as UTF-8 text: {exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UseCaseError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise UseCaseError(f"{path}: expected a mapping of use case fields, got {type(raw).__name__}")
    if "type" not in raw:
        return templates.render(raw, path)
    if raw["type"] != COMPONENT_TYPE:
        return None
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        raise UseCaseError(f"{path}: a {COMPONENT_TYPE} needs an `attributes` mapping of use case fields")
    return templates.render(raw, path)["attributes"]  # the whole file: post_processing too


def load(path: Path, overrides: dict[str, dict] | None = None) -> UseCase:
    """One use case from a plain YAML file of its fields or from a component defs.yaml, with its
    templates rendered and its overrides (default: MLOPS_USE_CASE_OVERRIDES) applied. Raises
    UseCaseError naming the file and the field."""
    fields = read_fields(Path(path))
    if fields is None:
        raise NotAUseCase(f"{path}: not a use case (its `type` is not {COMPONENT_TYPE})")
    return to_use_case(fields, path, overrides)


def _component_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("defs.yaml") if "__pycache__" not in p.parts)


def use_case_files(folder: Path) -> list[Path]:
    """Files of an MLOPS_USE_CASE_DIRS folder: plain *.yaml / *.yml and */defs.yaml."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*/defs.yaml")])


def extra_dirs() -> list[Path]:
    """Folders of extra use cases (MLOPS_USE_CASE_DIRS); the defs folder is always read."""
    return [Path(p) for p in os.environ.get(USE_CASE_DIRS_ENV, "").split(os.pathsep) if p]


def load_set(defs_dir: Path | None = DEFS_DIR, dirs: list[Path] | None = None) -> UseCaseSet:
    """Use cases of the defs folder and of ``dirs`` (default: MLOPS_USE_CASE_DIRS), sorted by
    name, and every file or folder that failed with its error. Names are unique (the second
    file is the failing one); every name in the override file must be one of them."""
    invalid: list[InvalidUseCase] = []
    try:
        overrides = read_overrides()
    except UseCaseError as exc:  # a broken override file fails every use case it could touch
        return UseCaseSet([], [InvalidUseCase(os.environ.get(OVERRIDES_ENV, ""), str(exc))])
    files = _component_files(defs_dir) if defs_dir is not None else []
    for folder in extra_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            invalid.append(InvalidUseCase(str(folder), f"use case folder {folder} does not exist (from {USE_CASE_DIRS_ENV})"))
            continue
        files += use_case_files(folder)
    found: dict[str, UseCase] = {}
    for path in files:
        try:
            uc = load(path, overrides)
            if uc.name in found:
                raise UseCaseError(f"{path}: use case name {uc.name!r} is already defined in {found[uc.name].source_file}")
        except NotAUseCase:
            continue
        except UseCaseError as exc:
            invalid.append(InvalidUseCase(str(path), str(exc)))
            continue
        found[uc.name] = uc
    unknown = set(overrides) - set(found)
    if unknown and not invalid:
        invalid.append(InvalidUseCase(os.environ.get(OVERRIDES_ENV, ""),
                                      f"{os.environ.get(OVERRIDES_ENV)}: overrides for unknown use case(s) "
                                      f"{sorted(unknown)}; known: {sorted(found)}"))
    return UseCaseSet([found[k] for k in sorted(found)], invalid)


def load_all(defs_dir: Path | None = DEFS_DIR, dirs: list[Path] | None = None) -> list[UseCase]:
    """Like load_set, but the first failure raises."""
    loaded = load_set(defs_dir, dirs)
    if loaded.invalid:
        raise UseCaseError("\n".join(i.error for i in loaded.invalid))
    return loaded.use_cases


def is_in_defs_folder(path: str | Path | None) -> bool:
    """Whether a use case's file is in the defs folder (there the UseCase component builds it)."""
    return DEFS_DIR in Path(path or "").parents


def load_use_case_set(dirs: list[Path] | None = None) -> UseCaseSet:
    """Every use case that loads, sorted by name, and every file that does not: the defs
    folder's defs.yaml files and MLOPS_USE_CASE_DIRS (or only ``dirs`` when given). One bad
    file must not take the others down: the code location shows it as a failing asset."""
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
