"""Dagster concurrency settings of the instance (minimal placeholder written with the shared
profile's settings; the concurrency pools work replaces its content)."""
from __future__ import annotations

WAREHOUSE_POOL = "mlops_warehouse"


def instance_concurrency_yaml(profile: str) -> str:
    """The whole `concurrency:` block of dagster.yaml for a profile ("embedded" or "shared")."""
    return "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
