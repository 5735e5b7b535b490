"""A killed run gives its warehouse pool slot back to whatever comes next, without `mlops-assets
prepare` or the daemon; a step that waits for a slot says so at INFO, naming the holder and how
to free it; and a dbt process dies with the process that started it."""
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.instance import home as instance_home
from mlops_assets.instance.concurrency import WAREHOUSE_POOL

BIN = Path(sys.executable).parent

WRITER = textwrap.dedent(f"""
    import os, pathlib, time
    import dagster as dg
    from mlops_assets.instance.executors import build_executor

    @dg.asset(pool={WAREHOUSE_POOL!r})
    def writer():
        pathlib.Path(os.environ["WRITER_MARKER"]).write_text(str(os.getpid()))
        time.sleep(float(os.environ["WRITER_SLEEP"]))

    defs = dg.Definitions(assets=[writer], executor=build_executor())
""")


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLOPS_EXECUTOR", raising=False)
    instance_home.ensure_local_env()  # dagster.yaml: the warehouse pool has one slot
    (tmp_path / "writer_defs.py").write_text(WRITER)
    return home


def _materialize(tmp_path: Path, name: str, sleep_s: float) -> subprocess.Popen:
    """`dagster asset materialize` of the writer, as a user runs it."""
    env = {**os.environ, "WRITER_MARKER": str(tmp_path / f"{name}.started"), "WRITER_SLEEP": str(sleep_s)}
    return subprocess.Popen([str(BIN / "dagster"), "asset", "materialize", "-f", str(tmp_path / "writer_defs.py"),
                             "--select", "writer"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before its step:\n{proc.stdout.read()}")
        assert time.monotonic() < deadline, f"{path.name}: the step did not start in {timeout_s} s"
        time.sleep(0.2)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _slots(home: Path) -> tuple[int, list[dg.DagsterRun]]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = [r.dagster_run for r in instance.get_run_records()]
        return instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_slot_count, runs


def test_the_next_materialize_frees_the_slot_of_a_killed_one(home, tmp_path):
    first = _materialize(tmp_path, "first", 600)
    try:
        _wait_for(tmp_path / "first.started", first)
    finally:
        _kill(first)  # SIGKILL to the command alone, mid-step, as seen
    held, (dead,) = _slots(home)
    assert held == 1 and dead.status == dg.DagsterRunStatus.STARTED  # nobody freed it yet

    second = _materialize(tmp_path, "second", 0)
    try:
        out, _ = second.communicate(timeout=180)
    finally:
        if second.poll() is None:
            _kill(second)
    assert second.returncode == 0, out
    assert f"run {dead.run_id}" in out and "slots freed" in out
    held, runs = _slots(home)
    assert held == 0
    status = {r.run_id: r.status for r in runs}
    assert status[dead.run_id] == dg.DagsterRunStatus.FAILURE
    assert sorted(status.values(), key=str) == sorted([dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], key=str)


def test_a_waiting_step_says_at_info_what_it_waits_for_and_goes_on_when_the_holder_dies(home, tmp_path):
    holder = _materialize(tmp_path, "holder", 600)
    waiter = None
    try:
        _wait_for(tmp_path / "holder.started", holder)
        waiter = _materialize(tmp_path, "waiter", 0)
        seen, deadline = "", time.monotonic() + 120
        while "waits for a slot of pool" not in seen:  # the wait is explained before the holder dies
            assert time.monotonic() < deadline and waiter.poll() is None, seen
            if select.select([waiter.stdout], [], [], 1)[0]:
                seen += waiter.stdout.readline()
        _kill(holder)  # dies while the other waits: no prepare, no daemon
        out, _ = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, seen + out
    finally:
        for proc in (holder, waiter):
            if proc is not None and proc.poll() is None:
                _kill(proc)
    assert (tmp_path / "waiter.started").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {r.dagster_run.tags.get("mlops/pid"): r.dagster_run for r in instance.get_run_records()}
        waiting = next(r for r in runs.values() if r.status == dg.DagsterRunStatus.SUCCESS)
        dead = next(r for r in runs.values() if r.status == dg.DagsterRunStatus.FAILURE)
        said = [r for r in instance.all_logs(waiting.run_id) if "waits for a slot of pool" in (r.user_message or "")]
        assert said and said[0].level == logging.INFO
        message = said[0].user_message
        assert f"held by: run {dead.run_id} (__ASSET_JOB, STARTED) step writer" in message
        assert "mlops-assets prepare" in message and "free_concurrency_slots_for_run" in message
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_slot_count == 0


def test_a_run_of_another_host_is_not_judged_here(home):
    """A pid names a process of its own machine only: a run tagged with another host keeps its
    slot (its own daemon or `mlops-assets prepare` there frees it)."""
    from mlops_assets.instance.concurrency import free_slots_of_dead_runs
    from mlops_assets.instance.workers import HOST_TAG, PID_TAG

    with dg.DagsterInstance.from_config(str(home)) as instance:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        for host in ("elsewhere", socket.gethostname()):
            run = dg.DagsterRun(job_name="g", status=dg.DagsterRunStatus.STARTED,
                                tags={PID_TAG: str(gone.pid), HOST_TAG: host})
            instance.add_run(run)
            instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "step")
        freed = free_slots_of_dead_runs(instance)
        runs = {r.dagster_run.tags[HOST_TAG]: r.dagster_run for r in instance.get_run_records()}
        assert freed == [runs[socket.gethostname()].run_id]
        assert runs[socket.gethostname()].status == dg.DagsterRunStatus.FAILURE
        assert runs["elsewhere"].status == dg.DagsterRunStatus.STARTED


def _dbt_step_started(target: Path, before: set[Path]) -> bool:
    """A dbt step has begun building: a new invocation folder under dbt_project/target whose
    dbt.log shows a node started (dbt runs inside the run's process, so no dbt process to see)."""
    for folder in set(target.iterdir()) - before:
        log = folder / "dbt.log"
        if folder.name.startswith("churn_dbt_models-") and log.exists() and " START " in log.read_text(errors="replace"):
            return True
    return False


def test_a_materialize_killed_in_its_dbt_step_takes_dbt_along_and_frees_its_slot(data_dir, dbt_manifest):
    """The case seen: SIGKILL of `dagster asset materialize` while `dbt build` runs. dbt runs in
    the run's process and goes with it: the warehouse file is free for another writer at once,
    and the same command run again succeeds without `mlops-assets prepare`."""
    import datetime as dt

    import duckdb

    from mlops_assets import settings
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    instance_home.ensure_local_env()  # the project's dagster.yaml: one warehouse slot
    write_days(data_dir / "landing" / "churn", day_range(dt.date(2026, 1, 1), 1), SimulationConfig(rows_per_day=50))
    repo = Path(__file__).resolve().parent.parent
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "mlops_assets.definitions",
               "--select", "churn/raw,churn/stg_churn,churn/features_churn", "--partition", "2026-01-01"]
    env = {**os.environ, "NO_COLOR": "1"}
    target = settings.DBT_PROJECT_DIR / "target"
    before = set(target.iterdir())
    first = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not _dbt_step_started(target, before):
            assert first.poll() is None, "the run ended before its dbt step was seen"
            assert time.monotonic() < deadline, "no `dbt build` within 300 s"
            time.sleep(0.05)
    finally:
        _kill(first)
    # nothing is left writing: DuckDB lets one process write the file, and this one may now
    duckdb.connect(str(settings.duckdb_path())).close()
    held, (dead,) = _slots(data_dir / "dagster_home")
    assert held == 1 and dead.status == dg.DagsterRunStatus.STARTED

    again = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    held, runs = _slots(data_dir / "dagster_home")
    assert held == 0 and {r.run_id: r.status for r in runs}[dead.run_id] == dg.DagsterRunStatus.FAILURE
