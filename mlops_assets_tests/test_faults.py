"""Faults: two writers at once, a killed run, a missing or read-only MLflow store."""
import datetime as dt
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import dagster as dg
import pytest

from mlops_assets import settings
from mlops_assets.instance import home as instance_home
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D0 = dt.date(2026, 1, 1)


def _hold_warehouse(db_path, seconds: float, read_only: bool = False, release=None) -> subprocess.Popen:
    """Another process holding the warehouse through `DuckDBWarehouse.connect()` for `seconds`
    or until the file `release` appears; returns once it holds it."""
    code = textwrap.dedent(f"""
        import os, time
        from mlops_assets.chain.resources import DuckDBWarehouse
        w = DuckDBWarehouse(database={str(db_path)!r})
        with w.connect(read_only={read_only}, holder="test holder process") as con:
            con.execute("CREATE TABLE IF NOT EXISTS main.held (x INTEGER)") if not {read_only} else None
            print("held", flush=True)
            deadline = time.monotonic() + {seconds}
            while time.monotonic() < deadline and not ({str(release)!r} != "None" and os.path.exists({str(release)!r})):
                time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_warehouse_lock_waits_for_another_process_and_names_it(tmp_path):
    from mlops_assets.warehouse.lock import WarehouseLockTimeout, warehouse_lock

    db = tmp_path / "w.duckdb"
    holder = _hold_warehouse(db, 1.5)
    lines = []
    started = time.monotonic()
    with pytest.raises(WarehouseLockTimeout, match=r"w\.duckdb\.lock, held by test holder process"):
        with warehouse_lock(db, exclusive=True, timeout_s=0.3):
            pass
    with warehouse_lock(db, exclusive=False, timeout_s=30, log=lines.append):
        waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert holder.returncode == 0
    assert waited >= 1.0, "the reader must have waited for the writer"
    assert any("waiting up to 30s" in ln and "test holder process" in ln for ln in lines), lines
    # re-entrant in one process: a nested writer inside a reader upgrades, it does not deadlock
    with warehouse_lock(db, exclusive=False, timeout_s=1):
        with warehouse_lock(db, exclusive=True, timeout_s=1):
            pass


def test_a_process_outside_the_warehouse_lock_is_named_not_waited_for(tmp_path):
    """The warehouse lock is the one wait; a process that opens the file without it (a duckdb
    shell) makes connect() fail at once, naming the file, the lock and DuckDB's own message."""
    import duckdb

    from mlops_assets.chain.resources import DuckDBWarehouse

    db = tmp_path / "w.duckdb"
    code = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(30)"
    shell = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(duckdb.IOException, match=r"w\.duckdb is open in a process that does not take the "
                                                      r"warehouse lock .*w\.duckdb\.lock"):
            with DuckDBWarehouse(database=str(db), lock_timeout_s=60).connect():
                pass
        assert time.monotonic() - started < 10
    finally:
        shell.kill()
        shell.wait()


@pytest.mark.integration
def test_dbt_build_waits_for_a_concurrent_writer_instead_of_failing(data_dir, dbt_manifest):
    """Issue 7 #9: another process writing the warehouse made the dbt step fail with
    "Could not set lock on file". Now the dbt build waits for it, and both succeed."""
    from mlops_assets.definitions import build_defs
    from mlops_assets.orchestrate import execute

    write_days(data_dir / "landing" / "churn", day_range(D0, 2), SimulationConfig(rows_per_day=50))
    defs, instance = build_defs(), dg.DagsterInstance.get()
    keys = [dg.AssetKey(["churn", n]) for n in ("raw",)]
    assert execute(defs, instance, "churn_daily", keys, partition_key=D0.isoformat())
    # The other writer holds the file until the dbt step says it waits for it (or 120 s): without
    # the lock dbt would try to open the file meanwhile, and fail.
    release = data_dir / "release"
    holder = _hold_warehouse(settings.duckdb_path(), 120.0, release=release)

    def release_when_waited_for():
        while not release.exists():
            runs = instance.get_runs(dg.RunsFilter(job_name="churn_daily"), limit=1)
            if any("waiting up to" in r.user_message for r in instance.all_logs(runs[0].run_id)):
                release.touch()
            time.sleep(0.2)

    watcher = threading.Thread(target=release_when_waited_for, daemon=True)
    watcher.start()
    lines = []
    outcome = execute(defs, instance, "churn_daily", [dg.AssetKey(["churn", "stg_churn"]),
                                                       dg.AssetKey(["churn", "features_churn"])],
                      lines.append, partition_key=D0.isoformat())
    release.touch()
    holder.wait(timeout=60)
    assert holder.returncode == 0
    assert outcome.success, lines
    run = instance.get_runs(limit=1)[0]
    messages = [r.user_message for r in instance.all_logs(run.run_id)]
    assert any("waiting up to" in m and "test holder process" in m for m in messages)
    import duckdb

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM main.features_churn").fetchone()[0] == 50
        assert con.execute("SELECT count(*) FROM main.held").fetchone()[0] == 0  # the other writer's work


def test_written_dagster_yaml_turns_run_monitoring_on(tmp_path, monkeypatch):
    from mlops_assets.instance.launcher import LocalRunLauncher

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    instance_home.ensure_local_env()
    instance = dg.DagsterInstance.from_config(str(home))
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_resume_run_attempts == 0
    assert instance.run_monitoring_start_timeout_seconds == 180
    # slots of the warehouse pool held by a run that died are given back by the daemon
    assert instance.run_monitoring_settings.get("free_slots_after_run_end_seconds") == 30
    # many use cases' sensors are evaluated side by side, not one after another
    assert instance.get_settings("sensors").get("use_threads") is True
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health

    # a file written by an earlier version (our header) is brought up to date, a user's is kept
    old = "# Written by mlops-assets for the embedded default (DuckDB: one writing process at a time).\n" \
          "concurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    (home / "dagster.yaml").write_text(old)
    assert instance_home.write_dagster_yaml(home) and "run_monitoring" in (home / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert not instance_home.write_dagster_yaml(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _started_run(instance, pid_tag: int | None = None, pid_event: int | None = None) -> dg.DagsterRun:
    from dagster._core.events import EngineEventData
    from mlops_assets.instance.workers import PID_TAG

    run = instance.add_run(dg.DagsterRun(job_name="churn_daily", run_id=str(uuid.uuid4()),
                                         status=dg.DagsterRunStatus.STARTED,
                                         tags={PID_TAG: str(pid_tag)} if pid_tag else {}))
    if pid_event:
        instance.report_engine_event(f"Started process for run (pid: {pid_event}).", run,
                                     EngineEventData.in_process(pid_event))
    return run


def test_run_monitoring_fails_a_killed_run_and_keeps_a_live_one(tmp_path, monkeypatch):
    """Issue 7 #11: a SIGKILLed run stayed STARTED for ever. Dagster's own monitoring step, with
    the launcher the CLI configures, now fails it; a live run is left alone."""
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    from mlops_assets.instance.recovery import fail_dead_runs

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    instance_home.ensure_local_env()
    instance = dg.DagsterInstance.from_config(str(home))
    killed = _started_run(instance, pid_event=_dead_pid())  # launched run: pid from Dagster's engine event
    alive = _started_run(instance, pid_event=os.getpid())
    in_process = _started_run(instance, pid_tag=_dead_pid())  # run by `mlops-assets demo`: pid tag
    unknown = _started_run(instance)  # no pid yet: left to the start timeout
    for run in (killed, alive, unknown):
        record = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))[0]
        monitor_started_run(instance, None, record, logging.getLogger("test"))
    status = lambda r: instance.get_run_by_id(r.run_id).status  # noqa: E731
    assert status(killed) == dg.DagsterRunStatus.FAILURE
    assert status(alive) == status(unknown) == dg.DagsterRunStatus.STARTED
    # without the daemon (the CLI path): the same rule, once
    lines = []
    assert fail_dead_runs(instance, lines.append) == [in_process.run_id]
    assert status(in_process) == dg.DagsterRunStatus.FAILURE
    assert "is gone" in lines[0]


@pytest.fixture
def mlflow_instance(data_dir):
    instance_home.ensure_local_env()
    return dg.DagsterInstance.get()


def _mlflow_asset():
    from mlops_assets.chain.resources import MlflowResource

    @dg.asset
    def touches_mlflow(mlflow: MlflowResource) -> None:
        import mlflow as mlflow_lib

        with mlflow.start_run("touch"):
            mlflow_lib.log_param("touched", 1)

    settings.fill_env_defaults()  # as the code location does: the resource reads dg.EnvVars
    return touches_mlflow, {"mlflow": MlflowResource.from_env()}


def test_orphaned_mlflow_runs_are_ended_when_the_resource_starts(mlflow_instance):
    """Issue 7 #11: MLflow runs of a killed Dagster run stayed RUNNING. The next run's MLflow
    resource ends those whose Dagster run is over, and only those."""
    import mlflow

    instance = mlflow_instance
    asset, resources = _mlflow_asset()
    assert dg.materialize([asset], resources=resources, instance=instance).success  # creates store + experiment
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri())
    exp = client.get_experiment_by_name("mlops-assets")
    dead = _started_run(instance, pid_tag=_dead_pid())
    instance.report_run_failed(dead, "killed")
    live = _started_run(instance, pid_event=os.getpid())
    orphan = client.create_run(exp.experiment_id, tags={"dagster_run_id": dead.run_id})
    running = client.create_run(exp.experiment_id, tags={"dagster_run_id": live.run_id})
    foreign = client.create_run(exp.experiment_id, tags={"dagster_run_id": str(uuid.uuid4())})

    assert dg.materialize([asset], resources=resources, instance=instance).success
    state = lambda r: client.get_run(r.info.run_id).info.status  # noqa: E731
    assert state(orphan) == "KILLED"
    assert "ended (FAILURE)" in client.get_run(orphan.info.run_id).data.tags["mlops.ended_because"]
    assert state(running) == state(foreign) == "RUNNING"


def test_a_missing_mlflow_store_is_reported_loudly(mlflow_instance):
    """Issue 7 #15: a deleted store was recreated silently, and the registry with it."""
    instance = mlflow_instance
    asset, resources = _mlflow_asset()
    store = settings.mlflow_dir() / "mlflow.db"
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["churn", "champion_model"]))
    assert not store.exists()
    result = dg.materialize([asset], resources=resources, instance=instance)
    assert result.success and store.exists()
    warnings = [r.user_message for r in instance.all_logs(result.run_id) if r.level == logging.WARNING]
    (msg,) = [m for m in warnings if "does not exist" in m]
    assert settings.mlflow_tracking_uri() in msg and "EMPTY" in msg and "churn/champion_model" in msg
    # the next run finds it and says nothing
    again = dg.materialize([asset], resources=resources, instance=instance)
    assert not [r for r in instance.all_logs(again.run_id) if "does not exist" in r.user_message]


def test_a_read_only_mlflow_store_error_names_the_path(tmp_path, monkeypatch):
    """Issue 7 #21. Tests run as root here, for whom every file is writable: os.access is
    replaced to answer as it would for another user."""
    from mlops_assets.chain.resources import check_store_writable

    store = tmp_path / "mlflow.db"
    store.write_bytes(b"")
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(store))
    with pytest.raises(PermissionError, match=rf"sqlite:///{store}.*read-only.*{store.name}"):
        check_store_writable(f"sqlite:///{store}", store)
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != str(tmp_path))
    with pytest.raises(PermissionError, match=rf"its folder {tmp_path} is not writable"):
        check_store_writable(f"sqlite:///{store}", store)


def test_a_run_killed_mid_step_is_failed_and_no_longer_blocks(tmp_path, monkeypatch):
    """Crash then recovery with a real process: a run executing in another process is SIGKILLed
    mid-step and stays STARTED (the defect); the monitoring step fails it, so a run queue with
    one slot is free again."""
    import signal

    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    instance_home.ensure_local_env()
    code = textwrap.dedent("""
        import time
        import dagster as dg
        from mlops_assets.orchestrate import execute

        @dg.asset
        def slow():
            print("in step", flush=True)
            time.sleep(120)

        defs = dg.Definitions(assets=[slow], jobs=[dg.define_asset_job("slow_job", selection=[slow])])
        execute(defs, dg.DagsterInstance.get(), "slow_job")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert "in step" in proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    instance = dg.DagsterInstance.from_config(str(home))
    (record,) = instance.get_run_records(dg.RunsFilter(job_name="slow_job"))
    assert record.dagster_run.status == dg.DagsterRunStatus.STARTED  # what used to stay for ever
    monitor_started_run(instance, None, record, logging.getLogger("test"))
    run = instance.get_run_by_id(record.dagster_run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert not instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
