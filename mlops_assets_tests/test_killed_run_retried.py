"""A landed day whose run died is carried again, automatically and exactly once (issue 16, item 2).

Real `dagster dev` on the project's dagster.yaml (run retries for event runs, run monitoring with
the LocalRunLauncher's worker check) in a throwaway DAGSTER_HOME and data folder:

1. A day lands; while its landing run is inside the dbt step (raw loaded, features not built:
   what the issue saw), the run's worker process gets SIGKILL. The code server that started the
   worker sees it die and fails the run (not a step failure); the daemon launches one retry,
   which succeeds, and raw and features_churn hold all the day's rows.
2. Another day lands; while its run is inside a step, the whole `dagster dev` group gets
   SIGKILL (what the issue did). Started again as `mlops-assets ui` starts it: its recovery
   (prepare_instance) marks the dead run failed while no daemon runs; the daemon, once started,
   retries it once. (Run monitoring failing a dead worker under a running daemon, the path of a
   plain `dagster dev` restart, is test_faults.py's; the retry does not depend on who reported
   the failure.)

Then, after a further wait, each day has had exactly two runs (the killed one and its retry),
its rows are complete, and nothing else was launched."""
import datetime as dt
import os
import signal
import time
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets import settings
from mlops_assets.instance import home as instance_home
from mlops_assets.instance.workers import pid_alive, worker_pid
from mlops_assets.simulate.churn import SimulationConfig, write_days
from mlops_assets_tests.dev_server import free_port, start_dagster_dev, stop_group, wait_for, webserver_up

pytestmark = pytest.mark.integration
KILLED_WORKER_DAY = dt.date(2026, 1, 10)
KILLED_GROUP_DAY = dt.date(2026, 1, 11)
DAYS = (KILLED_WORKER_DAY, KILLED_GROUP_DAY)
ROWS = 300
STARTUP_BOUND_S = 180
# Run monitoring polls every 30 s (dagster.yaml); a retry then starts a worker and runs the chain.
FAILED_BOUND_S = 120
RETRY_BOUND_S = 240
# After both retries: longer than a run monitoring poll and many sensor ticks, so that a third
# run (a second retry, the sensor requesting the day again) would have been launched by then.
QUIET_S = 35
# Only the landing sensor ticks often: automation and retrain ticks would add runs this test is
# not about.
INTERVALS = {"MLOPS_SENSOR_INTERVAL_S": "2", "MLOPS_AUTOMATION_INTERVAL_S": "3600",
             "MLOPS_RETRAIN_SENSOR_INTERVAL_S": "3600", "MLOPS_ALERT_SENSOR_INTERVAL_S": "3600"}
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _land(folder: Path, day: dt.date) -> None:
    """The day's landing file, dated back past the settle time so that the next tick takes it."""
    for path in write_days(folder, [day], SimulationConfig(rows_per_day=ROWS)):
        os.utime(path, (time.time() - 120, time.time() - 120))


def _day_runs(instance: dg.DagsterInstance, day: dt.date) -> list[dg.DagsterRun]:
    """Every run of the day, oldest first."""
    return list(reversed(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": day.isoformat()}))))


def _open_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Steps of the run that started and have not ended."""
    started, ended = [], set()
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                                    dg.DagsterEventType.STEP_FAILURE}):
        event = entry.dagster_event
        (started.append if event.event_type == dg.DagsterEventType.STEP_START else ended.add)(entry.step_key)
    return [s for s in started if s not in ended]


def _in_step(instance: dg.DagsterInstance, day: dt.date, want) -> tuple[dg.DagsterRun, str] | None:
    """(the day's landing run, its open step) once the run is STARTED inside a step `want` accepts."""
    runs = _day_runs(instance, day)
    if not runs:
        return None
    assert len(runs) == 1, [(r.run_id, r.status) for r in runs]
    run = runs[0]
    assert run.status not in FINISHED, f"the landing run of {day} ended ({run.status}) before it could be killed"
    if run.status != dg.DagsterRunStatus.STARTED:
        return None
    steps = [s for s in _open_steps(instance, run.run_id) if want(s)]
    return (run, steps[0]) if steps else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _counts(day: dt.date) -> tuple[int, int]:
    """(rows of the day in raw.churn, rows of the day in features_churn), read when no run writes."""
    import duckdb

    deadline = time.monotonic() + 60
    while True:
        try:
            with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
                raw = con.execute("SELECT count(*) FROM raw.churn WHERE _source_file LIKE ?",
                                  [f"%churn_{day.isoformat()}%"]).fetchone()[0]
                features = con.execute("SELECT count(*) FROM main.features_churn WHERE event_date = ?",
                                       [day]).fetchone()[0]
                return raw, features
        except duckdb.IOException:  # a writer holds the file; the runs are over, so not for long
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _retry_of(instance: dg.DagsterInstance, killed: dg.DagsterRun) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": killed.run_id}))
    return runs[0] if runs else None


def _assert_failed_as_dead(instance: dg.DagsterInstance, killed: dg.DagsterRun) -> str:
    """The run is FAILURE because its worker died, not because a step failed. Returns who said so:
    the code server that started the worker (it sees its child die) or the worker check of run
    monitoring and `mlops-assets` recovery (the recorded pid is gone)."""
    run = instance.get_run_by_id(killed.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE), "no run failure event"
    assert run.tags.get("dagster/failure_reason") != "STEP_FAILURE", run.tags
    assert not instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    messages = [e.message or "" for e in instance.all_logs(run.run_id, of_type={
        dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.RUN_FAILURE})]
    died = [m for m in messages if "terminated by signal 9" in m or "is gone" in m]
    assert died, messages[-5:]
    return died[-1]


def _assert_retried_once(instance: dg.DagsterInstance, killed: dg.DagsterRun, proc, log: Path) -> dg.DagsterRun:
    """The killed run's one retry, once it succeeded."""
    retry = wait_for(lambda: _retry_of(instance, killed), RETRY_BOUND_S, f"the retry of run {killed.run_id}",
                     proc, log)
    retry = wait_for(lambda: (r := instance.get_run_by_id(retry.run_id)).status in FINISHED and r,
                     RETRY_BOUND_S, f"the retry {retry.run_id} to end", proc, log)
    assert retry.status == dg.DagsterRunStatus.SUCCESS, (retry.status, log.read_text()[-3000:])
    failed = instance.get_run_by_id(killed.run_id)
    assert failed.tags.get("dagster/will_retry") == "true", failed.tags
    assert failed.tags.get("dagster/auto_retry_run_id") == retry.run_id
    assert retry.tags.get("dagster/root_run_id") == killed.run_id
    assert retry.tags.get("dagster/retry_number") == "1"
    assert retry.tags.get("dagster/partition") == killed.tags["dagster/partition"]
    assert retry.tags.get("mlops/trigger") == "landing"
    return retry


def _kill_group(proc) -> None:
    """SIGKILL dagster dev's whole group and wait until every process of it is gone."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("dagster dev's group outlived SIGKILL")


def test_a_killed_landing_run_is_retried_once(data_dir, dbt_manifest, tmp_path):
    from mlops_assets import cli

    started = time.monotonic()
    folder = data_dir / "landing" / "churn"
    home = data_dir / "dagster_home"
    assert instance_home.write_dagster_yaml(home, "embedded")
    cli.prepare_instance()  # what `mlops-assets ui` does before starting dagster dev
    instance = dg.DagsterInstance.get()

    port, log = free_port(), tmp_path / "dagster_dev.log"
    proc = start_dagster_dev(port, log, INTERVALS)
    try:
        wait_for(lambda: webserver_up(port), STARTUP_BOUND_S, "the webserver", proc, log)
        print(f"dagster dev up after {time.monotonic() - started:.0f}s")

        # 1. SIGKILL to the run worker while it builds the day's dbt models.
        _land(folder, KILLED_WORKER_DAY)
        killed, step = wait_for(lambda: _in_step(instance, KILLED_WORKER_DAY, lambda s: "dbt" in s),
                                RETRY_BOUND_S, f"the landing run of {KILLED_WORKER_DAY} in its dbt step",
                                proc, log, poll_s=0.1)
        pid = worker_pid(instance, killed)
        assert pid is not None and pid_alive(pid)
        assert os.getpgid(pid) == proc.pid, _cmdline(pid)  # a process of dagster dev's group: the worker
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        print(f"killed the worker (pid {pid}: {_cmdline(pid)[:60]}) of run {killed.run_id} in step {step}, "
              f"{time.monotonic() - started:.0f}s into the test")
        wait_for(lambda: instance.get_run_by_id(killed.run_id).status in FINISHED, FAILED_BOUND_S,
                 f"run {killed.run_id} to be marked failed", proc, log)
        why = _assert_failed_as_dead(instance, killed)
        print(f"marked failed {time.monotonic() - killed_at:.0f}s after the kill: {why}")
        _assert_retried_once(instance, killed, proc, log)
        print(f"retried and succeeded {time.monotonic() - killed_at:.0f}s after the kill")
        assert _counts(KILLED_WORKER_DAY) == (ROWS, ROWS)

        # 2. SIGKILL to the whole dagster dev group while the next day's run is in a step, then the
        # restart `mlops-assets ui` makes.
        _land(folder, KILLED_GROUP_DAY)
        dying, step = wait_for(lambda: _in_step(instance, KILLED_GROUP_DAY, lambda s: True), RETRY_BOUND_S,
                               f"the landing run of {KILLED_GROUP_DAY} in a step", proc, log, poll_s=0.1)
        _kill_group(proc)
        restarted = time.monotonic()
        print(f"killed the dagster dev group while run {dying.run_id} was in step {step}")
        assert instance.get_run_by_id(dying.run_id).status == dg.DagsterRunStatus.STARTED  # nobody marked it
        cli.prepare_instance()
        print(f"recovery before the restart: {_assert_failed_as_dead(instance, dying)}")
        proc = start_dagster_dev(port, log := tmp_path / "dagster_dev_2.log", INTERVALS)
        wait_for(lambda: webserver_up(port), STARTUP_BOUND_S, "the restarted webserver", proc, log)
        _assert_retried_once(instance, dying, proc, log)
        print(f"after the restart (as mlops-assets ui): retried and succeeded in {time.monotonic() - restarted:.0f}s")
        assert _counts(KILLED_GROUP_DAY) == (ROWS, ROWS)

        # Exactly once: no third run of any day, nothing else launched, after a further wait.
        time.sleep(QUIET_S)
        assert proc.poll() is None
        for day in DAYS:
            runs = _day_runs(instance, day)
            assert [r.status for r in runs] == [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], \
                [(r.run_id, r.status, r.tags) for r in runs]
            assert _counts(day) == (ROWS, ROWS)
        assert len(instance.get_runs()) == 2 * len(DAYS), \
            [(r.run_id, r.job_name, r.tags) for r in instance.get_runs()]
    finally:
        stop_group(proc)
        instance.dispose()
    assert proc.poll() is not None
    print(f"test took {time.monotonic() - started:.0f}s")
