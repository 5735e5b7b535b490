"""The Dagster instance's home on this machine: the dagster.yaml mlops-assets writes there (per
profile: storage, run queue and pools, run monitoring with the local launcher, run retries,
sensor threads) and the variables a Dagster process started by mlops-assets needs.
"""
from __future__ import annotations

import os
from pathlib import Path

from mlops_assets import settings
from mlops_assets.instance.concurrency import instance_concurrency_yaml

# Files starting with this line are ours: rewritten when the defaults or the profile change.
DAGSTER_YAML_MARK = "# Written by mlops-assets"
DAGSTER_YAML_HEADER = f"{DAGSTER_YAML_MARK} for the embedded default"
_HEADERS = {settings.EMBEDDED: f"{DAGSTER_YAML_HEADER} (DuckDB: one writing process at a time).",
            settings.SHARED: f"{DAGSTER_YAML_MARK} for the shared profile (PostgreSQL)."}
# Runs, event logs and schedules in PostgreSQL; the URL comes from the variable (filled by
# mlops-assets from MLOPS_POSTGRES_URL), so no password is written to this file.
_SHARED_STORAGE = f"""\
storage:
  postgres:
    postgres_url:
      env: {settings.DAGSTER_PG_URL_ENV}
"""
_DAGSTER_YAML_REST = """\
# The queue is looked at every second (Dagster's default: 5 s), so a run a sensor or the UI
# submits starts within about a second of its turn; the limits are under `concurrency` above.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
# The default launcher plus a check that a run's worker process is still alive, so that run
# monitoring (below) fails a run whose worker was killed instead of leaving it STARTED.
run_launcher:
  module: mlops_assets.instance.launcher
  class: LocalRunLauncher
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  # A run that died holding a warehouse pool slot gives it back (the daemon frees the slots of
  # runs that ended this long ago); without it every later writer would wait for ever.
  free_slots_after_run_end_seconds: 30
# A run whose worker died (killed, machine restarted) is launched again once, by the daemon: event
# runs carry dagster/max_retries (chain/landing_sensor.py), so a landed day is never left half
# loaded. A run that failed in a step (bad data, a failed gate) is not retried: it would fail again.
run_retries:
  enabled: true
  max_retries: 0
  retry_on_asset_or_op_failure: false
# Sensors evaluated side by side: one landing sensor per use case polls every few seconds, and the
# daemon's default (one sensor after another) lets a round of many use cases outlast the poll.
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 2
telemetry:
  enabled: false
"""


def dagster_yaml(profile_name: str | None = None) -> str:
    """The instance's dagster.yaml for a profile (default: the current one)."""
    name = profile_name or settings.profile()
    if name not in settings.PROFILES:
        raise settings.SettingsError(f"unknown profile {name!r}: expected one of {', '.join(settings.PROFILES)}")
    return (_HEADERS[name] + "\n# mlops-assets rewrites this file when its defaults change, unless you remove this "
            "header.\n" + (_SHARED_STORAGE if name == settings.SHARED else "") + instance_concurrency_yaml(name)
            + _DAGSTER_YAML_REST)


DAGSTER_YAML = dagster_yaml(settings.EMBEDDED)


def write_dagster_yaml(home: Path, profile_name: str | None = None) -> bool:
    """Write the profile's dagster.yaml unless the user has their own (a file without our
    header). Returns True when written."""
    path = home / "dagster.yaml"
    wanted = dagster_yaml(profile_name)
    if path.exists():
        current = path.read_text()
        if current == wanted or not current.startswith(DAGSTER_YAML_MARK):
            return False
    path.write_text(wanted)
    return True


def ensure_local_env() -> dict[str, str]:
    """Fill in the standard variables with the embedded defaults (used by the CLI before it
    starts Dagster). Values already set by the user are left alone. Returns what was set."""
    defaults = {
        "DAGSTER_HOME": str(settings.dagster_home()),
        settings.TRACKING_URI_ENV: settings.mlflow_tracking_uri(),
        settings.DATA_DIR_ENV: str(settings.data_dir()),
        "DO_NOT_TRACK": "1",
    }
    if settings.is_shared():  # dagster.yaml reads the instance's database URL from this variable
        defaults[settings.DAGSTER_PG_URL_ENV] = settings.dagster_pg_url()
    applied = {}
    for key, value in defaults.items():
        if not os.environ.get(key):
            os.environ[key] = value
            applied[key] = value
    user_url = os.environ.get(settings.DAGSTER_PG_URL_ENV)
    if settings.is_shared() and user_url and settings.sqlalchemy_url(user_url) != user_url:
        # dagster.yaml hands the variable to SQLAlchemy as it is: name the installed driver.
        os.environ[settings.DAGSTER_PG_URL_ENV] = applied[settings.DAGSTER_PG_URL_ENV] = settings.sqlalchemy_url(user_url)
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(home)
    settings.mlflow_dir().mkdir(parents=True, exist_ok=True)
    return applied
