"""The warehouse in a DuckDB file (the embedded profile)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from mlops_assets.warehouse.lock import lock_path, warehouse_lock


def in_utc(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A session in UTC, whatever the machine's zone: DuckDB casts with the session's zone."""
    con.execute("SET TimeZone = 'UTC'")
    return con


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
        return warehouse_lock(self.database, exclusive=True, timeout_s=self.lock_timeout_s, holder=holder,
                              log=dg.get_dagster_logger().info)

    @contextmanager
    def get_connection(self):
        with self.connect() as con:
            yield con

    @contextmanager
    def connect(self, read_only: bool = False, holder: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.database).exists():
            raise FileNotFoundError(f"warehouse {self.database} does not exist yet: materialize the raw assets first")
        with warehouse_lock(self.database, exclusive=not read_only, timeout_s=self.lock_timeout_s, holder=holder,
                            log=dg.get_dagster_logger().info):
            # The warehouse lock is the one wait: every process of the project opens the file
            # under it (dbt inside write_lock), and DuckDB releases its own file lock on close,
            # before ours. So DuckDB refusing the file means a process outside the project holds
            # it (a duckdb shell); it is named at once instead of being waited for.
            try:
                con = duckdb.connect(self.database, read_only=read_only, config=dict(self.connection_config))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                raise duckdb.IOException(
                    f"warehouse {self.database} is open in a process that does not take the warehouse lock "
                    f"{lock_path(self.database)} (DuckDB: {exc}); close it and retry") from exc
            try:
                yield in_utc(con)
            finally:
                con.close()

    def dbt_env(self) -> dict[str, str]:
        """The variable dbt's DuckDB target reads (dbt_project/profiles.yml)."""
        return {"MLOPS_DUCKDB_PATH": self.database}
