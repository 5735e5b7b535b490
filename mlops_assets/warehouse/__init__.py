"""The warehouse: DuckDB on the embedded profile, PostgreSQL on the shared one.

Both stores hand out connections with DuckDB's calling convention (`con.execute(sql, params)`
with `?` placeholders, then `fetchone()`, `fetchall()` or `df()`), so SQL that both dialects
understand is written once. What differs (creating a table from a frame, bulk loads, a partition
replaced in one transaction) lives in `portable.py`; reading and validating landing files always
happens in DuckDB, in memory on PostgreSQL (`portable.files_connection`).
"""
from __future__ import annotations


def is_postgres(con) -> bool:
    """Whether `con` is a PostgreSQL warehouse connection (else a DuckDB one)."""
    return getattr(con, "dialect", None) == "postgres"
