"""`dagster dev` and `dg` from a fresh clone: no manifest yet, and the code location builds it
(DbtProject.prepare_if_dev runs `dbt parse` when DAGSTER_IS_DEV_CLI is set, as both CLIs do)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration


def _copy_without_manifest(dest: Path) -> Path:
    dest.mkdir()
    shutil.copy(REPO / "pyproject.toml", dest)
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", "dbt_packages", ".user.yml")
    for folder in ("mlops_assets", "dbt_project"):
        shutil.copytree(REPO / folder, dest / folder, ignore=ignore)
    return dest / "dbt_project" / "target" / "manifest.json"


def test_dg_list_defs_builds_the_missing_manifest(tmp_path, data_dir):
    project = tmp_path / "clone"
    manifest = _copy_without_manifest(project)
    assert not manifest.exists()
    # the copy's package shadows the installed one
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_IS_DEV_CLI"} | {"PYTHONPATH": str(project),
                                                                                "NO_COLOR": "1"}

    # outside the dev CLIs nothing parses behind the user's back: the error names the fix
    plain = subprocess.run([sys.executable, "-c", "from mlops_assets.chain.build import dbt_assets_of; "
                            "from mlops_assets.use_cases.loader import load_use_cases; "
                            "[dbt_assets_of(u) for u in load_use_cases()]"],
                           cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0 and "dbt manifest not found" in plain.stderr, plain.stderr[-2000:]
    assert not manifest.exists()

    listed = subprocess.run([str(BIN / "dg"), "list", "defs", "--json"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert manifest.exists()
    keys = {a["asset_key"] for a in json.loads(listed.stdout)["assets"]}
    assert {"churn/stg_churn", "churn/features_churn", "churn/training_set"} <= keys

    # Once built, later loads under the dev CLIs (every run worker of `dagster dev` loads the code
    # location) keep it: no dbt parse while the manifest is newer than every dbt file...
    stamp = manifest.with_name("manifest.stamp.json")
    assert stamp.exists()
    built = manifest.stat().st_mtime_ns
    dev_env = env | {"DAGSTER_IS_DEV_CLI": "1"}
    load = [sys.executable, "-c", "import mlops_assets.definitions"]
    again = subprocess.run(load, cwd=project, env=dev_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert manifest.stat().st_mtime_ns == built
    # ... and a parse again once a model changes.
    model = next((project / "dbt_project" / "models" / "churn").glob("*.sql"))
    model.write_text(model.read_text() + "\n")
    changed = subprocess.run(load, cwd=project, env=dev_env, capture_output=True, text=True, timeout=300)
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert manifest.stat().st_mtime_ns > built
