"""The dbt step's overhead: the day window reaches the models without --vars (which made every
`dbt build` parse the whole project again), the parse state is kept for the next build, and no
`dbt --version` process is started per run."""
import datetime as dt
import os
import stat
import time

import dagster as dg
import pytest

from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets.use_cases.loader import load_use_cases

D0 = dt.date(2026, 1, 1)


def test_window_variables_are_checked_dates():
    from mlops_assets.chain.features import dbt_window_env

    assert dbt_window_env("2026-01-02", "2026-01-03") == {"MLOPS_DBT_MIN_DATE": "2026-01-02",
                                                          "MLOPS_DBT_MAX_DATE": "2026-01-03"}
    with pytest.raises(ValueError, match=r"max_date '2026-13-01': expected a date YYYY-MM-DD"):
        dbt_window_env("2026-01-02", "2026-13-01")


def test_parse_state_is_copied_back_only_when_it_changed(tmp_path):
    from mlops_assets.chain.dbt import keep_parse_state

    project, run = tmp_path / "target", tmp_path / "target" / "run-1"
    run.mkdir(parents=True)
    assert not keep_parse_state(run, project_target=project)  # dbt failed before parsing: nothing to keep
    (run / "partial_parse.msgpack").write_bytes(b"state made with this profile")
    assert keep_parse_state(run, project_target=project)
    assert (project / "partial_parse.msgpack").read_bytes() == b"state made with this profile"
    assert not keep_parse_state(run, project_target=project)  # unchanged: left alone
    assert [p.name for p in project.iterdir() if p.is_file()] == ["partial_parse.msgpack"]  # no temp file left


def test_dbt_version_is_read_from_the_environment_not_a_process(tmp_path):
    from importlib import metadata

    from mlops_assets.chain.dbt import DbtCli
    from mlops_assets.chain.resources import dbt_executable

    mine = DbtCli(project_dir="dbt_project", dbt_executable=dbt_executable())
    assert str(mine._cli_version) == metadata.version("dbt-core")
    # any other executable is still asked (a real script standing in for another dbt)
    other = tmp_path / "dbt"
    other.write_text("#!/bin/sh\necho 'Core:'\necho '  - installed: 1.9.4'\n")
    other.chmod(other.stat().st_mode | stat.S_IEXEC)
    assert str(DbtCli(project_dir="dbt_project", dbt_executable=str(other))._cli_version) == "1.9.4"


def test_a_day_is_built_from_the_window_variables_and_parsing_is_not_redone_for_vars(data_dir, dbt_manifest):
    from mlops_assets import settings
    from mlops_assets.chain.build import dbt_assets_of
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.resources import shared_resources

    settings.fill_env_defaults()
    (churn,) = [u for u in load_use_cases() if u.name == "churn"]
    for p in write_days(churn.landing.path(), day_range(D0, 3), SimulationConfig(rows_per_day=40)):
        t = time.time() - 120
        os.utime(p, (t, t))
    instance, resources = dg.DagsterInstance.get(), shared_resources()
    raw, (models,) = build_raw_asset(churn), dbt_assets_of(churn)
    assert dg.materialize([raw], instance=instance, resources=resources,
                          tags={"dagster/asset_partition_range_start": "2026-01-01",
                                "dagster/asset_partition_range_end": "2026-01-03"}).success
    logs = []
    for day in ("2026-01-02", "2026-01-03"):
        result = dg.materialize([raw, models], selection=list(models.keys), instance=instance,
                                resources=resources, partition_key=day)
        assert result.success
        (folder,) = [p for p in (settings.DBT_PROJECT_DIR / "target").iterdir()
                     if p.is_dir() and f"-{result.run_id[:7]}-" in p.name]
        logs.append((folder / "dbt.log").read_text(errors="replace"))
    # Each build took only its day: the window reached the models without --vars.
    import duckdb

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        days = con.execute("SELECT event_date::VARCHAR, count(*) FROM main.features_churn GROUP BY 1 ORDER BY 1").fetchall()
    assert days == [("2026-01-02", 40), ("2026-01-03", 40)]
    # The old --vars made dbt drop its parse state at every build; the window variables do not.
    # (The profile's hash may still differ from the state another process left: not asserted.)
    for log in logs:
        assert "config vars, config profile, or config target have changed" not in log
