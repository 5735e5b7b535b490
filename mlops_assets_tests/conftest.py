"""Shared fixtures: every test that touches the warehouse, MLflow or Dagster gets its own data
folder, so tests never see each other's files or the user's ./data."""
import os

import pytest

ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "MLOPS_USE_CASE_DIRS",
            "MLOPS_MLFLOW_ARTIFACT_ROOT")

os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh project data folder with the standard variables pointing into it."""
    root = tmp_path / "data"
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(root))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    (root / "dagster_home").mkdir(parents=True)
    return root


@pytest.fixture(scope="session")
def dbt_manifest():
    """The dbt manifest, built once per test session the way users build it."""
    from mlops_assets.cli import prepare

    return prepare()


@pytest.fixture(scope="session")
def postgres_url():
    """Base URL (no database) of a running PostgreSQL server for the shared profile's tests:
    MLOPS_TEST_POSTGRES_URL when set (.ci/run starts one), else a throwaway server of this
    session. Without PostgreSQL binaries the tests skip, or fail when MLOPS_REQUIRE_POSTGRES=1."""
    from mlops_assets_tests import pg_server

    given = os.environ.get("MLOPS_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    pg_server.bin_dir_or_skip()
    with pg_server.throwaway_server() as server:
        yield server.url
