"""One switch against skips that hide a broken install: with MLOPS_STRICT_SKIPS=1 (.ci/run sets
it) a skipped test fails unless its reason is in ALLOWED_SKIPS below, each entry saying why that
environment is expected in CI. Without the switch skips stay skips (a laptop without Chromium or
PostgreSQL still runs the rest).

conftest.py imports the hooks; `pytest -p mlops_assets_tests.strict_skips` loads them alone."""
from __future__ import annotations

import os
import re

import pytest

STRICT_SKIPS_ENV = "MLOPS_STRICT_SKIPS"

# Reason pattern (a regular expression searched in the skip's reason) -> why CI may skip it.
ALLOWED_SKIPS: dict[str, str] = {
    r"^root reads files whatever their permissions$":
        "CI containers often run as root, and root can read a file without read permission",
    r"^only root runs the server as another user$":
        "a CI runner that is not root cannot switch to the postgres user",
    r"^the optional extra for (k8s_job|celery) is not installed$":
        "`uv run --frozen` installs no optional extras; the missing-extra message is tested without them",
    r"^the optional extra 'celery' is not installed$":
        "`uv run --frozen` installs no optional extras (dagster-celery is one)",
    r"^dbt-(spark|databricks) is not installed here \(optional\)":
        "dbt adapters outside the default install (the spark extra; databricks is installed apart)",
}


def strict() -> bool:
    return os.environ.get(STRICT_SKIPS_ENV) == "1"


def allowed(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern in ALLOWED_SKIPS)


def _skip_reason(longrepr) -> str:
    # A skip's longrepr is (path, line, "Skipped: <reason>").
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _refuse(report) -> None:
    reason = _skip_reason(report.longrepr)
    if allowed(reason):
        return
    report.outcome = "failed"
    report.longrepr = (f"skipped with {STRICT_SKIPS_ENV}=1 and the reason is not allowed: {reason}\n"
                       f"(fix the environment, or add the reason with why to ALLOWED_SKIPS in "
                       f"mlops_assets_tests/strict_skips.py)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if strict() and report.skipped and not hasattr(report, "wasxfail"):
        _refuse(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    # A module skipped as a whole (pytest.importorskip at import, allow_module_level=True).
    if strict() and report.skipped:
        _refuse(report)
    return report
