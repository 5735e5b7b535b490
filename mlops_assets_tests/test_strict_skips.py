"""The strict-skips switch: with MLOPS_STRICT_SKIPS=1 a skip whose reason is not allowed fails
(also a whole module skipped at import), an allowed one stays a skip; without the switch every
skip stays a skip."""
import pytest

from mlops_assets_tests.strict_skips import ALLOWED_SKIPS, STRICT_SKIPS_ENV, allowed

pytest_plugins = ["pytester"]

TESTS = '''
import os
import pytest


def test_runs():
    assert True


def test_environment_missing():
    pytest.skip("Chromium is not installed")


def test_allowed_environment():
    if True:
        pytest.skip("root reads files whatever their permissions")


@pytest.fixture
def server():
    pytest.skip("no PostgreSQL binaries")


def test_skipped_in_a_fixture(server):
    pass


@pytest.mark.xfail(reason="expected to fail", strict=True)
def test_expected_failure():
    assert False
'''
MODULE_SKIPPED = '''
import pytest

pytest.importorskip("a_module_nobody_installed", reason="the browser driver is not installed")


def test_never_collected():
    pass
'''


def _run(pytester, monkeypatch, strict: bool, *files):
    if strict:
        monkeypatch.setenv(STRICT_SKIPS_ENV, "1")
    else:
        monkeypatch.delenv(STRICT_SKIPS_ENV, raising=False)
    return pytester.runpytest_subprocess("-p", "mlops_assets_tests.strict_skips", "-rA", *files)


def test_strict_switch_fails_skips_that_are_not_allowed(pytester, monkeypatch):
    pytester.makepyfile(test_env=TESTS)
    result = _run(pytester, monkeypatch, True)
    outcomes = result.parseoutcomes()
    # the plain skip fails, the fixture's skip errors (it is the set-up that fails); the allowed
    # one skips, the xfail stays one
    assert outcomes.get("failed") == 1 and outcomes.get("errors") == 1, outcomes
    assert outcomes.get("passed") == 1 and outcomes.get("skipped") == 1 and outcomes.get("xfailed") == 1, outcomes
    out = result.stdout.str()
    assert "the reason is not allowed: Chromium is not installed" in out
    assert "the reason is not allowed: no PostgreSQL binaries" in out
    assert "SKIPPED" in out and "root reads files whatever their permissions" in out
    assert result.ret != 0


def test_strict_switch_fails_a_module_skipped_at_import(pytester, monkeypatch):
    pytester.makepyfile(test_module_skip=MODULE_SKIPPED)
    result = _run(pytester, monkeypatch, True)
    assert result.parseoutcomes().get("errors") == 1  # a collection error: the run stops, non-zero
    assert "the reason is not allowed: the browser driver is not installed" in result.stdout.str()
    assert result.ret != 0


def test_without_the_switch_skips_stay_skips(pytester, monkeypatch):
    pytester.makepyfile(test_env=TESTS, test_module_skip=MODULE_SKIPPED)
    result = _run(pytester, monkeypatch, False)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("skipped") == 4 and outcomes.get("xfailed") == 1, outcomes
    assert "failed" not in outcomes and "errors" not in outcomes and result.ret == 0


@pytest.mark.parametrize("reason", ["the optional extra for k8s_job is not installed",
                                    "the optional extra for celery is not installed",
                                    "the optional extra 'celery' is not installed",
                                    "dbt-spark is not installed here (optional); set MLOPS_DBT_SPARK to a dbt that has it",
                                    "only root runs the server as another user"])
def test_the_environment_skips_ci_expects_are_allowed(reason):
    assert allowed(reason)
    assert all(why.strip() for why in ALLOWED_SKIPS.values())  # every entry says why


@pytest.mark.parametrize("reason", ["Chromium is not installed", "the playwright package is not installed",
                                    "no PostgreSQL binaries (initdb, pg_ctl)", "dbt-postgres is not installed here"])
def test_a_broken_install_is_not_allowed(reason):
    assert not allowed(reason)
