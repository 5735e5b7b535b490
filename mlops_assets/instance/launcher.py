"""The run launcher named in the dagster.yaml mlops-assets writes: Dagster's default launcher
plus a check that a run's worker process on this machine is still alive.

Dagster's run monitoring fails runs whose worker is gone, but the default launcher cannot tell
("does not support check_run_worker_health"), so a killed run stayed STARTED for ever and, with
one run at a time, blocked every later run.

The one module of the package that imports a private Dagster name: a launcher's
`check_run_worker_health` must return `CheckRunHealthResult` (with a `WorkerStatus`), and
Dagster 1.13 exports neither publicly, although subclassing the public `DefaultRunLauncher` to
add this check is the documented extension point.
"""
from __future__ import annotations

import dagster as dg
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

from mlops_assets.instance.workers import worker_gone


def worker_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    gone, why = worker_gone(instance, run)
    return CheckRunHealthResult(WorkerStatus.FAILED if gone else WorkerStatus.RUNNING, why)


class LocalRunLauncher(dg.DefaultRunLauncher):
    """The default run launcher, plus the run-worker health check that run monitoring needs.
    Only valid when runs execute on this machine (the embedded default)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        return worker_health(self._instance, run)
