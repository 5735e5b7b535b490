"""The instance's concurrency settings per profile (runs and the warehouse pool), accepted by
Dagster's own instance schema, and the pool on exactly the assets that write the warehouse."""
import re

import dagster as dg
import pytest
import yaml

from mlops_assets import settings
from mlops_assets.instance import home as instance_home
from mlops_assets.instance import concurrency
from mlops_assets.instance.concurrency import WAREHOUSE_POOL

# The assets whose step opens the warehouse for writing (warehouse.connect() / write_lock()).
WRITERS = {"raw", "labels", "stg_churn", "features_churn", "training_set", "batch_predictions"}


def _instance_with(tmp_path, yaml_text: str) -> dg.DagsterInstance:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml_text)
    return dg.DagsterInstance.from_config(str(home))  # validates against Dagster's instance schema


@pytest.mark.parametrize("profile", ["embedded", "shared"])
def test_the_concurrency_block_is_what_dagster_reads(profile, tmp_path):
    text = concurrency.instance_concurrency_yaml(profile)
    parsed = yaml.safe_load(text)
    assert list(parsed) == ["concurrency"]
    lim = concurrency.limits(profile)
    with _instance_with(tmp_path, text) as instance:
        config = instance.get_concurrency_config()
    assert config.run_queue_config.max_concurrent_runs == lim.max_concurrent_runs > 1
    assert config.run_queue_config.tag_concurrency_limits == [{"key": "dagster/backfill", "limit": lim.backfill_runs}]
    assert lim.backfill_runs < lim.max_concurrent_runs  # a landed file never waits behind a backfill
    assert config.pool_config.default_pool_limit == lim.warehouse_writers
    assert config.pool_config.pool_granularity.value == "op"
    assert config.run_queue_config.op_concurrency_slot_buffer == config.pool_config.op_granularity_run_buffer == 1
    # settings.py writes this block verbatim into the profile's dagster.yaml.
    assert text in instance_home.dagster_yaml(profile)


def test_one_duckdb_writer_and_wider_pools_on_postgres():
    assert concurrency.limits("embedded").warehouse_writers == 1
    assert concurrency.limits("shared").warehouse_writers > 1


def test_an_unknown_profile_is_named():
    with pytest.raises(ValueError, match=r"'laptop'.*MLOPS_PROFILE.*embedded, shared"):
        concurrency.instance_concurrency_yaml("laptop")


def test_apply_pool_limits_sets_the_pool_and_keeps_a_users_own_limit(tmp_path):
    with _instance_with(tmp_path, instance_home.dagster_yaml("embedded")) as instance:
        assert concurrency.apply_pool_limits(instance, "embedded") == 1
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
        # A limit set in the UI or with `dagster instance concurrency set` is the user's choice.
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 2)
        said = []
        assert concurrency.apply_pool_limits(instance, "embedded", log=said.append) is None
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 2
        assert "keeping the limit 2" in said[0]


def test_the_warehouse_writers_and_only_they_are_in_the_pool(data_dir, dbt_manifest):
    from mlops_assets.definitions import build_defs

    pools = {}
    for assets_def in build_defs().assets:
        for asset_key in assets_def.keys:
            if asset_key.path[0] == "churn":
                pools[asset_key.path[-1]] = assets_def.op.pools
    assert {name for name, p in pools.items() if p} == WRITERS
    assert all(pools[name] == {WAREHOUSE_POOL} for name in WRITERS)


def test_every_defs_file_that_writes_the_warehouse_puts_its_asset_in_the_pool():
    """A new writer (an asset opening the warehouse without read_only=True) without the pool
    would let two DuckDB writers run at once and wait on the file lock instead."""
    writes = re.compile(r"warehouse\.(connect\((?!read_only=True)|write_lock\()")
    for path in sorted((settings.PACKAGE_DIR / "defs").rglob("*.py")):
        text = path.read_text()
        n_writers = len(writes.findall(text))
        if n_writers:
            assert text.count("pool=WAREHOUSE_POOL") >= 1, f"{path}: writes the warehouse, no pool={WAREHOUSE_POOL}"


def test_mlops_assets_prepare_gives_the_instance_its_pool_limit(data_dir, monkeypatch):
    from mlops_assets import cli

    monkeypatch.setattr(cli, "prepare", lambda: None)  # dbt parse: not what this test is about
    assert cli.main(["prepare"]) == 0
    yaml_text = (data_dir / "dagster_home" / "dagster.yaml").read_text()
    assert concurrency.instance_concurrency_yaml("embedded") in yaml_text
    with dg.DagsterInstance.get() as instance:
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == {WAREHOUSE_POOL: 1}


def test_a_writer_killed_mid_step_gives_its_pool_slot_back(tmp_path, monkeypatch):
    """A SIGKILLed run never frees the slot its writing step claimed; with one slot every later
    writer would wait for ever. Failing the dead run (what the CLI does before it runs anything)
    frees it, and the next writer runs."""
    import os
    import select
    import signal
    import subprocess
    import sys
    import textwrap

    from mlops_assets.instance.recovery import fail_dead_runs

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    instance_home.ensure_local_env()
    code = textwrap.dedent(f"""
        import time
        import dagster as dg
        from mlops_assets.orchestrate import execute

        @dg.asset(pool={WAREHOUSE_POOL!r})
        def writer():
            print("in step", flush=True)
            time.sleep(120)

        defs = dg.Definitions(assets=[writer], jobs=[dg.define_asset_job("writer_job", selection=[writer])])
        execute(defs, dg.DagsterInstance.get(), "writer_job")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert select.select([proc.stdout], [], [], 120)[0], "the writer never reached its step in 120 s"
        assert "in step" in proc.stdout.readline()
    finally:  # killed whatever happened: a failed start must not leave the step sleeping
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        assert storage.get_concurrency_info(WAREHOUSE_POOL).active_slot_count == 1  # held by a dead run
        (dead,) = fail_dead_runs(instance, lambda _: None)
        assert storage.get_concurrency_info(WAREHOUSE_POOL).active_slot_count == 0
        assert dead not in storage.get_concurrency_run_ids()

        @dg.asset(pool=WAREHOUSE_POOL)
        def next_writer() -> None:
            pass

        assert dg.materialize([next_writer], instance=instance).success
