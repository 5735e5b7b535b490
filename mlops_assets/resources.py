"""Resources shared by every use case: the DuckDB warehouse, MLflow tracking and dbt.

Heavy libraries (mlflow, dagster-mlflow) are imported when a resource is initialised for a
run step, not when the code location loads.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from mlops_assets import settings


class DuckDBWarehouse(dg.ConfigurableResource):
    """The project's DuckDB file. DuckDB lets one process write at a time (or several read), so
    connections are short-lived and every opening first takes the warehouse lock
    (`mlops_assets.warehouse_lock`): shared for readers, exclusive for writers, waiting up to
    `lock_timeout_s` and logging for whom it waits. Code that opens the warehouse through
    `connect()` needs nothing else; a subprocess that writes (dbt) runs inside `write_lock()`."""

    path: str
    lock_timeout_s: float = 900.0

    def write_lock(self, holder: str | None = None):
        """The exclusive warehouse lock, for work outside `connect()` that writes the file (a
        whole `dbt build`). Context manager; re-entrant within a process."""
        from mlops_assets.warehouse_lock import warehouse_lock

        return warehouse_lock(self.path, exclusive=True, timeout_s=self.lock_timeout_s, holder=holder,
                              log=dg.get_dagster_logger().info)

    @contextmanager
    def connect(self, read_only: bool = False, holder: str | None = None
                ) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        import duckdb

        from mlops_assets.ingest.landing import in_utc
        from mlops_assets.warehouse_lock import warehouse_lock

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.path).exists():
            raise FileNotFoundError(f"warehouse {self.path} does not exist yet: materialize the raw assets first")
        with warehouse_lock(self.path, exclusive=not read_only, timeout_s=self.lock_timeout_s, holder=holder,
                            log=dg.get_dagster_logger().info):
            # Processes that skip the lock (a user's duckdb shell) may still hold the file: retry.
            deadline = time.monotonic() + self.lock_timeout_s
            delay = 0.1
            while True:
                try:
                    con = duckdb.connect(self.path, read_only=read_only)
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            try:
                yield in_utc(con)
            finally:
                con.close()


def mlflow_config() -> dict:
    return {
        "experiment_name": os.environ.get("MLOPS_MLFLOW_EXPERIMENT", "mlops-assets"),
        "mlflow_tracking_uri": settings.mlflow_tracking_uri(),
        "artifact_location": settings.mlflow_artifact_root(),
    }


@dg.resource(
    config_schema={
        "experiment_name": dg.Field(str),
        "mlflow_tracking_uri": dg.Field(str),
        "artifact_location": dg.Field(str),
    },
    description="dagster-mlflow tracking: one MLflow parent run per Dagster run, tagged with its run id.",
)
def mlflow_tracking(init_context: dg.InitResourceContext):
    """dagster-mlflow's ``mlflow_tracking`` resource with its import deferred to run time, and
    the experiment created with an artifact location inside the data folder (MLflow would
    otherwise put artifacts under the current working directory)."""
    import mlflow
    from dagster_mlflow.resources import MlFlow

    from mlops_assets.recovery import end_orphaned_mlflow_runs

    cfg = init_context.resource_config
    uri = cfg["mlflow_tracking_uri"]
    log = init_context.log or dg.get_dagster_logger()
    store = sqlite_store_path(uri)
    if store is not None:
        check_store_writable(uri, store)
        if not store.exists():
            log.warning(new_store_warning(uri, registered_model_history(init_context.instance)))
        store.parent.mkdir(parents=True, exist_ok=True)
    # Both: the registry URI otherwise stays wherever an earlier run in this process left it.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(cfg["experiment_name"])
        if experiment is None:
            mlflow.create_experiment(cfg["experiment_name"], artifact_location=cfg["artifact_location"])
            experiment = mlflow.get_experiment_by_name(cfg["experiment_name"])
        # Runs left RUNNING by a Dagster run that was killed: their run is over, say so.
        end_orphaned_mlflow_runs(mlflow.MlflowClient(), [experiment.experiment_id], init_context.instance,
                                 init_context.run.run_id if init_context.run else None, log=log.warning)
    except Exception as exc:
        if "readonly" in str(exc).lower().replace("-", "").replace(" ", ""):
            raise PermissionError(f"the MLflow store {uri} is read-only: {str(exc).splitlines()[0]}") from exc
        raise
    upstream_ctx = init_context.replace_config(
        {"experiment_name": cfg["experiment_name"], "mlflow_tracking_uri": uri, "env": {}, "extra_tags": {},
         "parent_run_id": None, "mlflow_run_id": None, "env_to_tag": None}
    )
    tracker = MlFlow(upstream_ctx)
    try:
        yield tracker
    finally:
        # Close the parent run when the step's resources are torn down, so runs do not stay
        # "RUNNING" in the MLflow UI; a later step of the same Dagster run resumes it by tag.
        if mlflow.active_run() is not None:
            mlflow.end_run()


def sqlite_store_path(uri: str) -> Path | None:
    """The file of a SQLite MLflow store (sqlite:////abs or sqlite:///rel), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///")).resolve()


def check_store_writable(uri: str, store: Path) -> None:
    """MLflow's own error for a read-only SQLite file names no path; name it before MLflow tries."""
    if store.exists() and not os.access(store, os.W_OK):
        raise PermissionError(f"the MLflow store {uri} is read-only: {store} is not writable by this user")
    folder = store.parent if store.parent.exists() else next(p for p in store.parents if p.exists())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"the MLflow store {uri} cannot be written: its folder {folder} is not writable "
                              "(SQLite needs to create journal files beside the store)")


def registered_model_history(instance: dg.DagsterInstance | None) -> list[str]:
    """Candidate and champion assets this Dagster instance has materializations of."""
    from mlops_assets.lineage import CANDIDATE, CHAMPION

    if instance is None:
        return []
    return sorted(k.to_user_string() for k in instance.get_asset_keys()
                  if k.path[-1] in (CANDIDATE, CHAMPION) and instance.get_latest_materialization_event(k))


def new_store_warning(uri: str, history: list[str]) -> str:
    msg = (f"MLflow store {uri} does not exist: creating a NEW, EMPTY store. Its model registry holds no "
           "model, so the next candidate is compared with no champion.")
    if history:
        msg += (f" This Dagster instance has materialized {', '.join(history)}: their models were registered in "
                "a store that is now missing. If that is not intended, stop and restore the store (or point "
                "MLFLOW_TRACKING_URI at it).")
    return msg


def dbt_project():
    """The dbt project, with the manifest expected under target/ (made by `mlops-assets prepare`)."""
    from dagster_dbt import DbtProject

    return DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python, so the venv need not be activated."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def shared_resources() -> dict:
    from dagster_dbt import DbtCliResource

    return {
        "warehouse": DuckDBWarehouse(path=str(settings.duckdb_path())),
        "mlflow": mlflow_tracking.configured(mlflow_config()),
        "dbt": DbtCliResource(project_dir=str(settings.DBT_PROJECT_DIR), profiles_dir=str(settings.DBT_PROJECT_DIR),
                              dbt_executable=dbt_executable()),
    }
