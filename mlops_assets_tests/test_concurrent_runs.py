"""Two runs at once on the embedded default, with the real daemon: `dagster dev` on the project's
dagster.yaml, a backfill of the dbt features launched the way the UI launches it (GraphQL), and a
new landing file that the landing sensor turns into a run of churn/raw. Both write DuckDB: both
must succeed, be in progress together, and their writing steps must take turns through the pool
`mlops_warehouse` (one slot), never meeting on the file lock."""
import datetime as dt
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.instance import home as instance_home
from mlops_assets.instance.concurrency import WAREHOUSE_POOL
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets_tests.dev_server import free_port, start_dagster_dev, stop_group, wait_for, webserver_up

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)
# The backfill's run must still write when the sensor's run starts (a tick, the queue and a run
# worker's start later): 20 days of 80,000 rows keep it busy for about 10 s on an idle machine
# (10 days of 40,000 rows were done in 3.5 s once raw and dbt ran at DuckDB's speed).
BACKFILL_DAYS = [D0 + dt.timedelta(days=i) for i in range(20)]
SENSOR_DAY = D0 + dt.timedelta(days=20)
STARTUP_BOUND_S = 180
RUNS_BOUND_S = 240
ACTIVE = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}

LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def test_stop_ends_the_group_even_when_its_leader_has_exited():
    """A crashed dagster dev leaves its daemon and code server running: stop_group must end them."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; exit 0"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    child = int(proc.stdout.readline())
    proc.wait(timeout=10)
    try:
        stop_group(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.1)
        assert not _running(child)
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body = json.load(r)
    assert "errors" not in body, body["errors"]
    return body["data"]


def _step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """step key -> (start, end) timestamps from the run's event log."""
    starts, ends = {}, {}
    types = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(run_id, of_type=types):
        target = starts if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START else ends
        target[entry.step_key] = entry.timestamp
    return {k: (starts[k], ends[k]) for k in starts if k in ends}


def _preload_raw(days: list[dt.date]) -> None:
    """Load the backfill's days into churn/raw in this process first, so that the landing
    sensor's first tick finds them loaded and requests only the new file's day."""
    from mlops_assets.definitions import build_defs
    from mlops_assets.orchestrate import execute

    outcome = execute(build_defs(), dg.DagsterInstance.get(), "churn_daily", [dg.AssetKey(["churn", "raw"])],
                      tags={"dagster/asset_partition_range_start": days[0].isoformat(),
                            "dagster/asset_partition_range_end": days[-1].isoformat()})
    assert outcome.success


def test_a_backfill_and_a_sensor_run_write_the_warehouse_at_once(data_dir, dbt_manifest, tmp_path, monkeypatch):
    from mlops_assets import cli
    from mlops_assets.definitions import build_defs
    from mlops_assets.use_cases.loader import OVERRIDES_ENV

    # Big enough days that the backfill's run still writes when the sensor's run starts; the
    # new-rows retrain trigger is off, so the retrain sensor's first tick adds no run.
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("churn: {retrain: {min_new_rows: null}}\n")
    monkeypatch.setenv(OVERRIDES_ENV, str(overrides))
    folder = data_dir / "landing" / "churn"
    write_days(folder, day_range(D0, len(BACKFILL_DAYS)), SimulationConfig(rows_per_day=80_000))
    home = data_dir / "dagster_home"
    assert instance_home.write_dagster_yaml(home, "embedded")
    cli.prepare_instance()  # what `mlops-assets ui` does before starting dagster dev
    _preload_raw(BACKFILL_DAYS)
    pool_of_step = {a.op.name: a.op.pools for a in build_defs().assets if isinstance(a, dg.AssetsDefinition)}

    port, log = free_port(), tmp_path / "dagster_dev.log"
    # Only the landing sensor ticks often; the automation and retrain ticks would add runs this
    # test is not about (they are left to their own tests).
    proc = start_dagster_dev(port, log, {"MLOPS_SENSOR_INTERVAL_S": "2", "MLOPS_AUTOMATION_INTERVAL_S": "3600",
                                          "MLOPS_RETRAIN_SENSOR_INTERVAL_S": "3600"})
    try:
        wait_for(lambda: webserver_up(port), STARTUP_BOUND_S, "the webserver", proc, log)
        started = time.monotonic()
        launched = _graphql(port, LAUNCH_BACKFILL, {"params": {
            "assetSelection": [{"path": ["churn", "raw"]}, {"path": ["churn", "stg_churn"]},
                               {"path": ["churn", "features_churn"]}],
            "partitionNames": [d.isoformat() for d in BACKFILL_DAYS]}})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        instance = dg.DagsterInstance.get()
        # The new file lands once the backfill's run has started, so that the two runs overlap:
        # the backfill daemon submits it up to 30 s after the launch, and a file landing first
        # would have its run done by then. Dated back past the settle time, so that the
        # sensor's next tick (2 s) takes it.
        wait_for(lambda: instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id},
                                                                  statuses=[dg.DagsterRunStatus.STARTED])),
                 RUNS_BOUND_S, "the backfill's run to start", proc, log, poll_s=0.5)
        for path in write_days(folder, [SENSOR_DAY], SimulationConfig(rows_per_day=100)):  # the new file
            os.utime(path, (time.time() - 60, time.time() - 60))

        def sensor_run():
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"mlops/trigger": "landing"}))
            return runs[0] if runs else None

        def both_done():
            backfill = instance.get_backfill(backfill_id)
            run = sensor_run()
            return (backfill.status.value != "REQUESTED" and run is not None and run.status not in ACTIVE
                    and all(r.status not in ACTIVE for r in instance.get_runs(
                        filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))))

        wait_for(both_done, RUNS_BOUND_S, "the backfill and the landing sensor's run", proc, log)
        print(f"backfill and sensor run done {time.monotonic() - started:.0f}s after the backfill was launched")

        backfill_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert instance.get_backfill(backfill_id).status.value == "COMPLETED_SUCCESS"
        assert backfill_runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in backfill_runs)
        landing_runs = instance.get_runs(filters=dg.RunsFilter(tags={"mlops/trigger": "landing"}))
        assert [r.tags.get("dagster/partition") for r in landing_runs] == [SENSOR_DAY.isoformat()]
        assert landing_runs[0].status == dg.DagsterRunStatus.SUCCESS
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert not failed, [r.run_id for r in failed]

        records = {r.dagster_run.run_id: r for r in instance.get_run_records(
            filters=dg.RunsFilter(run_ids=[r.run_id for r in [*backfill_runs, *landing_runs]]))}
        # The two runs were in progress together (one queue of one would have run them in turn) ...
        assert max(r.start_time for r in records.values()) < min(r.end_time for r in records.values()), \
            {k: (r.start_time, r.end_time) for k, r in records.items()}
        # ... and their warehouse writers took turns through the pool's one slot.
        writers = [(window, run_id, step) for run_id in records
                   for step, window in _step_windows(instance, run_id).items() if WAREHOUSE_POOL in pool_of_step[step]]
        assert len({run_id for _, run_id, _ in writers}) == 2
        writers.sort()
        for (a, run_a, step_a), (b, run_b, step_b) in zip(writers, writers[1:]):
            assert a[1] <= b[0], f"{step_a} ({run_a}) and {step_b} ({run_b}) wrote the warehouse at once: {a}, {b}"
        messages = [e.user_message for run_id in records for e in instance.all_logs(run_id)]
        assert not [m for m in messages if "waiting up to" in m and "warehouse lock" in m]
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert (info.slot_count, info.active_slot_count) == (1, 0)
    finally:
        stop_group(proc)
    assert proc.poll() is not None
