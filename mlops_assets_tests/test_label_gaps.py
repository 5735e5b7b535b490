"""Label files reach the "new data" retrain trigger and, without a dbt model, training.
Real DuckDB, real `dg.materialize` of the raw and labels assets on a real instance."""
import datetime as dt
import os
import time

import dagster as dg
import duckdb
import pytest

from mlops_assets.use_cases.config import FeaturesConfig, LabelsConfig, LandingConfig, RetrainConfig

HEADER = "customer_id,event_ts,churned"


def _write(path, text, age_s=120):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def _csv(path, header, lines, age_s=120):
    return _write(path, header + "\n" + "\n".join(lines) + "\n", age_s)


def test_new_data_trigger_counts_labels_from_label_files(churn, data_dir):
    """Rows land unlabelled; their labels arrive in label files after raw loaded. The trigger
    counts them (it counted raw's own labels only, so it never fired), each day once, only
    days after the training window."""
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.labels import build_labels_asset
    from mlops_assets.chain.retrain import build_retrain_sensor, new_labelled_rows
    from mlops_assets.chain.resources import DuckDBWarehouse

    instance = dg.DagsterInstance.get()
    resources = {"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))}
    uc = churn.model_copy(update={"retrain": RetrainConfig(min_new_rows=5, cooldown_minutes=0, on_drift=False)})
    raw, lab = build_raw_asset(uc), build_labels_asset(uc)

    def run(asset, day):
        dg.materialize([asset], partition_key=day, instance=instance, resources=resources)

    instance.report_runless_asset_event(dg.AssetMaterialization(  # a model trained up to Jan 1
        asset_key=dg.AssetKey(["churn", "training_set"]), metadata={
            handoffs.TRAIN_START: "2025-12-01", handoffs.TRAIN_END: "2025-12-25",
            handoffs.HOLDOUT_START: "2025-12-26", handoffs.HOLDOUT_END: "2026-01-01", handoffs.TRAINING_DIGEST: "d"}))
    rows = [f"C{i},2026-01-0{d} 1{i}:00:00," for d in (1, 2, 3) for i in range(4)]
    rows[4] = "C0,2026-01-02 10:00:00,1"  # one row of Jan 2 carries its label
    _csv(uc.landing.path() / "rows.csv", HEADER, rows)
    for day in ("2026-01-01", "2026-01-02"):
        run(raw, day)
    assert new_labelled_rows(instance, uc, "2026-01-01") == 1

    # labels arrive later: 3 for Jan 2 (one relabels the carried one), 4 for Jan 1 (trained on already)
    _csv(uc.labels.path() / "l_0102.csv", HEADER,
         ["C0,2026-01-02 10:00:00,0", "C1,2026-01-02 11:00:00,1", "C2,2026-01-02 12:00:00,0"])
    _csv(uc.labels.path() / "l_0101.csv", HEADER, [f"C{i},2026-01-01 1{i}:00:00,1" for i in range(4)])
    run(lab, "2026-01-02")
    run(lab, "2026-01-01")
    assert new_labelled_rows(instance, uc, "2026-01-01") == 3
    assert new_labelled_rows(instance, uc, None) == 7  # Jan 1's 4 count without a training window
    run(raw, "2026-01-02")  # a reload after the labels counts the same rows, not twice
    run(lab, "2026-01-02")
    assert new_labelled_rows(instance, uc, "2026-01-01") == 3
    assert isinstance(build_retrain_sensor(uc)(dg.build_sensor_context(instance=instance)), dg.SkipReason)

    # labels for a day whose rows have not landed yet count once the rows land
    _csv(uc.labels.path() / "l_0103.csv", HEADER, [f"C{i},2026-01-03 1{i}:00:00,1" for i in range(3)])
    run(lab, "2026-01-03")
    assert new_labelled_rows(instance, uc, "2026-01-01") == 3
    run(raw, "2026-01-03")
    assert new_labelled_rows(instance, uc, "2026-01-01") == 6
    fired = build_retrain_sensor(uc)(dg.build_sensor_context(instance=instance))
    assert isinstance(fired, dg.RunRequest) and fired.tags["mlops/trigger"] == "new_rows"
    assert "6 new labelled rows" in fired.tags["mlops/trigger_reason"]


def test_raw_load_older_than_the_label_count_still_reads_its_own_labels(churn, data_dir):
    """A raw materialization recorded before raw wrote labelled_rows_per_day counts its own
    labelled rows (as before); a labels materialization without the figure is a loud error."""
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.retrain import new_labelled_rows

    instance = dg.DagsterInstance.get()
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(["churn", "raw"]), partition="2026-01-05", metadata={"labelled_rows": 40}))
    assert new_labelled_rows(instance, churn, "2026-01-01") == 40
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(["churn", "labels"]), partition="2026-01-05", metadata={}))
    with pytest.raises(handoffs.HandoffError, match=r"churn/labels for 2026-01-05 lacks metadata.*labelled_rows_per_day"):
        new_labelled_rows(instance, churn, "2026-01-01")


def _no_dbt_use_case(churn):
    """A tiny use case on the raw table (features.dbt_model: null) with a label folder."""
    return churn.model_copy(update={
        "name": "tiny", "landing": LandingConfig(folder="tiny"), "labels": LabelsConfig(folder="tiny_labels"),
        "features": FeaturesConfig(dbt_model=None, numeric=["x1", "x2"], categorical=[]),
        "split": churn.split.model_copy(update={"holdout_days": 2, "training_window_days": None})})


def test_without_a_dbt_model_training_takes_labels_from_label_files(churn, data_dir):
    """Rows land with empty targets, labels only in label files: the training set gets them
    (it read raw's target, so it saw no labelled row at all)."""
    import numpy as np

    from mlops_assets.ingest import labels, landing
    from mlops_assets.training.data import build_frame

    uc = _no_dbt_use_case(churn)
    rng = np.random.default_rng(0)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=d) for d in range(6)]
    rows, truth = [], {}
    for d in days:
        for i in range(15):
            ts = f"{d} 10:00:{i:02d}"
            rows.append(f"{i},{ts},{rng.normal():.4f},{rng.normal():.4f},")  # numeric entity, no target
            truth[(str(i), ts)] = int(rng.integers(0, 2))
    truth[("0", f"{days[0]} 10:00:00")] = 1
    _csv(uc.landing.path() / "rows.csv", "customer_id,event_ts,x1,x2,churned", rows)
    # the last day's labels have not arrived: training ends at the newest labelled day
    _csv(uc.labels.path() / "labels.csv", HEADER,
         [f"{e},{ts},{y}" for (e, ts), y in truth.items() if not ts.startswith(str(days[-1]))])
    con = duckdb.connect(str(data_dir / "w.duckdb"))
    start, end = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 7)
    landing.load_window(con, uc, start, end)
    with pytest.raises(ValueError, match=r"raw\.tiny has 0 labelled row"):  # before the label files load
        build_frame(con, uc)
    labels.load_labels_window(con, uc, start, end)
    frame, info = build_frame(con, uc)
    assert len(frame) == 5 * 15 and frame[uc.target_column].notna().all()
    got = {(str(e), str(ts)): int(y) for e, ts, y in
           frame[[uc.entity_column, uc.timestamp_column, uc.target_column]].itertuples(index=False)}
    assert got == {k: v for k, v in truth.items() if not k[1].startswith(str(days[-1]))}
    assert info.holdout_end == str(days[-2])
    # a row's own target still counts where no label file labels it; the label file wins where both do
    con.execute("UPDATE raw.tiny SET churned = 0 WHERE CAST(event_ts AS DATE) = ?", [days[-1]])
    con.execute("UPDATE raw.tiny SET churned = 0 WHERE customer_id = 0")
    frame, info = build_frame(con, uc)
    assert len(frame) == 6 * 15 and info.holdout_end == str(days[-1])
    first = frame[(frame[uc.entity_column] == 0) & (frame[uc.timestamp_column] == dt.datetime(2026, 1, 1, 10))]
    assert first[uc.target_column].tolist() == [1]
    con.close()


def test_without_a_dbt_model_the_training_set_depends_on_the_labels(churn, data_dir):
    from mlops_assets.chain.training import build_training_set

    deps = {k.to_user_string() for k in build_training_set(_no_dbt_use_case(churn)).dependency_keys}
    assert "tiny/labels" in deps
    assert "churn/labels" not in {k.to_user_string() for k in build_training_set(churn).dependency_keys}


def test_label_days_outside_the_landing_days_load_as_at_most_two_ranges():
    from mlops_assets.orchestrate import ranges_outside

    d = [dt.date(2026, 1, i) for i in (1, 2, 5, 9, 10, 12)]
    assert ranges_outside(d, (d[2], d[3])) == [(d[0], d[1]), (d[4], d[5])]
    assert ranges_outside(d, (d[0], d[5])) == []
    assert ranges_outside(d, None) == [(d[0], d[5])]
    assert ranges_outside([], None) == []


def test_run_pipeline_loads_label_files_of_days_without_landing_rows(churn, data_dir, dbt_manifest):
    """Label files for days no landing file holds (e.g. landing files archived after they
    loaded) are loaded by `run_pipeline` (the demo), not only by the label sensor."""
    from mlops_assets.orchestrate import label_days, run_pipeline

    _csv(churn.labels.path() / "late.csv", HEADER, ["C1,2026-01-02 10:00:00,1", "C2,2026-01-04 10:00:00,0"])
    _csv(churn.labels.path() / "bad.csv", "customer_id,churned", ["C1,1"])  # named by the asset's check
    lines: list[str] = []
    assert label_days(churn, dt.date(2026, 1, 1), dt.date(2026, 1, 3), lines.append) == [dt.date(2026, 1, 2)]
    assert any("bad.csv" in line for line in lines)
    run_pipeline(only=["churn"], log=lines.append)
    assert any("label files hold days 2026-01-02..2026-01-04" in line for line in lines), lines
    from mlops_assets import settings

    con = duckdb.connect(str(settings.duckdb_path()), read_only=True)
    assert con.execute("SELECT customer_id, churned FROM labels.churn ORDER BY 1").fetchall() == [("C1", 1), ("C2", 0)]
    con.close()
    done = dg.DagsterInstance.get().get_materialized_partitions(dg.AssetKey(["churn", "labels"]))
    assert {"2026-01-02", "2026-01-03", "2026-01-04"} <= done
