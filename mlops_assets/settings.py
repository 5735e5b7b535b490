"""Where things live on disk. One data folder holds everything a run writes.

Resolution order for each location: its standard environment variable, then a path under the
data folder (``MLOPS_DATA_DIR``, default ``<project>/data``). Nothing here imports heavy libraries.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

DATA_DIR_ENV = "MLOPS_DATA_DIR"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data").resolve()


def landing_root() -> Path:
    return data_dir() / "landing"


def duckdb_path() -> Path:
    return Path(os.environ.get("MLOPS_DUCKDB_PATH") or data_dir() / "warehouse.duckdb").resolve()


def reports_dir() -> Path:
    return data_dir() / "reports"


def drift_report_path(use_case: str) -> Path:
    """Stable path of a use case's latest drift report (overwritten on each materialization)."""
    return reports_dir() / use_case / "drift_report.html"


def mlflow_dir() -> Path:
    return data_dir() / "mlflow"


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store inside the data folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return os.environ.get("MLOPS_MLFLOW_ARTIFACT_ROOT") or (mlflow_dir() / "artifacts").as_uri()


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()


DAGSTER_YAML_HEADER = "# Written by mlops-assets for the embedded default"
DAGSTER_YAML = f"""\
{DAGSTER_YAML_HEADER} (DuckDB: one writing process at a time).
# mlops-assets rewrites this file when its defaults change, unless you remove this header.
concurrency:
  runs:
    max_concurrent_runs: 1
# The default launcher plus a check that a run's worker process is still alive, so that run
# monitoring (below) fails a run whose worker was killed instead of leaving it STARTED.
run_launcher:
  module: mlops_assets.recovery
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
telemetry:
  enabled: false
"""


def write_dagster_yaml(home: Path) -> bool:
    """Write dagster.yaml unless the user has their own (a file without our header). Returns
    True when written."""
    path = home / "dagster.yaml"
    if path.exists():
        current = path.read_text()
        if current == DAGSTER_YAML or not current.startswith(DAGSTER_YAML_HEADER):
            return False
    path.write_text(DAGSTER_YAML)
    return True


def ensure_local_env() -> dict[str, str]:
    """Fill in the standard variables with the embedded defaults (used by the CLI before it
    starts Dagster). Values already set by the user are left alone. Returns what was set."""
    defaults = {
        "DAGSTER_HOME": str(dagster_home()),
        "MLFLOW_TRACKING_URI": mlflow_tracking_uri(),
        DATA_DIR_ENV: str(data_dir()),
        "DO_NOT_TRACK": "1",
    }
    applied = {}
    for key, value in defaults.items():
        if not os.environ.get(key):
            os.environ[key] = value
            applied[key] = value
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(home)
    mlflow_dir().mkdir(parents=True, exist_ok=True)
    return applied
