"""dagster-dbt's DbtCliResource without a `dbt --version` process per run, and a dbt process
that dies with the process that started it.

Imported by resources.shared_resources() and the dbt step (dagster_dbt is not imported when the
code location loads otherwise).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib import metadata

from dagster_dbt import DbtCliResource
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer
from packaging import version


def same_environment_dbt(executable: str) -> bool:
    """True when `executable` is the dbt installed beside this Python (settings.dbt_executable)."""
    return os.path.abspath(os.path.dirname(executable)) == os.path.abspath(os.path.dirname(sys.executable))


class DbtCli(DbtCliResource):
    """dagster-dbt asks the dbt executable for its version once per resource, that is once per
    run: `dbt --version` starts Python, imports dbt and looks up the latest releases of dbt-core and
    of every adapter on PyPI (1 s timeout each), 4-9 s before each dbt step on this machine, more
    where PyPI is unreachable. When the executable is the dbt of this environment its version is
    the installed dbt-core's; any other executable is still asked."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if same_environment_dbt(self.dbt_executable):
            try:
                return version.parse(metadata.version("dbt-core"))
            except metadata.PackageNotFoundError:  # dbt Fusion or a dbt of another environment
                pass
        return super()._cli_version


class ThisEnvironmentPreparer(DagsterDbtProjectPreparer):
    """dagster-dbt's preparer (`dbt deps` and `dbt parse` under `dagster dev` and `dg`) with the
    dbt executable of this project (settings.dbt_executable: the dbt beside this Python) instead
    of the bare name `dbt` dagster-dbt looks up on PATH, so `.venv/bin/dagster dev` and
    `.venv/bin/dg check defs` work without an activated environment."""

    def __init__(self, dbt_executable: str, prepare_project_cli_args=None):
        super().__init__(prepare_project_cli_args=prepare_project_cli_args)
        self._dbt_executable = dbt_executable

    def _dbt(self, project) -> DbtCli:
        return DbtCli(project_dir=project, dbt_executable=self._dbt_executable)

    def _prepare_packages(self, project) -> None:
        self._dbt(project).cli(["deps", "--quiet"], target_path=project.target_path).wait()

    def _prepare_manifest(self, project) -> None:
        self._dbt(project).cli(self._prepare_project_cli_args, target_path=project.target_path).wait()


def prepare_if_dev(project, dbt_executable: str) -> None:
    """What ``project.prepare_if_dev()`` does (`dbt deps` and `dbt parse` under `dagster dev`
    and `dg`), run by ``dbt_executable``: a DbtProject has no public way to take a preparer."""
    ThisEnvironmentPreparer(dbt_executable).prepare_if_dev(project)


# Runs beside a dbt process: when the process that started dbt is gone (its parent pid changes:
# SIGKILL, OOM), dbt gets SIGTERM, then SIGKILL 10 s later; it exits when dbt does.
_WATCHDOG = r"""
import os, signal, sys, time
parent, child = int(sys.argv[1]), int(sys.argv[2])

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True

while alive(child):
    if os.getppid() != parent:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
            try:
                os.kill(child, sig)
            except ProcessLookupError:
                sys.exit(0)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and alive(child):
                time.sleep(0.1)
        sys.exit(0)
    time.sleep(0.2)
"""


@contextmanager
def dies_with_this_process(process: subprocess.Popen) -> Iterator[None]:
    """Make ``process`` (the dbt subprocess dagster-dbt started) end when this process dies.

    dagster-dbt starts dbt with a plain subprocess.Popen (DbtCliInvocation.run): no preexec_fn
    (which could set PR_SET_PDEATHSIG), no session of its own, and DbtCliResource has no option
    for either. A step's `finally` cannot help against SIGKILL. So a small watchdog process, our
    child as dbt is, polls its parent pid and kills dbt once this process is gone; without it a
    killed run left `dbt build` writing the warehouse with parent pid 1. The watchdog ends with
    dbt, or is stopped here when the step is done with dbt."""
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(process.pid)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        if watchdog.poll() is None:
            watchdog.kill()
        watchdog.wait()
