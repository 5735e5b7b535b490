"""Whether the dbt manifest (target/manifest.json) still describes the project on disk, so that
`mlops-assets prepare` can skip `dbt parse` and the dbt step can keep a parsed manifest.

Pure: files and values in, a verdict out (no dbt, no Dagster). The manifest is fresh when a
stamp written beside it after the parse names the same target, the same profile values and the
same set of dbt files, and the manifest is newer than every one of those files.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STAMP = "manifest.stamp.json"
# Everything dbt parses (the project's own folders and installed packages) ...
DBT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses", "dbt_packages")
# ... and the files that configure it.
DBT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "package-lock.yml",
             "selectors.yml")
_ENV_VAR = re.compile(r"env_var\(\s*['\"]([A-Za-z0-9_]+)['\"]")


@dataclass(frozen=True)
class Freshness:
    fresh: bool
    reason: str  # why the manifest must be parsed again, or why it need not be


def dbt_files(project_dir: Path) -> list[Path]:
    """The files dbt reads when it parses the project, sorted."""
    found = [project_dir / name for name in DBT_FILES if (project_dir / name).is_file()]
    for folder in DBT_FOLDERS:
        root = project_dir / folder
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sorted(found)


def profile_fingerprint(profiles_yml: Path, target: str, env: Mapping[str, str]) -> str:
    """A hash of what the profile resolves to: the target's name and the value of every variable
    profiles.yml reads (values may be secrets: only their hash is kept)."""
    names = sorted(set(_ENV_VAR.findall(profiles_yml.read_text()))) if profiles_yml.is_file() else []
    values = {"target": target, **{n: env.get(n) for n in names}}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def manifest_state(project_dir: Path, profiles_dir: Path, target: str, env: Mapping[str, str]) -> dict:
    """What the stamp records about a parse: target, profile fingerprint, the dbt files."""
    return {"target": target,
            "profile": profile_fingerprint(profiles_dir / "profiles.yml", target, env),
            "files": [p.relative_to(project_dir).as_posix() for p in dbt_files(project_dir)]}


def write_stamp(manifest: Path, state: dict) -> Path:
    """Record the state a parse was made from, beside its manifest (atomically)."""
    stamp = manifest.with_name(STAMP)
    tmp = stamp.with_name(f".{STAMP}.{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, stamp)
    return stamp


def manifest_freshness(manifest: Path, project_dir: Path, profiles_dir: Path, target: str,
                       env: Mapping[str, str]) -> Freshness:
    """Whether `manifest` was parsed for this target and profile from the dbt files as they are."""
    stamp = manifest.with_name(STAMP)
    if not manifest.is_file():
        return Freshness(False, f"no manifest at {manifest}")
    try:
        recorded = json.loads(stamp.read_text())
    except FileNotFoundError:
        return Freshness(False, f"no stamp {stamp.name} beside the manifest (made by another tool)")
    except (OSError, ValueError) as exc:
        return Freshness(False, f"unreadable stamp {stamp}: {exc}")
    now = manifest_state(project_dir, profiles_dir, target, env)
    if recorded.get("target") != target:
        return Freshness(False, f"the manifest was made for target {recorded.get('target')!r}, not {target!r}")
    if recorded.get("profile") != now["profile"]:
        return Freshness(False, f"the profile's values for target {target!r} changed since the manifest was made")
    if recorded.get("files") != now["files"]:
        added = sorted(set(now["files"]) - set(recorded.get("files") or []))
        gone = sorted(set(recorded.get("files") or []) - set(now["files"]))
        return Freshness(False, "dbt files " + ", ".join([*(f"added {f}" for f in added[:3]),
                                                          *(f"removed {f}" for f in gone[:3])]))
    made = manifest.stat().st_mtime_ns
    for rel in now["files"]:
        # equal times count as changed: a file saved in the same clock tick as the parse
        if (project_dir / rel).stat().st_mtime_ns >= made:
            return Freshness(False, f"{rel} changed since the manifest was made")
    return Freshness(True, f"target {target!r}, {len(now['files'])} dbt files unchanged")
