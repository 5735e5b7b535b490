"""End to end with the real daemon and webserver: `dagster dev` on a loopback port, short
sensor intervals, a new day dropped into the landing zone; the loop must carry it through
raw -> dbt features -> drift report on its own, within a bound; then one label file for that
day arrives and the label sensor and the automation carry it to churn/labels and the features."""
import datetime as dt
import json
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.instance import home as instance_home
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days
from mlops_assets_tests.dev_server import free_port, start_dagster_dev, stop_group, wait_for, webserver_up

pytestmark = pytest.mark.integration
D0 = dt.date(2026, 1, 1)
STARTUP_BOUND_S = 180
LOOP_BOUND_S = 480


LINEAGE_QUERY = """{ assetNodes { assetKey { path } groupName dependencyKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }"""


def _assert_ui_lineage(port: int) -> None:
    """What the UI's asset graph shows, asked of the running webserver's GraphQL API."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                     data=json.dumps({"query": LINEAGE_QUERY}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        nodes = json.load(r)["data"]["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    chain = ["raw", "stg_churn", "features_churn", "training_set", "candidate_model", "model_evaluation",
             "champion_model", "batch_predictions", "drift_report"]
    assert {f"churn/{a}" for a in chain} <= set(by_key)
    assert all(by_key[f"churn/{a}"]["groupName"] == "churn" for a in chain)
    deps = lambda a: {"/".join(d["path"]) for d in by_key[f"churn/{a}"]["dependencyKeys"]}  # noqa: E731
    assert "churn/raw" in deps("stg_churn") and "churn/features_churn" in deps("training_set")
    assert "churn/model_evaluation" in deps("champion_model")
    checks = {c["name"]: c["blocking"] for c in by_key["churn/model_evaluation"]["assetChecksOrError"]["checks"]}
    assert checks.get("meets_minimum_quality") is True and checks.get("no_regression_vs_champion") is True
    dbt_checks = by_key["churn/stg_churn"]["assetChecksOrError"]["checks"]
    assert any(c["name"].startswith("not_null_") for c in dbt_checks)


def _latest(instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: dt.date):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day.isoformat()]), limit=1).records
    return records[0] if records else None


def _write_label_file(label_folder: Path, landing_folder: Path, day: dt.date, rows: int) -> int:
    """Labels for the first `rows` rows of the day's batch file, the carried label flipped for
    every other one (the label file wins); written under a temporary name, then renamed. Returns
    how many labels differ from the row's own target."""
    import pandas as pd

    batch = pd.read_csv(landing_folder / f"churn_{day}.csv", dtype=str).head(rows)
    flip = [i % 2 == 0 for i in range(len(batch))]
    batch["churned"] = [str(1 - int(y)) if f else y for y, f in zip(batch["churned"], flip)]
    label_folder.mkdir(parents=True, exist_ok=True)
    tmp = label_folder / f".churn_labels_{day}.csv.tmp"
    batch[["customer_id", "event_ts", "churned"]].to_csv(tmp, index=False)
    tmp.rename(label_folder / f"churn_labels_{day}.csv")
    return sum(flip)


def test_a_landed_day_flows_to_its_drift_report(data_dir, dbt_manifest, tmp_path):
    from mlops_assets.orchestrate import run_pipeline

    folder = data_dir / "landing" / "churn"
    write_days(folder, day_range(D0, 12), SimulationConfig(rows_per_day=200))
    (data_dir / "dagster_home" / "dagster.yaml").write_text(instance_home.DAGSTER_YAML)
    assert run_pipeline(only=["churn"])  # history and a champion, as after the Quickstart

    port, log = free_port(), tmp_path / "dagster_dev.log"
    proc = start_dagster_dev(port, log, {"MLOPS_SENSOR_INTERVAL_S": "3", "MLOPS_AUTOMATION_INTERVAL_S": "3",
                                          "MLOPS_RETRAIN_SENSOR_INTERVAL_S": "5"})
    try:
        wait_for(lambda: webserver_up(port), STARTUP_BOUND_S, "the webserver", proc, log)
        _assert_ui_lineage(port)
        new_day = D0 + dt.timedelta(days=12)
        write_days(folder, [new_day], SimulationConfig(rows_per_day=200))
        landed = time.monotonic()

        instance = dg.DagsterInstance.get()
        drift_key = dg.AssetKey(["churn", "drift_report"])
        wait_for(lambda: new_day.isoformat() in instance.get_materialized_partitions(drift_key),
              LOOP_BOUND_S, f"the drift report of {new_day}", proc, log)
        print(f"file landed -> drift report: {time.monotonic() - landed:.0f}s")

        raw_runs = instance.get_runs(filters=dg.RunsFilter(tags={"mlops/trigger": "landing"}))
        assert [r.tags.get("dagster/partition") for r in raw_runs] == [new_day.isoformat()]
        assert new_day.isoformat() in instance.get_materialized_partitions(dg.AssetKey(["churn", "features_churn"]))
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=drift_key, asset_partitions=[new_day.isoformat()]), limit=1).records[0]
        assert record.asset_materialization.metadata["current_rows"].value == 200

        # One label file for that day arrives (labels that came after the rows): the label sensor
        # loads it into churn/labels and the automation rebuilds that day's features.
        relabelled = _write_label_file(data_dir / "landing" / "churn_labels", folder, new_day, rows=20)
        labelled = time.monotonic()
        labels_key, features_key = dg.AssetKey(["churn", "labels"]), dg.AssetKey(["churn", "features_churn"])
        label_record = wait_for(lambda: _latest(instance, labels_key, new_day), LOOP_BOUND_S,
                             f"churn/labels of {new_day}", proc, log)
        metadata = label_record.asset_materialization.metadata
        assert (metadata["dagster/row_count"].value, metadata["labels_overriding_raw_target"].value) == (20, relabelled)
        assert metadata["labels_without_rows"].value == 0
        wait_for(lambda: (_latest(instance, features_key, new_day) or label_record).storage_id > label_record.storage_id,
              LOOP_BOUND_S, f"features_churn of {new_day} rebuilt after its labels", proc, log)
        print(f"label file landed -> labels and features: {time.monotonic() - labelled:.0f}s")
        label_runs = instance.get_runs(filters=dg.RunsFilter(tags={"mlops/trigger": "labels"}))
        assert [r.tags.get("dagster/partition") for r in label_runs] == [new_day.isoformat()]
    finally:
        stop_group(proc)
    assert proc.poll() is not None
