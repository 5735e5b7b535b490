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
# The variables the shared resources read through dg.EnvVar (see resources.py). The UI shows
# these names, never the values; `fill_env_defaults` gives the unset ones the embedded defaults.
DUCKDB_PATH_ENV = "MLOPS_DUCKDB_PATH"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
ARTIFACT_ROOT_ENV = "MLOPS_MLFLOW_ARTIFACT_ROOT"
EXPERIMENT_ENV = "MLOPS_MLFLOW_EXPERIMENT"
MLFLOW_UI_URL_ENV = "MLOPS_MLFLOW_UI_URL"
DBT_TARGET_ENV = "MLOPS_DBT_TARGET"
DEFAULT_EXPERIMENT = "mlops-assets"
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"
DEFAULT_DBT_TARGET = "local"

# Values fill_env_defaults put in os.environ. They count as unset afterwards, so a test (or a
# process) that moves MLOPS_DATA_DIR gets paths under the new folder, not the first one's.
_filled: dict[str, set[str]] = {}


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if not value or value in _filled.get(name, ()):
        return None
    return value


def data_dir() -> Path:
    return Path(_env(DATA_DIR_ENV) or PROJECT_ROOT / "data").resolve()


def landing_root() -> Path:
    return data_dir() / "landing"


def duckdb_path() -> Path:
    return Path(_env(DUCKDB_PATH_ENV) or data_dir() / "warehouse.duckdb").resolve()


def reports_dir() -> Path:
    return data_dir() / "reports"


def drift_report_path(use_case: str) -> Path:
    """Stable path of a use case's latest drift report (overwritten on each materialization)."""
    return reports_dir() / use_case / "drift_report.html"


def mlflow_dir() -> Path:
    return data_dir() / "mlflow"


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store inside the data folder."""
    return _env(TRACKING_URI_ENV) or f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return _env(ARTIFACT_ROOT_ENV) or (mlflow_dir() / "artifacts").as_uri()


def mlflow_experiment() -> str:
    return _env(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT


def mlflow_ui_url() -> str:
    """Base of the links to runs and model versions in metadata and logs."""
    return (_env(MLFLOW_UI_URL_ENV) or DEFAULT_MLFLOW_UI_URL).rstrip("/")


def dbt_target() -> str:
    return _env(DBT_TARGET_ENV) or DEFAULT_DBT_TARGET


def resource_env_values() -> dict[str, str]:
    """Each resource variable with the value it has now: the user's, else the embedded default."""
    return {DUCKDB_PATH_ENV: str(duckdb_path()), TRACKING_URI_ENV: mlflow_tracking_uri(),
            ARTIFACT_ROOT_ENV: mlflow_artifact_root(), EXPERIMENT_ENV: mlflow_experiment(),
            MLFLOW_UI_URL_ENV: mlflow_ui_url(), DBT_TARGET_ENV: dbt_target()}


def fill_env_defaults() -> list[str]:
    """Put the embedded default in os.environ for every resource variable the user did not
    set, so that the dg.EnvVar settings of the resources resolve with no variable set (and in
    the run workers, which inherit the environment). Returns the names filled, never values."""
    filled = []
    for name, value in resource_env_values().items():
        if _env(name) is None:
            os.environ[name] = value
            _filled.setdefault(name, set()).add(value)
            filled.append(name)
    return filled


def display_uri(uri: str) -> str:
    """A URI fit for logs, metadata and the terminal: any user:password part is dropped, and
    so is a query string (tokens travel there too)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if not (parts.username or parts.password or parts.query):
        return uri  # urlunsplit would rewrite sqlite:////abs to sqlite://abs
    if parts.username or parts.password:
        host = parts.hostname or ""
        parts = parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host)
    if parts.query:
        parts = parts._replace(query="<hidden>")
    return urlunsplit(parts)


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
        TRACKING_URI_ENV: mlflow_tracking_uri(),
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
