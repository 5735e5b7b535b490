"""Values handed between assets are written and read through the same constants (a rename of a
key breaks these tests), and the metadata people read is typed: tables with schemas, column
schemas of the tables, the drift HTML as an MLflow artifact behind a link. Real DuckDB files,
real Dagster materializations, a real MLflow store, real dbt."""
import datetime as dt

import dagster as dg
import duckdb
import pytest

from churn_features import feature_frame, write_features
from mlops_assets import settings
from mlops_assets.chain import handoffs
from mlops_assets.chain.lineage import BATCH_PREDICTIONS, RAW, key
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D0 = dt.date(2026, 1, 1)


def _warehouse():
    from mlops_assets.chain.resources import DuckDBWarehouse

    return DuckDBWarehouse(database=str(settings.duckdb_path()))


def _latest(instance, asset_key, partition):
    (rec,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1).records
    return rec.asset_materialization.metadata


def test_raw_writes_exactly_what_the_readers_read(churn):
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.landing_sensor import _loaded_fingerprints
    from mlops_assets.chain.retrain import new_labelled_rows

    written = write_days(churn.landing.path(), day_range(D0, 2), SimulationConfig(rows_per_day=40))
    instance = dg.DagsterInstance.get()
    raw = build_raw_asset(churn)
    for day in day_range(D0, 2):
        assert dg.materialize([raw], instance=instance, partition_key=day.isoformat(),
                              resources={"warehouse": _warehouse()}).success

    md = _latest(instance, key(churn, RAW), D0.isoformat())
    # the writer's keys are the readers' constants: renaming either side fails here
    assert {handoffs.RAW_LABELLED_ROWS, handoffs.RAW_ROWS_PER_DAY, handoffs.RAW_FILE_FINGERPRINTS,
            handoffs.RAW_FILES, handoffs.ROW_COUNT} <= set(md)
    assert handoffs.read_rows_per_day(md) == {D0.isoformat(): 40}
    assert handoffs.read_labelled_rows(md, D0.isoformat()) == 40
    fingerprints = handoffs.read_file_fingerprints(md)
    assert [fp.split("@")[0] for fp in fingerprints] == [str(written[0])]
    # ... and the sensors that read them see the loads
    assert _loaded_fingerprints(instance, key(churn, RAW), [D0]) == {D0: set(fingerprints)}
    assert new_labelled_rows(instance, churn, None) == 80
    assert new_labelled_rows(instance, churn, D0.isoformat()) == 40

    # tables for people: rows per day and files, each with a schema
    per_day = md[handoffs.RAW_ROWS_PER_DAY]
    assert isinstance(per_day, dg.TableMetadataValue)
    assert [c.name for c in per_day.schema.columns] == ["day", "rows", "labelled_rows"]
    files = md[handoffs.RAW_FILES]
    assert [(r.data["file"], r.data["size_bytes"]) for r in files.records] == [
        (written[0].name, written[0].stat().st_size)]
    # the column schema is the DuckDB table's
    con = duckdb.connect(str(settings.duckdb_path()), read_only=True)
    columns = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' "
                          "AND table_name = 'churn' ORDER BY ordinal_position").fetchall()
    con.close()
    schema = md["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == columns
    assert ("customer_id", "VARCHAR") in columns


def test_a_renamed_key_is_named_by_the_reader():
    md = handoffs.raw_metadata({"2026-01-01": 10}, {"2026-01-01": 8}, ["/x/churn_2026-01-01.csv@5:1"])
    assert handoffs.read_labelled_rows(md, "2026-01-01") == 8 and handoffs.read_rows_per_day(md) == {"2026-01-01": 10}
    renamed = {("file_versions" if k == handoffs.RAW_FILE_FINGERPRINTS else k): v for k, v in md.items()}
    with pytest.raises(handoffs.HandoffError, match=r"lacks metadata \['file_fingerprints'\]"):
        handoffs.read_file_fingerprints(renamed, "churn/raw for 2026-01-01")
    with pytest.raises(handoffs.HandoffError, match="not 'path@size:mtime_ns'"):
        handoffs.files_table(["no-version"])
    # the JSON mapping older loads wrote is still read
    assert handoffs.read_rows_per_day({handoffs.RAW_ROWS_PER_DAY: dg.MetadataValue.json({"d": 3})}) == {"d": 3}
    with pytest.raises(handoffs.HandoffError, match="lacks metadata \\['model_version'\\]"):
        handoffs.read_scored_version({"version": "3"})


def test_definitions_carry_owners_tags_and_code_versions(churn):
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.drift import build_drift_report
    from mlops_assets.chain.scoring import build_batch_predictions

    for asset, layer in ((build_raw_asset(churn), "ingest"), (build_drift_report(churn), "monitoring"),
                         (build_batch_predictions(churn), "scoring")):
        spec = next(iter(asset.specs))
        assert spec.owners == ["team:ml-platform"], spec.key
        assert spec.tags["layer"] == layer and spec.tags["use_case"] == "churn"
        assert spec.code_version and len(spec.code_version) == 12


def test_every_asset_of_the_chain_has_owners_and_tags(churn, dbt_manifest):
    from mlops_assets.definitions import build_defs

    graph = build_defs().resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.path[0] == "churn"]
    assert len(keys) == 12
    for k in keys:
        node = graph.get(k)
        assert "team:ml-platform" in node.owners, k
        assert node.tags.get("use_case") == "churn" and node.tags.get("layer"), k


def test_drift_report_is_an_mlflow_artifact_of_the_days_model_version(churn):
    import mlflow

    from mlops_assets.chain.drift import build_drift_report
    from mlops_assets.chain.resources import MlflowResource
    from mlops_assets.training import data

    days = day_range(D0, 10)
    con = duckdb.connect(str(settings.duckdb_path()))
    write_features(con, churn, feature_frame(churn, days, rows_per_day=60, seed=1))
    frame, _ = data.build_frame(con, churn)
    data.write_frame(con, churn, frame)
    con.close()

    instance = dg.DagsterInstance.get()
    day = days[-1].isoformat()
    # the day was scored by version 7: the report belongs to it
    instance.report_runless_asset_event(dg.AssetMaterialization(
        key(churn, BATCH_PREDICTIONS), partition=day, metadata={handoffs.SCORED_MODEL_VERSION: "7"}))
    resources = {"warehouse": _warehouse(), "mlflow": MlflowResource.from_settings()}
    assert dg.materialize([build_drift_report(churn)], instance=instance, partition_key=day, resources=resources).success

    md = _latest(instance, key(churn, "drift_report"), day)
    assert md["model_version"].value == "7"
    url = md["report_url"]
    # MLflow keeps Evidently's snapshot (rendered as HTML on demand), not a 4 MB HTML per day
    assert isinstance(url, dg.UrlMetadataValue) and url.value.endswith(f"/artifacts/drift/drift_report_{day}.json.gz")
    assert md["mlflow_model_version_url"].value.endswith(f"/#/models/{churn.registered_model_name}/versions/7")
    assert md["report"].value.endswith(f"drift_report_{day}.html")  # the local copy stays
    per_column = md["per_column"]
    assert isinstance(per_column, dg.TableMetadataValue)
    assert {r.data["column"] for r in per_column.records} == set(churn.features.all)

    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    run_id = url.value.split("/runs/")[1].split("/")[0]
    run = client.get_run(run_id)
    assert run.data.tags["mlops.model_version"] == "7" and run.data.tags["mlops.drift_day"] == day
    assert run.data.tags["mlops.model_name"] == churn.registered_model_name
    assert [a.path for a in client.list_artifacts(run_id, "drift")] == [f"drift/drift_report_{day}.json.gz"]
    assert run.data.metrics["drift_share"] == pytest.approx(md[handoffs.DRIFT_SHARE].value, abs=1e-4)

    # a day nobody scored and no champion: said so, still logged
    other = days[-2].isoformat()
    assert dg.materialize([build_drift_report(churn)], instance=instance, partition_key=other, resources=resources).success
    md = _latest(instance, key(churn, "drift_report"), other)
    assert (md["model_version"].value, md["model_version_source"].value) == ("none", "no model registered yet")
    assert "mlflow_model_version_url" not in md


@pytest.mark.integration
def test_dbt_models_carry_the_built_tables_column_schema(churn, dbt_manifest):
    from mlops_assets.definitions import build_defs

    write_days(churn.landing.path(), [D0], SimulationConfig(rows_per_day=30))
    defs = build_defs()
    instance = dg.DagsterInstance.get()
    keys = [key(churn, RAW), key(churn, "stg_churn"), key(churn, "features_churn")]
    result = defs.resolve_job_def("churn_daily").execute_in_process(
        instance=instance, asset_selection=keys, partition_key=D0.isoformat())
    assert result.success
    md = _latest(instance, key(churn, "features_churn"), D0.isoformat())
    con = duckdb.connect(str(settings.duckdb_path()), read_only=True)
    columns = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
                          "AND table_name = 'features_churn' ORDER BY ordinal_position").fetchall()
    con.close()
    assert [(c.name, c.type) for c in md["dagster/column_schema"].value.columns] == columns
    spec = defs.resolve_assets_def(key(churn, "features_churn")).specs_by_key[key(churn, "features_churn")]
    assert "team:ml-platform" in spec.owners and spec.tags["layer"] == "features"
    assert spec.code_version  # dagster-dbt: the model file's checksum
