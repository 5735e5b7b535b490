"""The shared profile's PostgreSQL databases (Dagster instance, MLflow, warehouse): created by
`mlops-assets prepare` when missing. psycopg2 is imported only here, when they are created."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

from mlops_assets import settings
from mlops_assets.warehouse.sql import ident


class DatabaseSetupError(RuntimeError):
    """The server cannot be reached or refuses; the message names it (without password)."""


def database_name(url: str) -> str:
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise DatabaseSetupError(f"{settings.display_uri(url)} names no database")
    return name


def _server_url(url: str) -> str:
    """The same server and credentials, connected to its `postgres` maintenance database."""
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.split("+")[0], path="/postgres").geturl()


def ensure_databases(urls: dict[str, str], log=print) -> list[str]:
    """Create each database of `urls` (role -> URL) that does not exist. Returns those created."""
    import psycopg2

    created = []
    for role, url in urls.items():
        name, server = database_name(url), _server_url(url)
        try:
            con = psycopg2.connect(server, connect_timeout=10)
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseSetupError(
                f"cannot connect to the PostgreSQL server {settings.display_uri(server)} to create the {role} "
                f"database {name!r}: {reason}. Check that the server runs and accepts this user, and that "
                f"{settings.POSTGRES_URL_ENV} (or the {role} URL variable) points at it.") from None
        try:
            con.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
            with con.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    try:
                        cur.execute(f"CREATE DATABASE {ident(name)}")
                    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                        # Created meanwhile by another process (two at once collide on the
                        # catalog's unique index instead of DuplicateDatabase).
                        continue
                    except psycopg2.Error as exc:
                        raise DatabaseSetupError(
                            f"cannot create the {role} database {name!r} on {settings.display_uri(server)}: "
                            f"{str(exc).strip()}. Create it yourself or grant this user CREATEDB.") from None
                    created.append(name)
                    log(f"created the {role} database {name!r} on {settings.display_uri(server)}")
        finally:
            con.close()
    return created
