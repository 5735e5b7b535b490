"""dagster-dbt's DbtCliResource without a `dbt --version` process per run.

Imported by resources.shared_resources() only (dagster_dbt is not imported when the code
location loads otherwise).
"""
from __future__ import annotations

import os
import sys
from functools import cached_property
from importlib import metadata

from dagster_dbt import DbtCliResource
from packaging import version


def same_environment_dbt(executable: str) -> bool:
    """True when `executable` is the dbt installed beside this Python (resources.dbt_executable)."""
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
