"""The drift_report asset on a real DuckDB file and a real Dagster instance (issue 7 #16, #17):
one threshold for the HTML and the check, and one check result per day."""
import datetime as dt
import re

import dagster as dg
import duckdb
import pytest

from churn_features import feature_frame, write_features
from mlops_assets import settings
from mlops_assets.chain import handoffs
from mlops_assets.training import data

TRAIN_DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(12)]
CALM, DRIFTED = dt.date(2026, 1, 13), dt.date(2026, 1, 14)


def html_dataset_verdict(path) -> tuple[float, bool]:
    """(threshold, drift detected) as the Evidently HTML shows its dataset-drift test."""
    m = re.search(r'"title": "Share of Drifted Columns: Less ([0-9.]+)", "description": "[^"]*", "state": "(\w+)"',
                  open(path, encoding="utf-8").read())
    assert m, f"no dataset-drift test in {path}"
    return float(m.group(1)), m.group(2) == "fail"


@pytest.fixture
def churn(churn):
    assert churn.thresholds.drift_share == 0.3
    return churn


def test_drift_check_per_day_agrees_with_the_html(churn):
    from mlops_assets.chain.drift import build_drift_report
    from mlops_assets.chain.retrain import latest_drift
    from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource

    # 7 of 19 features shifted: a share of ~0.37, between the use case's 0.3 and Evidently's default 0.5
    shifted = frozenset(churn.features.numeric[:5] + churn.features.categorical[:2])
    con = duckdb.connect(str(settings.duckdb_path()))
    write_features(con, churn, feature_frame(churn, TRAIN_DAYS, rows_per_day=250, seed=1))
    frame, _ = data.build_frame(con, churn)
    data.write_frame(con, churn, frame)
    write_features(con, churn, feature_frame(churn, [CALM], 800, seed=2), append=True)
    write_features(con, churn, feature_frame(churn, [DRIFTED], 800, seed=3, shifted=shifted), append=True)
    con.close()

    instance = dg.DagsterInstance.get()
    asset = build_drift_report(churn)
    warehouse = DuckDBWarehouse(database=str(settings.duckdb_path()))
    for day in (CALM, DRIFTED):
        assert dg.materialize([asset], instance=instance, partition_key=day.isoformat(),
                              resources={"warehouse": warehouse, "mlflow": MlflowResource.from_settings()}).success

    check_key = dg.AssetCheckKey(asset.key, handoffs.DRIFT_CHECK)
    history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
    by_day = {r.partition: r.evaluation for r in history}
    assert sorted(by_day) == [CALM.isoformat(), DRIFTED.isoformat()]  # one result per day, tied to it

    for day in (CALM, DRIFTED):
        threshold, html_drift = html_dataset_verdict(
            settings.drift_report_path(churn.name).with_name(f"drift_report_{day}.html"))
        evaluation = by_day[day.isoformat()]
        assert threshold == churn.thresholds.drift_share
        assert html_drift == (not evaluation.passed), day
    drifted = by_day[DRIFTED.isoformat()]
    assert 0.3 <= drifted.metadata[handoffs.DRIFT_SHARE].value < 0.5
    assert not drifted.passed  # Evidently's default 0.5 would have called this day clean

    # the retrain sensor reads the newest day's check result
    state = latest_drift(instance, churn)
    assert (state.day, state.flagged) == (DRIFTED.isoformat(), True)
