"""The warehouse: DuckDB on the embedded profile, PostgreSQL on the shared one.

Both stores hand out connections with DuckDB's calling convention (`con.execute(sql, params)`
with `?` placeholders, then `fetchone()`, `fetchall()` or `df()`), so SQL that both dialects
understand is written once. What differs (creating a table from a frame, bulk loads, a partition
replaced in one transaction) lives in `portable.py`; reading and validating landing files always
happens in DuckDB, in memory on PostgreSQL (`portable.files_connection`).
"""
from __future__ import annotations

import os

EMBEDDED, SHARED = "embedded", "shared"
PROFILE_ENV = "MLOPS_PROFILE"
POSTGRES_URL_ENV = "MLOPS_POSTGRES_URL"
WAREHOUSE_URL_ENV = "MLOPS_WAREHOUSE_URL"
WAREHOUSE_DB = "mlops_warehouse"


def profile() -> str:
    """settings.profile() when it exists, else MLOPS_PROFILE (default: embedded)."""
    from mlops_assets import settings

    if hasattr(settings, "profile"):
        return settings.profile()
    return (os.environ.get(PROFILE_ENV) or EMBEDDED).strip().lower()


def warehouse_url() -> str:
    """The PostgreSQL warehouse's URL on the shared profile: settings.warehouse_url() when it
    exists, else MLOPS_WAREHOUSE_URL, else MLOPS_POSTGRES_URL's server with database mlops_warehouse."""
    from mlops_assets import settings

    url = settings.warehouse_url() if hasattr(settings, "warehouse_url") else None
    url = url or os.environ.get(WAREHOUSE_URL_ENV)
    if not url:
        base = os.environ.get(POSTGRES_URL_ENV)
        if not base:
            raise RuntimeError(f"{PROFILE_ENV}=shared needs {POSTGRES_URL_ENV} (postgresql://user:password@host:port) "
                               f"or {WAREHOUSE_URL_ENV}")
        url = with_database(base, WAREHOUSE_DB)
    return url


def with_database(url: str, database: str) -> str:
    """`url` with its database part replaced by (or set to) `database`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


def is_postgres(con) -> bool:
    """Whether `con` is a PostgreSQL warehouse connection (else a DuckDB one)."""
    return getattr(con, "dialect", None) == "postgres"
