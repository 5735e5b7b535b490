"""The shipped regression demo use case (demand) end to end on real DuckDB, dbt, MLflow and
Evidently, the way `mlops-assets demo` runs it: a month of sales lands without its units sold
(their label files come a week later), the history is loaded, a regressor is trained, gated on R²
and promoted, the days whose labels are still to come are scored; then two days are replayed
through the sensors, their label files arrive, and the performance report of the scored days
holds the figures recomputed here from the stored predictions and labels."""
import datetime as dt

import dagster as dg
import pytest

pytestmark = pytest.mark.integration

START = dt.date(2026, 1, 1)
HISTORY_DAYS = 30
DELAY = 7


def test_demand_chain_scores_unlabelled_days_and_reports_performance_when_labels_arrive(data_dir, dbt_manifest):
    import duckdb
    import mlflow
    from sklearn.metrics import mean_absolute_error, r2_score

    from mlops_assets import orchestrate, settings
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.lineage import BATCH_PREDICTIONS, CHAMPION, EVALUATION, PERFORMANCE, key
    from mlops_assets.definitions import build_defs
    from mlops_assets.simulate import demand
    from mlops_assets.use_cases.loader import get_use_case

    uc = get_use_case("demand")
    assert uc.task == "regression"
    cfg = demand.SimulationConfig()
    history = demand.day_range(START, HISTORY_DAYS)
    demand.write_days(uc.landing.path(), history, cfg, label_folder=uc.labels.path(), label_delay_days=DELAY)
    orchestrate.age_files([*uc.landing.path().iterdir(), *uc.labels.path().iterdir()], 10)
    scored_days = history[-DELAY:]  # labels still to come: scored without them

    defs = build_defs()
    lines: list[str] = []
    assert orchestrate.run_pipeline(only=["demand"], log=lines.append, score_days=DELAY, defs=defs), "\n".join(lines)
    instance = dg.DagsterInstance.get()

    def metadata(asset, day=None):
        return orchestrate._latest_meta(instance, key(uc, asset), day)

    evaluation = metadata(EVALUATION)
    assert evaluation is not None and float(evaluation["holdout_r2"]) > 0.6, evaluation
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    champion = client.get_model_version_by_alias(uc.registered_model_name, "champion").version
    assert str(metadata(CHAMPION)["champion_version"]) == str(champion)

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        per_day = dict(con.execute(
            "SELECT CAST(event_ts AS DATE), count(*) FROM predictions.demand GROUP BY 1").fetchall())
        unlabelled = con.execute(
            "SELECT count(*) FROM main.features_demand WHERE units_sold IS NULL").fetchone()[0]
    assert per_day == {d: demand.rows_per_day(cfg) for d in scored_days}
    assert unlabelled == len(scored_days) * demand.rows_per_day(cfg)  # scored before any label came

    # Two more days arrive as events; with them the label files of the first two scored days.
    replayed = demand.day_range(history[-1] + dt.timedelta(days=1), 2)
    report = orchestrate.replay(replayed, cfg, use_case="demand", label_delay_days=DELAY, defs=defs,
                                progress=lines.append)
    assert report.ok, report.problems
    labelled_days = scored_days[:2]
    for day in labelled_days:
        assert any(line.startswith(f"labels for {day} -> R² ") for line in lines), lines[-10:]

    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        for day in labelled_days:
            joined = con.execute(
                "SELECT p.score, l.units_sold FROM predictions.demand p JOIN labels.demand l "
                "ON p.item_id = l.item_id AND p.event_ts = l.event_ts WHERE CAST(p.event_ts AS DATE) = ?",
                [day]).fetchdf()
            assert len(joined) == demand.rows_per_day(cfg)
            perf = metadata(PERFORMANCE, day.isoformat())
            assert perf[handoffs.PERF_EVALUATED] and perf[handoffs.PERF_METRIC] == "r2", perf
            expected = r2_score(joined["units_sold"], joined["score"])
            assert float(perf[handoffs.PERF_VALUE]) == pytest.approx(expected, abs=1e-4)
            if "mae" in perf:
                assert float(perf["mae"]) == pytest.approx(mean_absolute_error(joined["units_sold"], joined["score"]),
                                                           abs=1e-3)
    # the replayed days were scored by the champion too
    for day in replayed:
        assert handoffs.read_scored_version(metadata(BATCH_PREDICTIONS, day.isoformat())) == str(champion)
