"""dbt runs inside the step's process (chain/dbt.py): several dbt steps one after another in one
process (two days, two use cases) each get their day and their Dagster events, the project is
parsed once for them, the DuckDB file is free for another process and for our own read-only
connection as soon as a step is done, and a dbt failure fails the step with dbt's error."""
import datetime as dt
import os
import subprocess
import sys

import dagster as dg
import duckdb
import pytest

from mlops_assets.simulate.files import day_range
from mlops_assets.simulate.shipped import simulation_config, simulator
from mlops_assets.use_cases.loader import load_use_cases


def _load_days(uc, n: int, instance, resources) -> list[dt.date]:
    """n simulated days of the use case in its landing folder, loaded by its raw asset."""
    from mlops_assets.chain.raw import build_raw_asset

    cfg = simulation_config(uc.name, rows_per_day=30)
    days = day_range(max(uc.first_day, cfg.start_date), n)
    for p in simulator(uc.name).write_days(uc.landing.path(), days, cfg, use_case=uc.name):
        os.utime(p, (p.stat().st_mtime - 120,) * 2)
    assert dg.materialize([build_raw_asset(uc)], instance=instance, resources=resources,
                          tags={"dagster/asset_partition_range_start": days[0].isoformat(),
                                "dagster/asset_partition_range_end": days[-1].isoformat()}).success
    return days


def _open_for_writing_in_another_process(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_dbt_steps_of_two_days_and_two_use_cases_in_one_process(data_dir, dbt_manifest):
    from mlops_assets import settings
    from mlops_assets.chain import dbt
    from mlops_assets.chain.build import dbt_assets_of
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.resources import shared_resources

    settings.fill_env_defaults()
    instance, resources = dg.DagsterInstance.get(), shared_resources()
    ucs = {u.name: u for u in load_use_cases() if u.name in ("churn", "demand")}
    assert set(ucs) == {"churn", "demand"}
    steps = []  # (use case, day) in the order they run
    days = {name: _load_days(uc, 2, instance, resources) for name, uc in ucs.items()}
    steps = [("churn", days["churn"][0]), ("churn", days["churn"][1]), ("demand", days["demand"][1])]
    parses = []
    for name, day in steps:
        uc = ucs[name]
        (models,) = dbt_assets_of(uc)
        result = dg.materialize([build_raw_asset(uc), models], selection=list(models.keys), instance=instance,
                                resources=resources, partition_key=day.isoformat())
        assert result.success, name
        parses.append(dbt.parse_count())
        # the events the step yielded before, from dbt's events: models with their metadata ...
        materialized = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node(models.op.name)}
        assert f"features_{name}" in materialized, materialized.keys()
        for meta in materialized.values():
            assert meta["unique_id"].text.startswith("model.mlops_assets.")
            assert "dagster/column_schema" in meta
        # ... and the dbt tests as asset check results (the checks in the UI)
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks]
        assert {c.asset_key.path[0] for c in checks} == {name}
        # dbt let go of the file: another process may write it at once, and our read-only
        # connection in this process does not meet dbt's connection ("different configuration")
        other = _open_for_writing_in_another_process(settings.duckdb_path())
        assert other.returncode == 0, other.stderr
        with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
            built = con.execute(f"SELECT DISTINCT event_date::VARCHAR FROM main.features_{name}").fetchall()
        assert (day.isoformat(),) in built
    # the day window reached each build: churn holds its two days, each built by its own step
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        churn_days = con.execute("SELECT DISTINCT event_date::VARCHAR FROM main.features_churn ORDER BY 1").fetchall()
    assert churn_days == [(d.isoformat(),) for d in days["churn"]]
    # parsed at most once, by the first step: the later steps reused its manifest
    assert parses[0] == parses[-1], parses


def test_a_failing_dbt_build_fails_the_step_with_dbts_error_and_frees_the_file(data_dir, dbt_manifest):
    from mlops_assets import settings
    from mlops_assets.chain.build import dbt_assets_of
    from mlops_assets.chain.resources import shared_resources

    settings.fill_env_defaults()
    (churn,) = [u for u in load_use_cases() if u.name == "churn"]
    (models,) = dbt_assets_of(churn)
    # a warehouse without the raw table the models read
    duckdb.connect(str(settings.duckdb_path())).close()
    result = dg.materialize([models], instance=dg.DagsterInstance.get(), resources=shared_resources(),
                            partition_key=churn.first_day.isoformat(), raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "failed (in process). Errors from dbt" in message and "raw" in message and "churn" in message, message
    other = _open_for_writing_in_another_process(settings.duckdb_path())
    assert other.returncode == 0, other.stderr


def test_no_dbt_process_is_started(data_dir, dbt_manifest, monkeypatch):
    """The step runs dbt without starting a process (the watchdog that stopped a dbt process
    left behind by a killed run has nothing to watch: dbt ends with the step's process)."""
    from mlops_assets import settings
    from mlops_assets.chain.build import dbt_assets_of
    from mlops_assets.chain.resources import shared_resources

    settings.fill_env_defaults()
    (churn,) = [u for u in load_use_cases() if u.name == "churn"]
    instance, resources = dg.DagsterInstance.get(), shared_resources()
    (day, _) = _load_days(churn, 2, instance, resources)
    started = []
    real = subprocess.Popen.__init__

    def spy(self, args, *a, **k):
        started.append(args)
        return real(self, args, *a, **k)

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    (models,) = dbt_assets_of(churn)
    assert dg.materialize([models], instance=instance, resources=resources, partition_key=day.isoformat()).success
    argvs = [[str(x) for x in (a if isinstance(a, (list, tuple)) else [a])] for a in started]
    assert not [a for a in argvs if os.path.basename(a[0]) == "dbt" or "dbt.cli.main" in a], argvs


@pytest.fixture(autouse=True)
def _no_leftover_dbt_window():
    """The day window is set for a dbt command only, never left in the environment."""
    yield
    assert "MLOPS_DBT_MIN_DATE" not in os.environ and "MLOPS_DBT_MAX_DATE" not in os.environ
