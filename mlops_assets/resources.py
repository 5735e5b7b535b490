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
    """The project's DuckDB file. DuckDB lets one process write at a time, so connections are
    short-lived and opening one waits (with a bound) while another process holds the lock."""

    path: str
    lock_timeout_s: float = 120.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.path).exists():
            raise FileNotFoundError(f"warehouse {self.path} does not exist yet: materialize the raw assets first")
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
            from mlops_assets.ingest.landing import in_utc

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

    cfg = init_context.resource_config
    uri = cfg["mlflow_tracking_uri"]
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # Both: the registry URI otherwise stays wherever an earlier run in this process left it.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(cfg["experiment_name"]) is None:
        mlflow.create_experiment(cfg["experiment_name"], artifact_location=cfg["artifact_location"])
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
