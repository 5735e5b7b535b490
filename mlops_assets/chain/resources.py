"""Resources shared by every use case: the warehouse (DuckDB, or PostgreSQL on the shared
profile: mlops_assets/warehouse), MLflow (tracking and registry)
and dbt. Their settings come from environment variables through dg.EnvVar, so the UI and
GraphQL show the variable's name, never its value (a tracking URI may hold credentials);
definitions.py gives unset variables the embedded defaults first (settings.fill_env_defaults).

Heavy libraries (duckdb, mlflow, dagster-mlflow) are imported when a resource is used in a run
step, not when the code location loads.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_assets import settings
from mlops_assets.settings import dbt_executable  # imported from here by the tests and the dbt step
from mlops_assets.chain.lineage import CANDIDATE, CHAMPION
from mlops_assets.governance import registry
from mlops_assets.instance.recovery import end_orphaned_mlflow_runs
from mlops_assets.warehouse.duckdb_store import DuckDBWarehouse  # noqa: F401  (tests build it by name)
from mlops_assets.warehouse.postgres_store import PostgresWarehouse  # noqa: F401


class MlflowResource(dg.ConfigurableResource):
    """MLflow for every asset that talks to it, tracking and registry alike.

    On the first use in a run step it points mlflow at the store (tracking and registry), checks
    the store (a read-only file is named; a missing one is reported loudly, with the models this
    Dagster instance registered before), creates the experiment with its artifact root, and ends
    MLflow runs left RUNNING by Dagster runs that are over. `start_run` opens one MLflow run for
    a step that logs something, tagged with the Dagster run id and job (no run for the Dagster
    run itself: a container run per job was an empty run per job in the MLflow UI); `client()`
    hands out the MlflowClient for the registry; `run_url` / `model_version_url` /
    `artifact_url` make the links shown as metadata, on the MLflow UI at `ui_url`."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI (MLFLOW_TRACKING_URI).")
    artifact_root: str = Field(description="Artifact location of the experiment when it is created.")
    experiment_name: str = Field(description="The MLflow experiment of every run.")
    ui_url: str = Field(default=settings.DEFAULT_MLFLOW_UI_URL,
                        description="Base URL of the MLflow UI, for the links in metadata.")

    _opened: list = PrivateAttr(default_factory=list)
    _init_context: Any = PrivateAttr(default=None)
    _experiment_id: Any = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> "MlflowResource":
        """The resource as the code location declares it: every setting from its variable."""
        return cls(tracking_uri=dg.EnvVar(settings.TRACKING_URI_ENV),
                   artifact_root=dg.EnvVar(settings.ARTIFACT_ROOT_ENV),
                   experiment_name=dg.EnvVar(settings.EXPERIMENT_ENV),
                   ui_url=dg.EnvVar(settings.MLFLOW_UI_URL_ENV))

    @classmethod
    def from_settings(cls) -> "MlflowResource":
        """Resolved now from the environment and the embedded defaults: for code outside a
        Dagster run (the CLI, the model server, tests)."""
        return cls(tracking_uri=settings.mlflow_tracking_uri(), artifact_root=settings.mlflow_artifact_root(),
                   experiment_name=settings.mlflow_experiment(), ui_url=settings.mlflow_ui_url())

    # --- set-up ---------------------------------------------------------------------------

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._init_context = context
        self._experiment_id = self._prepare_store(context.log or dg.get_dagster_logger(), context.instance,
                                                  context.run.run_id if context.run else None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # Close the step's runs so that they do not stay "RUNNING" in the MLflow UI (start_run's
        # own exit does, unless the step left through a path that skipped it).
        if self._opened:
            import mlflow

            while mlflow.active_run() is not None and mlflow.active_run().info.run_id in self._opened:
                mlflow.end_run()
            self._opened.clear()

    def _point_mlflow(self) -> None:
        registry.point_mlflow(self.tracking_uri)

    @property
    def store_uri(self) -> str:
        """The tracking URI as handed to MLflow (registry.store_uri)."""
        return registry.store_uri(self.tracking_uri)

    def _prepare_store(self, log, instance: dg.DagsterInstance | None, dagster_run_id: str | None) -> str:
        import mlflow

        uri = self.tracking_uri
        store = sqlite_store_path(uri)
        if store is not None:
            check_store_writable(uri, store)
            if not store.exists():
                log.warning(new_store_warning(uri, registered_model_history(instance)))
            store.parent.mkdir(parents=True, exist_ok=True)
        elif settings.is_postgres_url(uri):
            check_postgres_store(uri)
        self._point_mlflow()
        try:
            experiment = mlflow.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                mlflow.create_experiment(self.experiment_name, artifact_location=self.artifact_root)
                experiment = mlflow.get_experiment_by_name(self.experiment_name)
            # Runs left RUNNING by a Dagster run that was killed: their run is over, say so.
            end_orphaned_mlflow_runs(self.client(), [experiment.experiment_id], instance, dagster_run_id,
                                     log=log.warning)
        except Exception as exc:
            if "readonly" in str(exc).lower().replace("-", "").replace(" ", ""):
                raise PermissionError(f"the MLflow store {settings.display_uri(uri)} is read-only: "
                                      f"{str(exc).splitlines()[0]}") from exc
            if settings.is_postgres_url(uri):
                raise RuntimeError(postgres_store_error(uri, exc)) from exc
            raise
        return experiment.experiment_id

    # --- tracking and registry ------------------------------------------------------------

    def client(self):
        """An MlflowClient on the store, tracking and registry. Also points mlflow's
        module-level functions (register_model, load_model) there."""
        return registry.mlflow_client(self.tracking_uri)

    @contextmanager
    def start_run(self, run_name: str, tags: dict[str, str] | None = None):
        """An MLflow run for this step, tagged with the Dagster run id (`dagster_run_id`, which
        also lets a later run end it when its Dagster run died: recovery.end_orphaned_mlflow_runs)
        and job. Only the steps that log open one. Only in a run step."""
        import mlflow

        context = self._init_context
        if context is None:
            raise RuntimeError("MlflowResource.start_run needs a Dagster run step (the resource was not set up)")
        dagster_run = context.run
        run_tags = {**({"dagster_run_id": dagster_run.run_id, "dagster_job": dagster_run.job_name}
                       if dagster_run is not None else {}), **(tags or {})}
        self._point_mlflow()
        # nested only when the step itself already holds an open run
        with mlflow.start_run(run_name=run_name, experiment_id=self._experiment_id, tags=run_tags,
                              nested=mlflow.active_run() is not None) as run:
            self._opened.append(run.info.run_id)
            yield run

    def load_model(self, name: str, version: str | int):
        """A registered version as the object it was logged as (registry.load_model). By version,
        not by alias, so the version recorded is the one that was loaded."""
        return registry.load_model(self.tracking_uri, name, version)

    def display_uri(self) -> str:
        return settings.display_uri(self.tracking_uri)

    # --- links ----------------------------------------------------------------------------

    def model_version_url(self, name: str, version: str | int) -> str:
        return registry.model_version_url(name, version, base=self.ui_url)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def artifact_url(self, experiment_id: str, run_id: str, path: str) -> str:
        return f"{self.run_url(experiment_id, run_id)}/artifacts/{path}"

    def logged_model_url(self, experiment_id: str, model_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/models/{model_id}"


def check_postgres_store(uri: str) -> None:
    """Connect once before MLflow does: MLflow retries a failing database for minutes, then
    reports it without saying what to do."""
    import psycopg2

    try:
        psycopg2.connect(settings.libpq_url(uri), connect_timeout=10).close()
    except psycopg2.OperationalError as exc:
        raise RuntimeError(postgres_store_error(uri, exc)) from None


def postgres_store_error(uri: str, exc: Exception) -> str:
    """What to do when MLflow cannot use its PostgreSQL database (server down, no database):
    the store named without password, the driver's last line (libpq's messages hold none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("(Background")]
    reason = next((line for line in lines if "does not exist" in line or "connection" in line.lower()),
                  lines[0] if lines else type(exc).__name__)
    hint = (" Run `mlops-assets prepare` to create the shared profile's databases." if "does not exist" in reason
            else " Check that the server runs and accepts this user.")
    return f"the MLflow store {settings.display_uri(uri)} cannot be used: {reason}.{hint}"


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
    """The dbt project, with the manifest expected under target/ (made by `mlops-assets prepare`).
    Under `dagster dev` and `dg` it is prepared by chain.dbt.prepare_if_dev with this
    environment's dbt (dagster-dbt's own preparer looks for `dbt` on PATH)."""
    from dagster_dbt import DbtProject

    # target: `dbt parse` under `dagster dev` names it as the dbt step does (same parse state).
    return DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR,
                      target=settings.dbt_target())


def warehouse_resource():
    """DuckDB on the embedded profile, PostgreSQL on the shared one (MLOPS_PROFILE). The URL
    may hold a password: a dg.EnvVar, so the UI shows the variable's name only (filled from
    MLOPS_POSTGRES_URL by settings.fill_env_defaults when unset)."""
    if settings.is_shared():
        return PostgresWarehouse(url=dg.EnvVar(settings.WAREHOUSE_URL_ENV))
    return DuckDBWarehouse(database=dg.EnvVar(settings.DUCKDB_PATH_ENV))


def shared_resources() -> dict:
    """The resources of the code location, every environment-dependent setting a dg.EnvVar.
    The variables must be set when a run starts: definitions.py fills unset ones with the
    embedded defaults (settings.fill_env_defaults) before building these."""
    from mlops_assets.chain.dbt import DbtCli  # no `dbt --version` process per run

    return {
        "warehouse": warehouse_resource(),
        "mlflow": MlflowResource.from_env(),
        # The project folder ships with the code; the profile reads MLOPS_DUCKDB_PATH itself.
        "dbt": DbtCli(project_dir=str(settings.DBT_PROJECT_DIR), profiles_dir=str(settings.DBT_PROJECT_DIR),
                      target=dg.EnvVar(settings.DBT_TARGET_ENV), dbt_executable=dbt_executable()),
    }
