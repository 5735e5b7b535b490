"""Issue 15 items 3 and 4: the retrain triggers read only completed check evaluations (a check
that is planned, running in a run or backfill, or skipped never crashes a tick), one use case's
sensor error leaves another's alone, and a training run outranks the daily runs in the queue."""

import datetime as dt
import logging
import threading

import dagster as dg
import pytest

from mlops_assets.chain import handoffs
from mlops_assets.use_cases.config import RetrainConfig
from mlops_assets.use_cases.loader import load_use_cases

DRIFT_KEY = dg.AssetKey(["churn", "drift_report"])
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-01-01")
CHECK = dg.AssetCheckSpec(handoffs.DRIFT_CHECK, asset=DRIFT_KEY, blocking=False, partitions_def=PARTITIONS)


@pytest.fixture
def churn(churn, data_dir):
    # The held runs below run in-process on a thread; Dagster's default compute-log capture tails
    # each step's stdout/stderr through `tail -F` subprocesses, whose clean-up waited 30 s each
    # late in a full suite run. These runs print nothing worth keeping: no capture.
    (data_dir / "dagster_home" / "dagster.yaml").write_text(
        "compute_logs:\n  module: dagster._core.storage.noop_compute_log_manager\n"
        "  class: NoOpComputeLogManager\ntelemetry:\n  enabled: false\n")
    return churn.model_copy(update={"retrain": RetrainConfig(cooldown_minutes=0)})


def _report(instance, *key, partition=None, metadata=None):
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(list(key)), partition=partition, metadata=metadata or {}))


def _training_set(instance, prefix="churn", holdout_end="2026-01-14"):
    end = dt.date.fromisoformat(holdout_end)
    _report(instance, prefix, "training_set", metadata={
        handoffs.TRAIN_START: str(end - dt.timedelta(days=30)), handoffs.TRAIN_END: str(end - dt.timedelta(days=7)),
        handoffs.HOLDOUT_START: str(end - dt.timedelta(days=6)), handoffs.HOLDOUT_END: holdout_end,
        handoffs.TRAINING_DIGEST: "d"})


def _drift(instance, day, passed, share, prefix="churn"):
    """A day's drift report and its completed check, as the real asset records them."""
    _report(instance, prefix, "drift_report", partition=day)
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey([prefix, "drift_report"]), check_name=handoffs.DRIFT_CHECK, passed=passed,
        partition=day, metadata=handoffs.drift_check_metadata(share, 0.3)))


def _mat_id(instance, day):
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DRIFT_KEY, asset_partitions=[day]), limit=1).records[0].storage_id


def _tick(uc, instance):
    from mlops_assets.chain.retrain import build_retrain_sensor

    return build_retrain_sensor(uc)(dg.build_sensor_context(instance=instance))


class _HeldRun:
    """A real run of a stand-in drift report that records the day's (or range's)
    materialization, then waits before its check: the check stays planned while it waits."""

    def __init__(self, instance, partition_key=None, partition_range=None, passed=True,
                 asset_key=DRIFT_KEY, check_name=handoffs.DRIFT_CHECK):
        check_spec = dg.AssetCheckSpec(check_name, asset=asset_key, blocking=False, partitions_def=PARTITIONS)
        self.release = threading.Event()
        self.materialized = threading.Event()
        release, materialized = self.release, self.materialized

        # can_subset: the per-day evaluations are logged as events, as a range run logs them,
        # rather than as the check's output.
        @dg.multi_asset(specs=[dg.AssetSpec(asset_key)], check_specs=[check_spec], partitions_def=PARTITIONS,
                        can_subset=True, backfill_policy=dg.BackfillPolicy.single_run())
        def drift_report(context: dg.AssetExecutionContext):
            yield dg.MaterializeResult(asset_key=asset_key)  # every day of the run's partition or range
            materialized.set()
            release.wait(60)
            for day in context.partition_keys:
                yield dg.AssetCheckEvaluation(asset_key=asset_key, check_name=check_name, passed=passed,
                                              partition=day, metadata=handoffs.drift_check_metadata(0.1, 0.3))

        tags = ({"dagster/asset_partition_range_start": partition_range[0],
                 "dagster/asset_partition_range_end": partition_range[1]} if partition_range else None)
        self.result = None

        def run():
            self.result = dg.materialize([drift_report], instance=instance, partition_key=partition_key,
                                         tags=tags, raise_on_error=False)

        self.thread = threading.Thread(target=run)

    def __enter__(self):
        self.thread.start()
        assert self.materialized.wait(60), "the run did not reach its materialization"
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(180)  # generous: a loaded machine, not the code under test, sets the pace
        assert self.result is not None and self.result.success


def test_a_planned_drift_check_uses_the_previous_days_verdict(churn, data_dir):
    """The newest day's report is written and its check still running: the tick does not
    crash and decides on the previous day's verdict; a re-run of that previous day falls back
    to its completed verdict, for the report it judged."""
    instance = dg.DagsterInstance.get()
    _training_set(instance)
    _drift(instance, "2026-01-20", passed=False, share=0.74)
    flagged = _mat_id(instance, "2026-01-20")
    with _HeldRun(instance, partition_key="2026-01-21"):
        fired = _tick(churn, instance)
        assert isinstance(fired, dg.RunRequest) and fired.tags["mlops/trigger"] == "drift", fired
        assert fired.run_key == f"drift:churn:{flagged}" and "2026-01-20" in fired.tags["mlops/trigger_reason"]
    quiet = _tick(churn, instance)  # the check of 2026-01-21 completed and passed
    assert isinstance(quiet, dg.SkipReason) and "latest drift 2026-01-21" in quiet.skip_message

    # The training set is rebuilt; then 2026-01-21 is re-run: until its check completes, the
    # day's verdict is the earlier one, tied to the report it judged (older than the training
    # set, so it does not fire again).
    _training_set(instance, holdout_end="2026-01-19")
    before = _mat_id(instance, "2026-01-21")
    with _HeldRun(instance, partition_key="2026-01-21"):
        assert _mat_id(instance, "2026-01-21") > before
        from mlops_assets.chain.retrain import latest_drift

        state = latest_drift(instance, churn)
        assert (state.day, state.storage_id, state.flagged) == ("2026-01-21", before, False)
        assert isinstance(_tick(churn, instance), dg.SkipReason)


def test_a_running_backfill_of_many_days_does_not_crash_the_tick(churn, data_dir):
    """A range run over 17 days (7 already reported, 10 new) has written its reports and has
    every day's check planned: the tick decides on the newest day with a completed verdict."""
    instance = dg.DagsterInstance.get()
    _training_set(instance)
    for n in range(15, 21):
        _drift(instance, f"2026-01-{n}", passed=True, share=0.1)
    _drift(instance, "2026-01-21", passed=False, share=0.74)
    flagged = _mat_id(instance, "2026-01-21")
    with _HeldRun(instance, partition_range=("2026-01-15", "2026-01-31")):
        assert max(instance.get_materialized_partitions(DRIFT_KEY)) == "2026-01-31"
        fired = _tick(churn, instance)
        assert isinstance(fired, dg.RunRequest) and fired.run_key == f"drift:churn:{flagged}", fired
    # Once the backfill's checks completed, its newest day decides.
    quiet = _tick(churn, instance)
    assert isinstance(quiet, dg.SkipReason) and "latest drift 2026-01-31" in quiet.skip_message


@pytest.mark.parametrize("finish", ["skip", "fail"])
def test_a_skipped_or_crashed_check_is_no_verdict(churn, data_dir, finish):
    """A run that wrote the day's report and ended without its check (skipped, or its run
    failed): that day has no verdict, the previous day decides."""

    @dg.multi_asset(specs=[dg.AssetSpec(DRIFT_KEY)], check_specs=[CHECK], partitions_def=PARTITIONS,
                    can_subset=True)
    def drift_report():
        yield dg.MaterializeResult(asset_key=DRIFT_KEY)
        if finish == "fail":
            raise RuntimeError("the check crashed")
        # no check result: the check is skipped

    instance = dg.DagsterInstance.get()
    _training_set(instance)
    _drift(instance, "2026-01-20", passed=False, share=0.74)
    result = dg.materialize([drift_report], instance=instance, partition_key="2026-01-21", raise_on_error=False)
    assert result.success == (finish == "skip")
    assert "2026-01-21" in instance.get_materialized_partitions(DRIFT_KEY)
    fired = _tick(churn, instance)
    assert isinstance(fired, dg.RunRequest) and fired.run_key == f"drift:churn:{_mat_id(instance, '2026-01-20')}"


def test_a_performance_check_in_flight_does_not_crash_the_tick(churn, data_dir):
    instance = dg.DagsterInstance.get()
    _training_set(instance)
    with _HeldRun(instance, partition_key="2026-01-21", asset_key=dg.AssetKey(["churn", "performance_report"]),
                  check_name=handoffs.PERFORMANCE_CHECK):
        _tick(churn.model_copy(update={"monitoring": churn.monitoring.model_copy(
            update={"performance_retrain_days": 3})}), instance)


def test_a_report_without_any_check_result_still_fails_loudly(churn, data_dir):
    from mlops_assets.chain.lineage import day_check_result

    instance = dg.DagsterInstance.get()
    _training_set(instance)
    _drift(instance, "2026-01-20", passed=True, share=0.1)
    _report(instance, "churn", "drift_report", partition="2026-01-21")  # a report that never planned its check
    assert not day_check_result(instance, dg.AssetCheckKey(DRIFT_KEY, handoffs.DRIFT_CHECK), "2026-01-21").undecided
    with pytest.raises(Exception, match="drift_below_threshold has no result for 2026-01-21"):
        _tick(churn, instance)


def test_alert_sensor_reads_only_completed_evaluations(churn, data_dir, tmp_path, monkeypatch):
    """Planned evaluations are another event type: the alert sensor never sees them."""
    from mlops_assets.alerts.sink import AlertSink
    from mlops_assets.chain.alerts import build_check_alert_sensor

    monkeypatch.setenv("MLOPS_ALERT_FILE", str(tmp_path / "alerts.jsonl"))
    instance = dg.DagsterInstance.get()
    sensor = build_check_alert_sensor()
    first = dg.build_sensor_context(instance=instance, resources={"alerts": AlertSink(file_path=str(tmp_path / "alerts.jsonl"))})
    sensor(first)
    with _HeldRun(instance, partition_key="2026-01-21", passed=False):
        held = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                              resources={"alerts": AlertSink()}))
        assert isinstance(held, dg.SkipReason) and held.skip_message.startswith("no new failed checks in 0 ")
    done = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources={"alerts": AlertSink()}))
    assert "1 failed check(s) alerted" in done.skip_message


# --- one use case's sensor error never stops another's -------------------------------------

DEFS_MODULE = '''
import dagster as dg
from mlops_assets.chain.build import jobs_of
from mlops_assets.chain.retrain import build_retrain_sensor, training_chain
from mlops_assets.use_cases.config import RetrainConfig
from mlops_assets.use_cases.loader import load_use_cases

(churn,) = [u for u in load_use_cases() if u.name == "churn"]
ucs = [churn.model_copy(update={"name": n, "retrain": RetrainConfig(min_new_rows=100, cooldown_minutes=0)})
       for n in ("alpha", "beta")]


def stub(asset_key, group):
    @dg.asset(key=asset_key, group_name=group)
    def _stub() -> None: ...
    return _stub


assets = [stub(k, uc.name) for uc in ucs for k in training_chain(uc)]
defs = dg.Definitions(assets=assets, sensors=[build_retrain_sensor(uc) for uc in ucs],
                      jobs=[j for uc in ucs for j in jobs_of(uc) if j.name.endswith("_training")])
'''


def test_one_use_cases_sensor_error_leaves_the_others_alone(data_dir, tmp_path):
    """Under the sensor daemon: alpha's drift report has no check result (a loud error), beta
    has enough new labelled rows; alpha's tick fails, beta's requests its retrain."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.scheduler.instigation import TickStatus
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    # The sensor daemon's iteration has no public API; it is used here only.
    from dagster._daemon.sensor import execute_sensor_iteration

    module = tmp_path / "two_use_cases.py"
    module.write_text(DEFS_MODULE)
    queued = {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
    with instance_for_test(overrides={"run_coordinator": queued}) as instance:
        _training_set(instance, "alpha")
        _training_set(instance, "beta")
        _report(instance, "alpha", "drift_report", partition="2026-01-20")  # no check result: corrupt
        _report(instance, "beta", "raw", partition="2026-01-20", metadata={"labelled_rows": 300})
        target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(
            LoadableTargetOrigin(python_file=str(module), attribute="defs"), location_name="two_use_cases"))
        with create_test_daemon_workspace_context(target, instance) as workspace:
            list(execute_sensor_iteration(workspace, logging.getLogger("test"), None, None))
            ticks = {}
            for state in instance.all_instigator_state():
                (tick,) = instance.get_ticks(state.instigator_origin_id, state.selector_id)
                ticks[state.instigator_name] = tick
        assert ticks["alpha_retrain_sensor"].status == TickStatus.FAILURE
        assert "has no result for 2026-01-20" in ticks["alpha_retrain_sensor"].error.to_string()
        assert ticks["beta_retrain_sensor"].status == TickStatus.SUCCESS
        (run,) = instance.get_runs()
        assert run.job_name == "beta_training" and run.tags["mlops/trigger"] == "new_rows"
        assert run.tags["dagster/priority"] == "10"


# --- retraining first ----------------------------------------------------------------------

def _stub(asset_key, partitions=None):
    @dg.asset(key=asset_key, group_name="churn", partitions_def=partitions)
    def _asset() -> None: ...
    return _asset


def queue_defs() -> dg.Definitions:
    """churn's daily and training jobs (chain/build.py) over stand-in assets."""
    from mlops_assets.chain.build import jobs_of
    from mlops_assets.chain.retrain import training_chain
    from mlops_assets.chain.lineage import RAW, SUMMARY, key

    (churn,) = [u for u in load_use_cases() if u.name == "churn"]
    stubs = [_stub(k) for k in (*training_chain(churn), key(churn, SUMMARY))] + [_stub(key(churn, RAW), PARTITIONS)]
    return dg.Definitions(assets=stubs, jobs=jobs_of(churn))


def test_a_retrain_waiting_behind_ten_daily_runs_starts_next(churn, data_dir, tmp_path):
    """QueuedRunCoordinator with one run at a time: ten daily runs wait, then a retrain is
    submitted as the sensor daemon submits its request; the queue's next dequeue launches it."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    # The queue daemon's iteration has no public API; it is used here only.
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    from mlops_assets.chain.retrain import _request
    from mlops_assets.training.triggers import Decision

    defs = queue_defs()
    daily, training = defs.resolve_job_def("churn_daily"), defs.resolve_job_def("churn_training")
    assert training.run_tags["dagster/priority"] == "10"  # a training run launched from the UI too
    module = tmp_path / "queue_location.py"
    module.write_text("from mlops_assets_tests.test_trigger_robustness import queue_defs\ndefs = queue_defs()\n")
    overrides = {
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"max_concurrent_runs": 1}},
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},  # launches nothing
    }
    target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(module), attribute="defs"), location_name="queue"))
    with instance_for_test(overrides=overrides) as instance, \
            create_test_daemon_workspace_context(target, instance) as workspace:
        context = workspace.create_request_context()
        repo = context.get_code_location("queue").get_repository("__repository__")

        def submit(job_def, tags):
            remote = repo.get_full_job(job_def.name)
            run = instance.create_run_for_job(job_def, status=dg.DagsterRunStatus.NOT_STARTED, tags=tags,
                                              remote_job_origin=remote.get_remote_origin(),
                                              job_code_origin=remote.get_python_origin())
            return instance.submit_run(run.run_id, context)

        for n in range(1, 11):
            submit(daily, {**daily.run_tags, "dagster/partition": f"2026-01-{n:02d}"})
        request = _request(churn, Decision("drift", "drift:churn:1", "drift check failed"))
        assert request.tags["dagster/priority"] == "10"
        retrain = submit(training, {**training.run_tags, **request.tags})
        queued = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
        assert len(queued) == 11

        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        assert [r.run_id for r in instance.run_launcher.queue()] == [retrain.run_id]
        assert instance.get_run_by_id(retrain.run_id).status == dg.DagsterRunStatus.STARTING
        assert len(instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))) == 10
