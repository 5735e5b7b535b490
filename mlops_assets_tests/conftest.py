"""Shared fixtures: every test that touches the warehouse, MLflow or Dagster gets its own data
folder, so tests never see each other's files or the user's ./data."""
import fcntl
import os

import pytest

# MLOPS_STRICT_SKIPS=1 (CI): a skip whose reason is not allowed there fails.
from mlops_assets_tests.strict_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "DAGSTER_HOME", "MLOPS_USE_CASE_DIRS",
            "MLOPS_MLFLOW_ARTIFACT_ROOT")

os.environ.setdefault("DO_NOT_TRACK", "1")

# The modules that take minutes (dagster dev, the soak, replays), longest first. They are
# collected first so that pytest-xdist starts them first and the short ones fill the other
# worker meanwhile, instead of one long module starting last on its own.
LONG_MODULES = ("test_soak.py", "test_killed_run_retried.py", "test_dagster_dev_e2e.py", "test_demo_replay.py",
                "test_concurrent_runs.py", "test_browser_ui.py", "test_use_case_component.py", "test_governance.py",
                "test_ui_stop.py", "test_dead_run_slots.py", "test_shared_profile_graph.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def _point_env_at(root, mp):
    for key in ENV_KEYS:
        mp.delenv(key, raising=False)
    mp.setenv("MLOPS_DATA_DIR", str(root))
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    (root / "dagster_home").mkdir(parents=True)
    return root


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh project data folder with the standard variables pointing into it."""
    return _point_env_at(tmp_path / "data", monkeypatch)


@pytest.fixture(scope="module")
def module_data_dir(tmp_path_factory):
    """One data folder for all tests of a module (a scenario tested in stages, each stage a test
    on the state the earlier ones left), the standard variables pointing into it meanwhile."""
    with pytest.MonkeyPatch.context() as mp:
        yield _point_env_at(tmp_path_factory.mktemp("module") / "data", mp)


@pytest.fixture
def churn(data_dir):
    """The demo use case as the loader reads it, its folders inside this test's data folder."""
    from mlops_assets.use_cases.loader import load_use_cases

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    return uc


@pytest.fixture(scope="session")
def dbt_manifest():
    """The dbt manifest, built once per test session (per worker with pytest-xdist) the way users
    build it. `dbt parse` rewrites the project's target/ folder: one process at a time."""
    from mlops_assets import settings
    from mlops_assets.cli import prepare

    target = settings.DBT_PROJECT_DIR / "target"
    target.mkdir(exist_ok=True)
    with open(target / ".tests-parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
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
