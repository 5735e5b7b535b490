"""The simulators of the shipped demo use cases, by use-case name: churn (binary classification)
and demand (regression). Each module has the same interface: SimulationConfig, simulate_day,
write_days, write_due_labels and TARGET."""
from __future__ import annotations

import datetime as dt
from types import ModuleType

from mlops_assets.simulate import churn, demand

SIMULATORS: dict[str, ModuleType] = {"churn": churn, "demand": demand}


def simulator(use_case: str) -> ModuleType:
    try:
        return SIMULATORS[use_case]
    except KeyError:
        raise ValueError(f"no simulator for use case {use_case!r}; the simulated demo use cases are "
                         f"{sorted(SIMULATORS)}") from None


def simulation_config(use_case: str, *, seed: int = 42, rows_per_day: int = 500,
                      covariate_drift_from: dt.date | None = None, concept_drift_from: dt.date | None = None,
                      concept_drift_strength: float = 1.0):
    """The use case's SimulationConfig from the command line's knobs. rows_per_day is churn's:
    demand's rows are its stores times its products (60 a day)."""
    module = simulator(use_case)
    extra = {"rows_per_day": rows_per_day} if use_case == "churn" else {}
    return module.SimulationConfig(seed=seed, covariate_drift_from=covariate_drift_from,
                                   concept_drift_from=concept_drift_from,
                                   concept_drift_strength=concept_drift_strength, **extra)
