"""The warehouse in a DuckDB file (the embedded profile)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field


class DuckDBWarehouse(DuckDBResource):
    """dagster-duckdb's DuckDBResource on the project's file, plus what a shared file needs.
    DuckDB lets one process write at a time (or several read), so connections are short-lived
    and every opening first takes the warehouse lock (`mlops_assets.warehouse.lock`): shared for
    readers, exclusive for writers, waiting up to `lock_timeout_s` and logging for whom it waits.
    Sessions run in UTC. `get_connection()` (DuckDBResource's API) is `connect()` for writing;
    a subprocess that writes (dbt) runs inside `write_lock()`."""

    lock_timeout_s: float = Field(default=900.0, description="How long to wait for the warehouse lock.")

    @property
    def path(self) -> str:
        return self.database

    def write_lock(self, holder: str | None = None):
        """The exclusive warehouse lock, for work outside `connect()` that writes the file (a
        whole `dbt build`). Context manager; re-entrant within a process."""
        from mlops_assets.warehouse.lock import warehouse_lock

        return warehouse_lock(self.database, exclusive=True, timeout_s=self.lock_timeout_s, holder=holder,
                              log=dg.get_dagster_logger().info)

    @contextmanager
    def get_connection(self):
        with self.connect() as con:
            yield con

    @contextmanager
    def connect(self, read_only: bool = False, holder: str | None = None
                ) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        import duckdb

        from mlops_assets.ingest.landing import in_utc
        from mlops_assets.warehouse.lock import warehouse_lock

        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.database).exists():
            raise FileNotFoundError(f"warehouse {self.database} does not exist yet: materialize the raw assets first")
        with warehouse_lock(self.database, exclusive=not read_only, timeout_s=self.lock_timeout_s, holder=holder,
                            log=dg.get_dagster_logger().info):
            # Processes that skip the lock (a user's duckdb shell) may still hold the file: retry.
            deadline = time.monotonic() + self.lock_timeout_s
            delay = 0.1
            while True:
                try:
                    con = duckdb.connect(self.database, read_only=read_only, config=dict(self.connection_config))
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

    def dbt_env(self) -> dict[str, str]:
        """The variable dbt's DuckDB target reads (dbt_project/profiles.yml)."""
        return {"MLOPS_DUCKDB_PATH": self.database}
