"""Issue 16 item 6: a run that loads both the landing rows and their labels counted the labels
"without a row in raw" before raw was loaded (the demo said 99,600; the true figure was 0)."""
import datetime as dt

import dagster as dg

from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D1 = dt.date(2026, 1, 1)


def test_labels_loaded_in_the_same_run_as_their_rows_all_have_rows(churn, data_dir):
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.labels import build_labels_asset
    from mlops_assets.chain.resources import DuckDBWarehouse

    # Rows of two days without their target, and the labels of both (as the demo writes them).
    write_days(churn.landing.path(), day_range(D1, 2), SimulationConfig(rows_per_day=40),
               label_folder=churn.labels.path(), label_delay_days=1, as_of=D1 + dt.timedelta(days=2))
    raw, labels_asset = build_raw_asset(churn), build_labels_asset(churn)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([labels_asset, raw], instance=instance, partition_key=D1.isoformat(),
                            resources={"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))})
    assert result.success
    done = [e.asset_key for e in result.get_asset_materialization_events()]
    assert done == [raw.key, labels_asset.key]  # raw first: the labels are counted against it
    md = result.asset_materializations_for_node(labels_asset.op.name)[0].metadata
    assert md[handoffs.ROW_COUNT].value == 40
    assert md[handoffs.LABELS_WITHOUT_ROWS].value == 0
    assert md[handoffs.LABEL_COVERAGE].value == 1.0
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if "have no row in" in e.user_message]
    assert warnings == []
