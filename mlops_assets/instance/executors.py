"""Which Dagster executor runs the steps of a run, chosen by one variable.

``MLOPS_EXECUTOR``:

- ``in_process`` (default): every step in the run's own process. The chain is mostly
  sequential, and a process per step would pay the imports of scikit-learn, MLflow and
  Evidently again for each step.
- ``multiprocess``: a process per step, at most ``MLOPS_MAX_CONCURRENT`` at once (default: the
  number of CPUs), for a bigger machine with several use cases or days to run side by side.
- ``k8s_job``: a Kubernetes Job per step (dagster-k8s, extra ``kubernetes``); the image, env
  and volumes come from the run launcher and the code location's Helm values.
- ``celery``: steps as Celery tasks (dagster-celery, extra ``celery``) on the broker at
  ``MLOPS_CELERY_BROKER_URL``; the workers read the same variable (deploy/celery/worker.yaml).

A broker URL may hold credentials: the executor's config names the variable ({"env": ...}),
read when a run starts, so the URL is never written into a config. dagster-k8s and
dagster-celery are imported only when chosen (loading the code location stays light).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from mlops_assets.instance.recovery import with_dead_run_recovery  # a killed run's pool slots go back

EXECUTOR_ENV = "MLOPS_EXECUTOR"
MAX_CONCURRENT_ENV = "MLOPS_MAX_CONCURRENT"
CELERY_BROKER_ENV = "MLOPS_CELERY_BROKER_URL"

IN_PROCESS, MULTIPROCESS, K8S_JOB, CELERY = "in_process", "multiprocess", "k8s_job", "celery"
EXECUTORS = (IN_PROCESS, MULTIPROCESS, K8S_JOB, CELERY)
# The optional dependency group (pyproject's [project.optional-dependencies]) each one needs.
EXTRAS = {K8S_JOB: "kubernetes", CELERY: "celery"}


class ExecutorSettingError(ValueError):
    """A bad executor setting; the message names the variable and the values allowed."""


@dataclass(frozen=True)
class ExecutorChoice:
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)


def _max_concurrent(env: Mapping[str, str]) -> int | None:
    raw = (env.get(MAX_CONCURRENT_ENV) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ExecutorSettingError(f"{MAX_CONCURRENT_ENV}={raw!r}: expected a whole number of steps, 1 or more")
    return value


def executor_choice(env: Mapping[str, str]) -> ExecutorChoice:
    """The executor and its config from the environment (pure: no Dagster objects)."""
    name = (env.get(EXECUTOR_ENV) or IN_PROCESS).strip().lower().replace("-", "_")
    if name not in EXECUTORS:
        raise ExecutorSettingError(
            f"{EXECUTOR_ENV}={env.get(EXECUTOR_ENV)!r}: expected one of {', '.join(EXECUTORS)}")
    limit = _max_concurrent(env)
    if name == IN_PROCESS:
        if limit is not None:
            raise ExecutorSettingError(
                f"{MAX_CONCURRENT_ENV} is set but {EXECUTOR_ENV} is {IN_PROCESS} (one step at a time); "
                f"set {EXECUTOR_ENV}={MULTIPROCESS} to run steps side by side, or unset {MAX_CONCURRENT_ENV}")
        return ExecutorChoice(IN_PROCESS)
    if name in (MULTIPROCESS, K8S_JOB):
        return ExecutorChoice(name, {} if limit is None else {"max_concurrent": limit})
    if limit is not None:
        raise ExecutorSettingError(
            f"{MAX_CONCURRENT_ENV} does not apply to {EXECUTOR_ENV}={CELERY}: the number of Celery "
            f"workers (and their --concurrency) sets how many steps run at once")
    if not env.get(CELERY_BROKER_ENV):
        raise ExecutorSettingError(
            f"{EXECUTOR_ENV}={CELERY} needs {CELERY_BROKER_ENV}, e.g. pyamqp://user:password@rabbitmq:5672//")
    return ExecutorChoice(CELERY, {"broker": {"env": CELERY_BROKER_ENV}})


def _import_optional(choice: ExecutorChoice):
    try:
        if choice.name == K8S_JOB:
            from dagster_k8s import k8s_job_executor

            return k8s_job_executor
        from dagster_celery import celery_executor

        return celery_executor
    except ImportError as exc:
        extra = EXTRAS[choice.name]
        raise ExecutorSettingError(
            f"{EXECUTOR_ENV}={choice.name} needs the optional dependencies '{extra}': "
            f"uv sync --frozen --extra {extra} ({exc})") from exc


def build_executor(env: Mapping[str, str] | None = None):
    """The dg.ExecutorDefinition the code location runs its jobs with."""
    choice = executor_choice(os.environ if env is None else env)
    if choice.name == IN_PROCESS:
        return with_dead_run_recovery(dg.in_process_executor)
    base = with_dead_run_recovery(dg.multiprocess_executor if choice.name == MULTIPROCESS else _import_optional(choice))
    return base.configured(dict(choice.config)) if choice.config else base
