"""Unit tests of the monitoring rules: label coverage, the prediction-label join, performance
figures, the tolerance verdict, the performance retrain trigger, drift settings and the summary."""
import typing

import numpy as np
import pandas as pd
import pytest

from mlops_assets.monitoring import performance as perf
from mlops_assets.training.triggers import PerformanceDay, RetrainState, decide, failing_streak
from mlops_assets.use_cases.config import RetrainConfig, StatTest
from mlops_assets.use_cases.loader import load_use_cases


def test_label_coverage_needs_both_share_and_rows():
    assert perf.label_coverage(1000, 850, 0.8, 100).enough
    low = perf.label_coverage(1000, 700, 0.8, 100)
    assert not low.enough and "70.0% < 80%" in low.reason
    few = perf.label_coverage(50, 50, 0.8, 100)
    assert not few.enough and "50 labelled rows < 100" in few.reason and few.coverage == 1.0
    assert perf.label_coverage(0, 0, 0.8, 1).coverage == 0.0
    with pytest.raises(perf.PerformanceInputError, match="between 0 and the scored rows"):
        perf.label_coverage(10, 11, 0.8, 1)


def _preds(n=6):
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)],
                         "event_ts": pd.date_range("2026-01-05", periods=n, freq="h"),
                         "score": np.linspace(0.1, 0.9, n), "model_version": "3"})


def test_join_keeps_every_prediction_and_leaves_unlabelled_rows_empty():
    preds = _preds()
    labels = pd.DataFrame({"customer_id": ["C0", "C1", "C1", "C9"], "event_ts": list(preds.event_ts[:2]) + [preds.event_ts[1], preds.event_ts[0]],
                           "label": [0, 1, 1, 1]})  # C1 labelled twice alike; C9 is no served row
    joined = perf.join_outcomes(preds, labels, "customer_id", "event_ts")
    assert len(joined) == 6
    assert joined["label"].tolist()[:2] == [0, 1] and joined["label"].iloc[2:].isna().all()
    assert (joined["model_version"] == "3").all()


def test_join_refuses_contradicting_and_non_binary_labels_and_names_columns():
    preds = _preds()
    ts = preds.event_ts[0]
    with pytest.raises(perf.PerformanceInputError, match="two different labels"):
        perf.join_outcomes(preds, pd.DataFrame({"customer_id": ["C0", "C0"], "event_ts": [ts, ts], "label": [0, 1]}),
                           "customer_id", "event_ts")
    with pytest.raises(perf.PerformanceInputError, match="not 0/1"):
        perf.join_outcomes(preds, pd.DataFrame({"customer_id": ["C0"], "event_ts": [ts], "label": [2]}),
                           "customer_id", "event_ts")
    with pytest.raises(perf.PerformanceInputError, match=r"outcomes lack column\(s\) \['label'\]"):
        perf.join_outcomes(preds, pd.DataFrame({"customer_id": ["C0"], "event_ts": [ts], "churned": [1]}),
                           "customer_id", "event_ts")


def test_figures_agree_with_scikit_learn():
    from sklearn import metrics as sk

    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)
    f = perf.figures(y, p)
    pred = (p >= 0.5).astype(int)
    assert f["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p))
    assert f["precision"] == pytest.approx(sk.precision_score(y, pred))
    assert f["recall"] == pytest.approx(sk.recall_score(y, pred))
    assert f["f1"] == pytest.approx(sk.f1_score(y, pred))
    assert f["log_loss"] == pytest.approx(sk.log_loss(y, p))
    assert f["brier"] == pytest.approx(sk.brier_score_loss(y, p))
    assert 0 <= f["ece"] < 0.05  # scores drawn as the true probabilities: well calibrated


def test_evidently_classification_preset_gives_the_same_figures(tmp_path):
    rng = np.random.default_rng(4)
    p = rng.random(800)
    frame = pd.DataFrame({"label": (rng.random(800) < p).astype(int), "score": p})
    evid = perf.evidently_figures(frame, html_path=tmp_path / "r.html")
    own = perf.figures(frame.label, frame.score)
    for name in ("roc_auc", "precision", "recall", "f1", "log_loss"):
        assert evid[name] == pytest.approx(own[name], abs=1e-9), name
    assert (tmp_path / "r.html").stat().st_size > 10_000


def _version(v, rows, auc, holdout):
    return perf.VersionPerformance(v, rows, {"roc_auc": auc} if auc is not None else None, holdout)


def test_tolerance_verdict_per_model_version():
    ok_cov = perf.label_coverage(1000, 900, 0.8, 100)
    passed = perf.tolerance_verdict("d", ok_cov, [_version("3", 900, 0.80, 0.82)], 0.05, 100)
    assert passed.evaluated and passed.passed and passed.worst_drop == pytest.approx(0.02)
    failed = perf.tolerance_verdict("d", ok_cov, [_version("3", 450, 0.81, 0.82), _version("4", 450, 0.70, 0.83)], 0.05, 100)
    assert failed.evaluated and not failed.passed and failed.failing_versions == ["4"]
    assert "v4: ROC AUC 0.700 vs holdout 0.830 (drop +0.130" in failed.description
    # a version with too few labelled rows is not judged; none judged: not evaluated
    small = perf.tolerance_verdict("d", ok_cov, [_version("3", 20, 0.5, 0.82)], 0.05, 100)
    assert not small.evaluated and small.passed
    pending = perf.tolerance_verdict("d", perf.label_coverage(1000, 100, 0.8, 100), [], 0.05, 100)
    assert not pending.evaluated and "not evaluated yet, label coverage 10.0% < 80%" in pending.description


def test_per_version_splits_the_day_and_handles_a_single_class():
    joined = pd.DataFrame({"score": [0.2, 0.8, 0.3, 0.7, 0.6], "label": [0, 1, 1, 1, np.nan],
                           "model_version": ["3", "3", "4", "4", "4"]})
    out = perf.per_version(joined, {"3": 0.9})
    assert [v.version for v in out] == ["3", "4"]
    assert out[0].figures["roc_auc"] == 1.0 and out[0].roc_auc_drop == pytest.approx(-0.1)
    assert out[1].figures is None and "single class" in out[1].note and out[1].labelled_rows == 2


def _day(day, passed, sid, after=True):
    return PerformanceDay(day, passed, 0.7, 0.82, 0.12, sid, after)


def _state(**kw):
    base = dict(now=1e6, training_storage_id=10, last_retrain_end=1e6 - 7200, new_labelled_rows=0,
                latest_drift=None, retrain_in_progress=None)
    return RetrainState(**{**base, **kw})


def test_performance_trigger_needs_n_consecutive_failing_days_served_after_training():
    cfg = RetrainConfig(min_new_rows=None, cooldown_minutes=30)
    three = (_day("2026-01-24", False, 40), _day("2026-01-23", False, 39), _day("2026-01-22", False, 38))
    fired = decide("churn", cfg, _state(performance=three), performance_days=3)
    assert (fired.trigger, fired.run_key) == ("performance", "performance:churn:40")
    assert "2026-01-24 ROC AUC 0.700 vs holdout 0.820 (drop +0.120)" in fired.reason and "2026-01-22" in fired.reason
    assert failing_streak(three, 4) is None and failing_streak(three, None) is None
    broken = (three[0], _day("2026-01-23", True, 39), three[2])
    assert decide("churn", cfg, _state(performance=broken), performance_days=3).trigger is None
    # days served by the model before the current training set say nothing about the new one
    stale = (three[0], three[1], _day("2026-01-22", False, 38, after=False))
    quiet = decide("churn", cfg, _state(performance=stale), performance_days=3)
    assert quiet.trigger is None and "performance failed on 3 of the 3" in quiet.reason
    # same guards as the other triggers
    assert decide("churn", cfg, _state(performance=three, retrain_in_progress="r1"), performance_days=3).trigger is None
    assert decide("churn", cfg, _state(performance=three, last_retrain_end=1e6 - 60), performance_days=3).trigger is None
    assert decide("churn", cfg, _state(performance=three), performance_days=None).trigger is None


def test_stattest_names_are_evidentlys():
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests

    assert set(typing.get_args(StatTest)) <= set(_registered_stat_tests)


def test_drift_settings_are_checked_against_the_features(data_dir):
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    fields = uc.model_dump()
    fields["monitoring"] = {"drift": {"exclude_columns": ["month"]}}
    with pytest.raises(ValueError, match=r"monitoring.drift.exclude_columns \['month'\] are not features"):
        type(uc).model_validate(fields)
    fields["monitoring"] = {"drift": {"column_stattests": {"age": "bogus"}}}
    with pytest.raises(ValueError, match="column_stattests"):
        type(uc).model_validate(fields)
    fields["monitoring"] = {"drift": {"exclude_columns": ["region"], "column_stattests": {"age": "psi"}}}
    assert type(uc).model_validate(fields).monitoring.drift.column_stattests == {"age": "psi"}


def test_drift_per_column_stattest_and_exclusions():
    from mlops_assets.monitoring.drift import compute_drift, drift_columns, series_drift

    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 2000), "month": np.full(2000, 3.0)})
    cur = pd.DataFrame({"a": rng.normal(0, 1, 300), "month": np.full(300, 4.0)})
    num, cat = drift_columns(["a", "month"], [], ["month"])
    assert (num, cat) == (["a"], [])
    result = compute_drift(ref, cur, numeric_columns=num, categorical_columns=cat, column_stattests={"a": "psi"})
    assert result.columns[0].stattest.lower().startswith("psi") and not result.columns[0].drifted
    with pytest.raises(ValueError, match="not checked"):
        compute_drift(ref, cur, numeric_columns=["a"], categorical_columns=[], column_stattests={"month": "psi"})
    with pytest.raises(ValueError, match="nothing left"):
        drift_columns(["a"], [], ["a"])
    shifted = series_drift(rng.random(3000), rng.random(400) ** 3, name="score", categorical=False)
    assert shifted.drifted
    labels = series_drift(pd.Series((rng.random(3000) < 0.2).astype(int)), pd.Series((rng.random(400) < 0.5).astype(int)),
                          name="churned", categorical=True)
    assert labels.drifted


def test_summary_rows_and_overview_page():
    from mlops_assets.chain.summary import summary_rows
    from mlops_assets.monitoring.summary import NAMES, overview_html, table_records

    preds = {"2026-01-02": {"dagster/row_count": 300, "model_version": "3"},
             "2026-01-03": {"dagster/row_count": 310, "model_version": "4"}}
    drift = {"2026-01-02": {"drift_share": 0.1, "drift_flagged": False, "prediction_drift_score": 0.02},
             "2026-01-03": {"drift_share": 0.5, "drift_flagged": True}}
    performance = {"2026-01-02": {"evaluated": True, "within_tolerance": False, "label_coverage": 1.0,
                                  "roc_auc": 0.71, "model_versions": "3"},
                   "2026-01-03": {"evaluated": False, "within_tolerance": True, "label_coverage": 0.0}}
    rows = summary_rows(preds, drift, performance)
    assert [r["day"] for r in rows] == ["2026-01-03", "2026-01-02"] and list(rows[0]) == NAMES
    assert rows[1] | {} == {"day": "2026-01-02", "rows": 300, "label_coverage": 1.0, "model_version": "3",
                            "drift_share": 0.1, "prediction_drift": 0.02, "roc_auc": 0.71, "drift_check": "pass",
                            "performance_check": "FAIL"}
    assert rows[0]["performance_check"] == "pending" and rows[0]["roc_auc"] is None and rows[0]["drift_check"] == "FAIL"
    assert [list(r) for r in table_records(rows)] == [NAMES, NAMES] and table_records(rows)[0]["roc_auc"] is None
    page = overview_html("churn", rows, drift_threshold=0.3, min_coverage=0.8)
    assert page.count("<svg") == 5 and "ROC AUC of served predictions" in page and "<td>FAIL</td>" in page


def test_a_drift_retrain_trains_on_the_drifted_days():
    from mlops_assets.training.split import recent_slice_split, time_split

    days = pd.date_range("2026-01-01", periods=20, freq="D")
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"ts": np.repeat(days, 50) + pd.to_timedelta(rng.integers(0, 86_400, 1000), unit="s"),
                       "y": rng.integers(0, 2, 1000)})
    _, plain_holdout, plain = time_split(df, "ts", "y", holdout_days=3)
    train, holdout, info = recent_slice_split(df, "ts", "y", holdout_days=3)
    assert plain.train_end == "2026-01-17"  # the time split never trains on the last 3 days
    assert (info.train_end, info.holdout_start, info.holdout_end) == ("2026-01-20", "2026-01-18", "2026-01-20")
    recent_days = {"2026-01-18", "2026-01-19", "2026-01-20"}
    assert set(train.ts.dt.date.astype(str)) >= recent_days  # the drifted days are learnt
    assert set(holdout.ts.dt.date.astype(str)) == recent_days  # and still judged on unseen rows
    assert holdout.groupby(holdout.ts.dt.date).size().tolist() == [25, 25, 25]
    assert len(train) + len(holdout) == 1000 and not set(train.index) & set(holdout.index)
    again = recent_slice_split(df, "ts", "y", holdout_days=3)[1]
    assert again.index.equals(holdout.index)  # seeded: the same rows every time
    assert len(plain_holdout) == 150


def test_the_training_set_of_a_drift_retrain_covers_the_drifted_days(data_dir):
    """The training_set asset, run as the retrain sensor's drift request runs it (tag
    mlops/trigger=drift), trains on the newest days; the window it hands to the candidate (and
    the registry's data-window tags) covers them."""
    import datetime as dt

    import dagster as dg
    import duckdb

    from churn_features import feature_frame, write_features
    from mlops_assets import settings
    from mlops_assets.chain import handoffs
    from mlops_assets.chain.training import build_training_set
    from mlops_assets.chain.resources import DuckDBWarehouse
    from mlops_assets.chain.history import TRIGGER_TAG

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(14)]
    con = duckdb.connect(str(settings.duckdb_path()))
    write_features(con, uc, feature_frame(uc, days, rows_per_day=60, seed=5))
    con.close()
    asset, instance = build_training_set(uc), dg.DagsterInstance.get()
    resources = {"warehouse": DuckDBWarehouse(database=str(settings.duckdb_path()))}
    windows = {}
    for trigger in ("schedule", "drift"):
        assert dg.materialize([asset], instance=instance, resources=resources, tags={TRIGGER_TAG: trigger}).success
        md = instance.get_latest_materialization_event(asset.key).asset_materialization.metadata
        windows[trigger] = handoffs.read_training_window(md)
    assert windows["schedule"].train_end == dt.date(2026, 1, 7)  # holdout: the last 7 days, unseen
    assert windows["drift"].train_end == dt.date(2026, 1, 14) == windows["drift"].holdout_end
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        per_split = dict(con.execute("SELECT _split, count(DISTINCT CAST(event_ts AS DATE)) FROM ml.churn_training_set "
                                     "WHERE event_ts >= '2026-01-08' GROUP BY 1").fetchall())
    assert per_split == {"train": 7, "holdout": 7}
