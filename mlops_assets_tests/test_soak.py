"""A short soak under the real daemon: `dagster dev` on the project's dagster.yaml, a history
with a champion, then 5 days dropped into the landing folder one after another (labels 7 days
after their day), the loop left alone. The steady-state targets: no sensor tick fails, at most 2
runs per landed day, and every dropped day is scored, drift-reported and in the monitoring
summary. The harness is the soak benchmark's (dev_server.run_soak; bench_soak.py)."""
import datetime as dt
import os

import pytest

from mlops_assets_tests import dev_server

pytestmark = pytest.mark.integration

# Labels 7 days late, as in the benchmark: the labels landing during the soak are those of the
# history's last days, which the history run scored as the loop would have. (With labels 2 days
# late, a day's labels can land before its landing run has scored it; its performance report is
# then left to the automation, one more run per day.)
PLAN = dev_server.SoakPlan(history_days=20, dropped_days=5, cadence_s=6, rows_per_day=300, concept_drift_from=0)
INTERVALS = {"MLOPS_SENSOR_INTERVAL_S": "2", "MLOPS_AUTOMATION_INTERVAL_S": "5",
             "MLOPS_RETRAIN_SENSOR_INTERVAL_S": "10", "MLOPS_ALERT_SENSOR_INTERVAL_S": "10"}


@pytest.fixture(scope="module")
def soaked(tmp_path_factory, dbt_manifest):
    """The soak's figures, run once for the module's assertions."""
    data = tmp_path_factory.mktemp("soak") / "data"
    saved = {k: os.environ.get(k) for k in ("MLOPS_DATA_DIR", "DAGSTER_HOME", "MLOPS_USE_CASE_OVERRIDES",
                                            "MLOPS_DUCKDB_PATH", "MLFLOW_TRACKING_URI", "MLOPS_USE_CASE_DIRS",
                                            "MLOPS_MLFLOW_ARTIFACT_ROOT", "DO_NOT_TRACK")}
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(dev_server.soak_env(data, PLAN))
    try:
        dev_server.prepare_soak_history(data, PLAN)
        figures = dev_server.run_soak(data, PLAN, data / "dagster_dev.log", INTERVALS, warmup_bound_s=90,
                                      drain_bound_s=300, poll_s=1.0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    dev_server.print_soak_figures(figures)
    return figures


def test_no_sensor_tick_fails(soaked):
    failing = {name: t["errors"][:3] for name, t in soaked["ticks"].items() if t["failed"]}
    assert soaked["failed_ticks"] == 0, failing


def test_at_most_two_runs_per_landed_day(soaked):
    assert soaked["runs_per_day"] <= dev_server.SOAK_GOALS["runs_per_day"], soaked["runs_by_kind"]


def test_every_dropped_day_is_scored_reported_and_summarised(soaked):
    days = soaked["days_dropped"]
    assert days == PLAN.dropped_days
    assert (soaked["days_scored"], soaked["days_drift_reported"], soaked["days_summarised"]) == (days, days, days), \
        {k: soaked[k] for k in ("days_scored", "days_drift_reported", "days_summarised", "runs_by_kind", "failed_runs")}
    assert not soaked["failed_runs"]


def test_plan_days_are_closed_and_after_the_history():
    today = dt.datetime.now(dt.timezone.utc).date()
    assert PLAN.history[-1] < PLAN.drops[0] and PLAN.drops[-1] == today - dt.timedelta(days=1)


def test_each_day_is_in_the_summary_when_the_run_that_scored_it_ends(soaked):
    assert soaked["days_summarised_in_scoring_run"] == soaked["days_summarised"] == PLAN.dropped_days, \
        {k: soaked[k] for k in ("days_summarised", "days_summarised_in_scoring_run", "summary_behind_examples")}
