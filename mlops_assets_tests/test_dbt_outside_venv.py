"""The tools of the environment run without it being activated: `.venv/bin/dagster dev` and
`.venv/bin/dg check defs` with a PATH that does not hold the environment's bin folder find the
dbt installed beside their Python, for the code location's `dbt parse` (dagster-dbt's preparer,
run under `dagster dev` and `dg`) and for the dbt resource of the runs. The runs' dbt step
itself starts no dbt executable: it imports the dbt-core of this Python (chain/dbt.py), so
PATH does not matter to it, and a dbt executable named elsewhere is used only by the preparer."""
import os
import subprocess
import sys
from pathlib import Path

from mlops_assets import settings

BIN = str(Path(sys.executable).parent)

PREPARE = """
import sys
from dagster_dbt import DbtProject
from mlops_assets import settings
from mlops_assets.chain.dbt import prepare_if_dev
from mlops_assets.chain.resources import dbt_executable, shared_resources

# the code location's preparation, into a folder of the test's own (the project's target/ is shared)
mine = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR,
                  target=settings.dbt_target(), target_path=sys.argv[1])
prepare_if_dev(mine, dbt_executable())
print("manifest", mine.manifest_path.exists())
print("resource", shared_resources()["dbt"].dbt_executable)
"""


def _without_venv_path() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and os.path.abspath(p) != os.path.abspath(BIN))
    env["DAGSTER_IS_DEV_CLI"] = "1"  # what `dagster dev` and `dg` set: dagster-dbt then runs `dbt parse`
    env["DO_NOT_TRACK"] = "1"
    return env


def test_dbt_parse_and_the_dbt_resource_use_the_dbt_beside_python_without_path(tmp_path):
    env = _without_venv_path()
    assert "dbt" not in [os.path.basename(p) for d in env["PATH"].split(os.pathsep) if os.path.isdir(d)
                         for p in [os.path.join(d, "dbt")] if os.path.exists(p)], "dbt still on PATH"
    done = subprocess.run([sys.executable, "-c", PREPARE, str(tmp_path / "target")], env=env,
                          cwd=settings.PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "was not found on PATH" not in done.stderr
    assert "manifest True" in done.stdout
    assert f"resource {os.path.join(BIN, 'dbt')}" in done.stdout
