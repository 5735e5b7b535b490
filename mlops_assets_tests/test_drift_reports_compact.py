"""Drift reports stay small: MLflow keeps each day's Evidently snapshot (gzip-compressed JSON),
at most 0.5 MB per use case and day, which renders back into Evidently's HTML on demand with
the same verdict as the check; the dated local HTML shares Evidently's JavaScript instead of
embedding 4 MB of it; and dated reports older than MLOPS_REPORT_RETENTION_DAYS are deleted."""
import datetime as dt
import re

import dagster as dg
import duckdb
import pytest

from churn_features import feature_frame, write_features
from mlops_assets import settings
from mlops_assets.chain import handoffs
from mlops_assets.chain.lineage import key
from mlops_assets.training import data

TRAIN_DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(12)]
REPORT_DAYS = [dt.date(2026, 1, 13) + dt.timedelta(days=i) for i in range(3)]
BUDGET = 0.5 * 1024 * 1024
VERDICT = r'"title": "Share of Drifted Columns: Less ([0-9.]+)", "description": "[^"]*", "state": "(\w+)"'


def _tree_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def test_drift_reports_are_compact_render_on_demand_and_are_pruned(churn, monkeypatch):
    import mlflow

    from mlops_assets.chain.drift import build_drift_report
    from mlops_assets.monitoring.drift import render_report
    from mlops_assets.chain.resources import DuckDBWarehouse, MlflowResource

    monkeypatch.setenv(settings.REPORT_RETENTION_DAYS_ENV, "2")
    shifted = frozenset(churn.features.numeric[:5] + churn.features.categorical[:2])
    con = duckdb.connect(str(settings.duckdb_path()))
    write_features(con, churn, feature_frame(churn, TRAIN_DAYS, rows_per_day=500, seed=1))
    frame, _ = data.build_frame(con, churn)
    data.write_frame(con, churn, frame)
    for i, day in enumerate(REPORT_DAYS):
        write_features(con, churn, feature_frame(churn, [day], 500, seed=2 + i, shifted=shifted if i == 1 else frozenset()),
                       append=True)
    con.close()

    instance = dg.DagsterInstance.get()
    asset = build_drift_report(churn)
    resources = {"warehouse": DuckDBWarehouse(database=str(settings.duckdb_path())),
                 "mlflow": MlflowResource.from_settings()}
    artifacts = settings.mlflow_dir() / "artifacts"
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    for day in REPORT_DAYS:
        before = _tree_bytes(artifacts)
        assert dg.materialize([asset], instance=instance, partition_key=day.isoformat(), resources=resources).success
        grown = _tree_bytes(artifacts) - before
        assert grown <= BUDGET, f"{day}: MLflow artifacts grew by {grown / 1e6:.2f} MB"

        (rec,) = instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=asset.key, asset_partitions=[day.isoformat()]), limit=1).records
        md = rec.asset_materialization.metadata
        run_id = md["report_url"].value.split("/runs/")[1].split("/")[0]
        local = client.download_artifacts(run_id, f"drift/drift_report_{day}.json.gz")
        html = render_report(local)
        threshold, state = re.search(VERDICT, html).groups()
        assert float(threshold) == churn.thresholds.drift_share
        assert (state == "fail") == md[handoffs.DRIFT_FLAGGED].value, day
        assert len(html) > 3_000_000  # self-contained: Evidently's JavaScript is inside

    folder = settings.drift_report_path(churn.name).parent
    dated = sorted(p.name for p in folder.glob("drift_report_*.html"))
    # two days kept (MLOPS_REPORT_RETENTION_DAYS=2): the first day's report was deleted
    assert dated == [f"drift_report_{d}.html" for d in REPORT_DAYS[1:]]
    for name in dated:  # the data of one report; Evidently's JavaScript is shared, once
        assert (folder / name).stat().st_size < 2_000_000
        assert "../_evidently/evidently-" in (folder / name).read_text()
    assert (settings.evidently_lib_dir()).is_dir()
    assert key(churn, "drift_report") == asset.key


def test_retention_setting_is_checked(monkeypatch):
    monkeypatch.setenv(settings.REPORT_RETENTION_DAYS_ENV, "ninety")
    with pytest.raises(settings.SettingsError, match=settings.REPORT_RETENTION_DAYS_ENV):
        settings.report_retention_days()
    monkeypatch.setenv(settings.REPORT_RETENTION_DAYS_ENV, "0")
    assert settings.report_retention_days() is None
    monkeypatch.delenv(settings.REPORT_RETENTION_DAYS_ENV)
    assert settings.report_retention_days() == 90
