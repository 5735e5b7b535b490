"""`mlops-assets run`: the CI path (docs/operations.md) as one command, one process.

It carries the three selections of the documented `dagster asset materialize` commands as three
Dagster runs recorded in DAGSTER_HOME, and its exit status fails a CI job exactly when one of
them fails or a blocking check (a dbt test, a quality gate) fails."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_assets.instance.workers import PID_TAG

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAYS = 12


def _simulate(data_dir: Path) -> tuple[dt.date, dt.date]:
    """Fixed days (not days ending today): the same rows, so the same model and gates, every day."""
    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    first = dt.date(2026, 3, 1)
    last = first + dt.timedelta(days=DAYS - 1)
    write_days(data_dir / "landing" / "churn", day_range(first, DAYS), SimulationConfig(rows_per_day=300))
    return first, last


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "mlops-assets"), "run", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.integration
def test_run_is_the_ci_path_in_one_process(data_dir, dbt_manifest):
    import dagster as dg

    first, last = _simulate(data_dir)
    env = {**os.environ, "NO_COLOR": "1"}
    done = _run(env, "--use-case", "churn")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "dbt manifest up to date" in out or "dbt manifest ready" in out

    instance = dg.DagsterInstance.get()
    runs = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 3, out[-4000:]
    # One process carried all three runs (the worker pid each run records).
    pids = {r.dagster_run.tags.get(PID_TAG) for r in runs}
    assert len(pids) == 1 and None not in pids, pids
    assert {r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in runs[:1]} == {first.isoformat()}
    assert runs[2].dagster_run.tags.get("dagster/partition") == last.isoformat()
    raw = instance.get_materialized_partitions(dg.AssetKey(["churn", "raw"]))
    assert raw == {(first + dt.timedelta(days=i)).isoformat() for i in range(DAYS)}
    for name in ("drift_report", "batch_predictions"):
        assert instance.get_materialized_partitions(dg.AssetKey(["churn", name])) == {last.isoformat()}
    assert instance.get_latest_materialization_event(dg.AssetKey(["churn", "champion_model"])) is not None
    # Only the selections of the CI path: no performance report, no summary.
    for name in ("performance_report", "monitoring_summary"):
        assert instance.get_latest_materialization_event(dg.AssetKey(["churn", name])) is None


@pytest.mark.integration
def test_a_failed_gate_fails_the_command_and_promotes_nothing(data_dir, dbt_manifest):
    import dagster as dg

    _simulate(data_dir)
    overrides = data_dir / "overrides.json"
    overrides.write_text(json.dumps({"churn": {"thresholds": {"min_roc_auc": 0.999}}}))
    done = _run({**os.environ, "NO_COLOR": "1", "MLOPS_USE_CASE_OVERRIDES": str(overrides)}, "--use-case", "churn")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-4000:]
    assert "meets_minimum_quality" in out and "0.999" in out, out[-4000:]
    instance = dg.DagsterInstance.get()
    assert instance.get_latest_materialization_event(dg.AssetKey(["churn", "champion_model"])) is None
    # Nothing is scored by a model that was not promoted.
    assert instance.get_latest_materialization_event(dg.AssetKey(["churn", "batch_predictions"])) is None


@pytest.mark.integration
def test_a_given_range_runs_those_days_without_listing_the_files(data_dir, dbt_manifest):
    """--partition-range, as the documented CI block passes it: the range run and the last day's
    runs cover exactly those days (clipped to the partitions), and the files are read once, by raw."""
    import dagster as dg

    first, last = _simulate(data_dir)
    done = _run({**os.environ, "NO_COLOR": "1"}, "--use-case", "churn", "--partition-range", f"{first}...{last}")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert f"churn: {DAYS} day(s), {first}..{last} (--partition-range)" in out, out[-3000:]
    instance = dg.DagsterInstance.get()
    raw = instance.get_materialized_partitions(dg.AssetKey(["churn", "raw"]))
    assert raw == {(first + dt.timedelta(days=i)).isoformat() for i in range(DAYS)}
    scored = instance.get_materialized_partitions(dg.AssetKey(["churn", "batch_predictions"]))
    assert scored == {last.isoformat()}


def test_a_range_is_clipped_to_the_partitions():
    from mlops_assets.orchestrate import given_days

    first, last = dt.date(2026, 1, 1), dt.date(2026, 1, 10)
    listing = given_days(first, last, dt.date(2025, 12, 1), dt.date(2026, 1, 3))
    assert listing.days == [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
    assert given_days(first, last, dt.date(2026, 2, 1), dt.date(2026, 2, 3)).days == []


def test_a_bad_range_is_refused(data_dir):
    done = _run({**os.environ}, "--partition-range", "2026-02-01...2026-01-01")
    assert done.returncode == 2 and "FIRST is after LAST" in done.stderr


def test_an_unknown_use_case_is_refused_by_name(data_dir):
    done = _run({**os.environ}, "--use-case", "nope")
    assert done.returncode != 0
    assert "no use case 'nope'" in done.stderr and "churn" in done.stderr
