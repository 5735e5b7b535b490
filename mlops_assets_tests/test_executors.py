"""MLOPS_EXECUTOR picks the executor of the code location's jobs (mlops_assets/instance/executors.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_assets.instance.executors import ExecutorSettingError, build_executor, executor_choice


def test_default_is_in_process():
    assert executor_choice({}).name == "in_process"
    assert build_executor({}).name == "in_process"


@pytest.mark.parametrize(("env", "name", "config"), [
    ({"MLOPS_EXECUTOR": "multiprocess"}, "multiprocess", {}),
    ({"MLOPS_EXECUTOR": "Multiprocess", "MLOPS_MAX_CONCURRENT": "4"}, "multiprocess", {"max_concurrent": 4}),
    ({"MLOPS_EXECUTOR": "k8s-job", "MLOPS_MAX_CONCURRENT": " 8 "}, "k8s_job", {"max_concurrent": 8}),
    ({"MLOPS_EXECUTOR": "celery", "MLOPS_CELERY_BROKER_URL": "pyamqp://u:secret@mq//"}, "celery",
     {"broker": {"env": "MLOPS_CELERY_BROKER_URL"}}),
])
def test_choices(env, name, config):
    choice = executor_choice(env)
    assert (choice.name, dict(choice.config)) == (name, config)
    assert "secret" not in repr(choice.config)  # the broker URL is read from its variable at run time


@pytest.mark.parametrize(("env", "names"), [
    ({"MLOPS_EXECUTOR": "dask"}, ["MLOPS_EXECUTOR='dask'", "in_process, multiprocess, k8s_job, celery"]),
    ({"MLOPS_EXECUTOR": "multiprocess", "MLOPS_MAX_CONCURRENT": "0"}, ["MLOPS_MAX_CONCURRENT='0'", "1 or more"]),
    ({"MLOPS_EXECUTOR": "multiprocess", "MLOPS_MAX_CONCURRENT": "two"}, ["MLOPS_MAX_CONCURRENT='two'"]),
    ({"MLOPS_MAX_CONCURRENT": "4"}, ["MLOPS_MAX_CONCURRENT is set but MLOPS_EXECUTOR is in_process"]),
    ({"MLOPS_EXECUTOR": "celery"}, ["needs MLOPS_CELERY_BROKER_URL"]),
    ({"MLOPS_EXECUTOR": "celery", "MLOPS_CELERY_BROKER_URL": "x", "MLOPS_MAX_CONCURRENT": "2"},
     ["does not apply to MLOPS_EXECUTOR=celery"]),
])
def test_bad_settings_name_the_variable(env, names):
    with pytest.raises(ExecutorSettingError) as err:
        executor_choice(env)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize(("executor", "module", "extra"), [("k8s_job", "dagster_k8s", "kubernetes"),
                                                           ("celery", "dagster_celery", "celery")])
def test_missing_extra_names_the_install_command(monkeypatch, executor, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if the optional package were not installed
    env = {"MLOPS_EXECUTOR": executor, "MLOPS_CELERY_BROKER_URL": "pyamqp://mq//"}
    with pytest.raises(ExecutorSettingError, match=f"uv sync --frozen --extra {extra}"):
        build_executor(env)


@pytest.mark.parametrize(("executor", "module", "name"), [("k8s_job", "dagster_k8s", "k8s"),
                                                          ("celery", "dagster_celery", "celery")])
def test_optional_executors_when_installed(executor, module, name):
    pytest.importorskip(module, reason=f"the optional extra for {executor} is not installed")
    env = {"MLOPS_EXECUTOR": executor, "MLOPS_CELERY_BROKER_URL": "pyamqp://mq//"}
    assert build_executor(env).name == name


def _resolved_executor_config(defs):
    """The executor name and config a run of the code location's asset job gets with no run
    config (what `dagster asset materialize` launches)."""
    from dagster._core.system_config.objects import ResolvedRunConfig  # no public equivalent

    job = defs.resolve_implicit_global_asset_job_def()
    resolved = ResolvedRunConfig.build(job, {})
    return job.executor_def.name, resolved.execution.execution_engine_config


@pytest.mark.integration
def test_the_code_location_runs_with_the_executor_set(data_dir, dbt_manifest, monkeypatch):
    from mlops_assets.definitions import build_defs

    monkeypatch.setenv("MLOPS_EXECUTOR", "multiprocess")
    monkeypatch.setenv("MLOPS_MAX_CONCURRENT", "2")
    name, config = _resolved_executor_config(build_defs())
    assert name == "multiprocess" and config["max_concurrent"] == 2


@pytest.mark.integration
def test_dagster_asset_materialize_runs_steps_in_their_own_processes(data_dir, dbt_manifest):
    """A real run of the CLI the README and CI use, with MLOPS_EXECUTOR=multiprocess: the step
    runs in a child process of the run, and the run succeeds."""
    import dagster as dg

    from mlops_assets import cli

    day = "2026-03-02"
    assert cli.main(["simulate", "--days", "1", "--rows-per-day", "40", "--start", day, "--labels-in-rows"]) in (0, None)
    env = {**os.environ, "MLOPS_EXECUTOR": "multiprocess", "MLOPS_MAX_CONCURRENT": "2"}
    dagster_cli = Path(sys.executable).parent / "dagster"
    proc = subprocess.run([str(dagster_cli), "asset", "materialize", "-m", "mlops_assets.definitions",
                           "--select", "churn/raw", "--partition", day],
                          check=False, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
    run_pid = next(e.pid for e in events if e.event_type == dg.DagsterEventType.RUN_START)
    engine = [e.message for e in events if e.event_type == dg.DagsterEventType.ENGINE_EVENT]
    assert any(m and m.startswith("Executing steps using multiprocess executor") for m in engine), engine
    step_pids = {e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    assert step_pids and run_pid not in step_pids
