"""Where things live: the profile, the data folder and every store's location.

Two profiles, selected by ``MLOPS_PROFILE``: ``embedded`` (default; DuckDB, SQLite and files in
one data folder) and ``shared`` (the Dagster instance, MLflow and the warehouse in three
databases of one PostgreSQL server, ``MLOPS_POSTGRES_URL``). Resolution order for each location:
its own environment variable, then the profile's default. Paths and environment only: the
Dagster instance's dagster.yaml is written by instance/home.py. Nothing here imports heavy
libraries, nor any other module of the package.
"""
from __future__ import annotations

import os
import sys
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

PROFILE_ENV = "MLOPS_PROFILE"
EMBEDDED, SHARED = "embedded", "shared"
PROFILES = (EMBEDDED, SHARED)
POSTGRES_URL_ENV = "MLOPS_POSTGRES_URL"
DAGSTER_PG_URL_ENV = "MLOPS_DAGSTER_PG_URL"
WAREHOUSE_URL_ENV = "MLOPS_WAREHOUSE_URL"
# The databases of the shared profile on the MLOPS_POSTGRES_URL server.
DAGSTER_DB, MLFLOW_DB, WAREHOUSE_DB = "mlops_dagster", "mlops_mlflow", "mlops_warehouse"
SHARED_DBT_TARGET = "postgres"
# What dbt's `postgres` target reads (dbt_project/profiles.yml), filled from the warehouse URL.
WAREHOUSE_PG_ENV = {"host": "MLOPS_WAREHOUSE_PG_HOST", "port": "MLOPS_WAREHOUSE_PG_PORT",
                    "user": "MLOPS_WAREHOUSE_PG_USER", "password": "MLOPS_WAREHOUSE_PG_PASSWORD",
                    "dbname": "MLOPS_WAREHOUSE_PG_DBNAME", "sslmode": "MLOPS_WAREHOUSE_PG_SSLMODE"}


class SettingsError(ValueError):
    """A setting with a value this project cannot use; the message names the variable."""


# Values fill_env_defaults put in os.environ. They count as unset afterwards, so a test (or a
# process) that moves MLOPS_DATA_DIR gets paths under the new folder, not the first one's.
_filled: dict[str, set[str]] = {}


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if not value or value in _filled.get(name, ()):
        return None
    return value


def profile() -> str:
    """`embedded` (default) or `shared`, from MLOPS_PROFILE."""
    value = (os.environ.get(PROFILE_ENV) or EMBEDDED).strip().lower()
    if value not in PROFILES:
        raise SettingsError(f"{PROFILE_ENV}={os.environ.get(PROFILE_ENV)!r} is not a profile: "
                            f"expected one of {', '.join(PROFILES)} (unset means {EMBEDDED})")
    return value


def is_shared() -> bool:
    return profile() == SHARED


def _split_pg_url(url: str, variable: str):
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SettingsError(f"{variable}={display_uri(url)!r} is not a PostgreSQL URL: expected "
                            "postgresql://user:password@host:5432")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # its message quotes the "port", which may be the start of a password
        port_ok = False
    if not port_ok or parts.fragment:
        # Neither the value nor urllib's message: with a '#', '/' or '?' in the password the
        # URL splits inside it, and what looks like the port or host is part of the password.
        raise SettingsError(f"{variable} does not parse as postgresql://user:password@host:port/database: the "
                            "port must be a number from 1 to 65535, and a '#', '/', '?' or '@' in the user or "
                            "password must be percent-encoded (%23, %2F, %3F, %40)")
    return parts


def postgres_base_url() -> str:
    """MLOPS_POSTGRES_URL without its database part (the server the shared profile uses)."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        raise SettingsError(f"{PROFILE_ENV}={SHARED} needs {POSTGRES_URL_ENV}, the PostgreSQL server, e.g. "
                            "postgresql://user:password@127.0.0.1:5432")
    return libpq_url(_split_pg_url(url, POSTGRES_URL_ENV)._replace(path="").geturl())


def is_postgres_url(url: str) -> bool:
    return url.split(":", 1)[0].split("+")[0] in ("postgresql", "postgres")


def libpq_url(url: str) -> str:
    """`postgresql://...` as libpq (psycopg2.connect) reads it: no SQLAlchemy driver part."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and is_postgres_url(url) else url


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy (Dagster's and MLflow's stores) with psycopg2 named:
    SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which is not installed. A driver
    the user named is kept."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg2://{rest}"
    return url


def postgres_database_url(database: str, base: str | None = None) -> str:
    """A database on the shared server (the base URL's query string, e.g. sslmode, is kept)."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(base or postgres_base_url())
    return parts._replace(path="/" + quote(database)).geturl()


def dagster_pg_url() -> str | None:
    """The Dagster instance's database on shared (MLOPS_DAGSTER_PG_URL wins); None on embedded."""
    if not is_shared():
        return None
    return sqlalchemy_url(_env(DAGSTER_PG_URL_ENV) or postgres_database_url(DAGSTER_DB))


def warehouse_url() -> str | None:
    """The warehouse database on shared (MLOPS_WAREHOUSE_URL wins); None on embedded (DuckDB)."""
    if not is_shared():
        return None
    return libpq_url(_env(WAREHOUSE_URL_ENV) or postgres_database_url(WAREHOUSE_DB))


def warehouse_pg_env(url: str) -> dict[str, str]:
    """The variables dbt's `postgres` target reads, from a warehouse URL."""
    from urllib.parse import parse_qs, unquote

    parts = _split_pg_url(url, WAREHOUSE_URL_ENV)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise SettingsError(f"{WAREHOUSE_URL_ENV}={display_uri(url)!r} names no database: expected "
                            f"postgresql://user:password@host:5432/{WAREHOUSE_DB}")
    query = parse_qs(parts.query)
    return {WAREHOUSE_PG_ENV["host"]: parts.hostname, WAREHOUSE_PG_ENV["port"]: str(parts.port or 5432),
            WAREHOUSE_PG_ENV["user"]: unquote(parts.username or "postgres"),
            WAREHOUSE_PG_ENV["password"]: unquote(parts.password or ""),
            WAREHOUSE_PG_ENV["dbname"]: dbname,
            WAREHOUSE_PG_ENV["sslmode"]: query.get("sslmode", ["prefer"])[0]}


def shared_database_urls() -> dict[str, str]:
    """The PostgreSQL databases the shared profile uses, by role (MLflow only when its tracking
    URI is a PostgreSQL database, not an MLflow server)."""
    urls = {"dagster": dagster_pg_url(), "warehouse": warehouse_url()}
    tracking = mlflow_tracking_uri()
    if is_postgres_url(tracking):
        urls["mlflow"] = tracking
    return urls


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


REPORT_RETENTION_DAYS_ENV = "MLOPS_REPORT_RETENTION_DAYS"
DEFAULT_REPORT_RETENTION_DAYS = 90


def report_retention_days() -> int | None:
    """How many days of dated reports a use case keeps under reports_dir() (the newest report's
    day and the N-1 before it): older ones are deleted when a new one is written. 0 keeps all."""
    raw = (os.environ.get(REPORT_RETENTION_DAYS_ENV) or "").strip()
    if not raw:
        return DEFAULT_REPORT_RETENTION_DAYS
    if not raw.isdigit():
        raise SettingsError(f"{REPORT_RETENTION_DAYS_ENV}={raw!r} is not a number of days "
                            f"(0 keeps every report; unset means {DEFAULT_REPORT_RETENTION_DAYS})")
    return int(raw) or None


def evidently_lib_dir() -> Path:
    """The Evidently JavaScript and icon font the dated HTML reports share (one copy, not 4 MB
    inside every report)."""
    return reports_dir() / "_evidently"


def mlflow_dir() -> Path:
    return data_dir() / "mlflow"


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the profile's store: a SQLite file inside the data
    folder (embedded) or the mlops_mlflow database (shared)."""
    if _env(TRACKING_URI_ENV):
        return sqlalchemy_url(_env(TRACKING_URI_ENV))
    if is_shared():
        return sqlalchemy_url(postgres_database_url(MLFLOW_DB))
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return _env(ARTIFACT_ROOT_ENV) or (mlflow_dir() / "artifacts").as_uri()


def mlflow_experiment() -> str:
    return _env(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT


def mlflow_ui_url() -> str:
    """Base of the links to runs and model versions in metadata and logs."""
    return (_env(MLFLOW_UI_URL_ENV) or DEFAULT_MLFLOW_UI_URL).rstrip("/")


def dbt_executable() -> str:
    """The dbt installed beside this Python (so the venv need not be activated: `.venv/bin/dagster
    dev` with a PATH that lacks .venv/bin), else whichever `dbt` PATH names."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else "dbt"


def dbt_target() -> str:
    return _env(DBT_TARGET_ENV) or (SHARED_DBT_TARGET if is_shared() else DEFAULT_DBT_TARGET)


def resource_env_values() -> dict[str, str]:
    """Each resource variable with the value it has now: the user's, else the profile's default.
    On shared also the Dagster and warehouse URLs and what dbt's postgres target reads."""
    values = {DUCKDB_PATH_ENV: str(duckdb_path()), TRACKING_URI_ENV: mlflow_tracking_uri(),
              ARTIFACT_ROOT_ENV: mlflow_artifact_root(), EXPERIMENT_ENV: mlflow_experiment(),
              MLFLOW_UI_URL_ENV: mlflow_ui_url(), DBT_TARGET_ENV: dbt_target()}
    if is_shared():
        values[DAGSTER_PG_URL_ENV] = dagster_pg_url()
        values[WAREHOUSE_URL_ENV] = warehouse_url()
        pg_env = warehouse_pg_env(warehouse_url())
        # Each dbt variable the user set stays theirs (e.g. a password given apart from the URL).
        values.update({k: _env(k) or v for k, v in pg_env.items()})
    return values


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

    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        # Up to the last '@': a '/', '?' or '#' left unencoded in a password ends urllib's
        # netloc early, and the rest of the password would show as a path, query or fragment.
        uri = f"{scheme}://{rest.rpartition('@')[2]}"
    parts = urlsplit(uri)
    if not (parts.query or parts.fragment):
        return uri  # urlunsplit would rewrite sqlite:////abs to sqlite://abs
    return urlunsplit(parts._replace(query="<hidden>" if parts.query else "",
                                     fragment="<hidden>" if parts.fragment else ""))


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
