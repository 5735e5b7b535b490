"""Shared fixtures: every test that touches the warehouse, MLflow or Dagster gets its own data
folder, so tests never see each other's files or the user's ./data."""
import fcntl
import os
import sys

import pytest

# MLOPS_STRICT_SKIPS=1 (CI): a skip whose reason is not allowed there fails.
from mlops_assets_tests.strict_skips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

ENV_KEYS = ("MLOPS_DATA_DIR", "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME",
            "MLOPS_USE_CASE_DIRS", "MLOPS_MLFLOW_ARTIFACT_ROOT")

os.environ.setdefault("DO_NOT_TRACK", "1")

# Collected first, in this order, so that pytest-xdist starts them first: the memory benchmark's
# module (its child's peak RSS includes the worker's own at the fork, which grows test after
# test), then the modules that take minutes (dagster dev, the soak, replays), longest first, so
# that the short ones fill the other worker meanwhile instead of one long module starting last.
FIRST_MODULES = ("test_bench_plain_pipeline.py", "test_soak.py", "test_killed_run_retried.py",
                 "test_dagster_dev_e2e.py", "test_demo_replay.py", "test_concurrent_runs.py", "test_browser_ui.py",
                 "test_use_case_component.py", "test_governance.py", "test_ui_stop.py", "test_dead_run_slots.py",
                 "test_shared_profile_graph.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _environment_restored():
    """Each test leaves os.environ and MLflow's URIs as it found them. Code under test sets
    variables directly (settings.fill_env_defaults; mlflow.set_tracking_uri also exports
    MLFLOW_TRACKING_URI), which would reach the later tests of the same worker (and their
    subprocesses), in an order pytest-xdist decides."""
    saved = dict(os.environ)
    yield
    _restore_environment(saved)


@pytest.fixture(autouse=True, scope="module")
def _module_environment_restored():
    """The same for a module's own shared state (e.g. a registry URI its platform exported)."""
    saved = dict(os.environ)
    yield
    _restore_environment(saved)


def _restore_environment(saved: dict) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:  # its process-wide URIs back to what the environment says
        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI"))
        mlflow.set_registry_uri(os.environ.get("MLFLOW_REGISTRY_URI"))


def _point_env_at(root, mp):
    for key in ENV_KEYS:
        # set first, so that undoing deletes a value the code under test sets meanwhile
        mp.setenv(key, "")
        mp.delenv(key)
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
