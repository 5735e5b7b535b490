import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation import gates, metrics
from mlops_assets.evaluation.report import evaluation_report, slice_metrics
from mlops_assets.training.split import time_split
from mlops_assets.use_cases.config import Thresholds


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500) * 0.5 + y * 0.3, 2)  # rounded: many ties
    assert metrics.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_log_loss_f1_brier_match_sklearn():
    from sklearn.metrics import brier_score_loss, f1_score, log_loss

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(rng.random(400) * 0.6 + y * 0.3, 0, 1)
    assert metrics.log_loss(y, p) == pytest.approx(log_loss(y, p), rel=1e-9)
    assert metrics.f1_at(y, p) == pytest.approx(f1_score(y, p >= 0.5), rel=1e-12)
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)


def test_ece_zero_when_calibrated_and_large_when_not():
    y = np.array([0] * 8 + [1] * 2 + [0] * 2 + [1] * 8)
    calibrated = np.array([0.2] * 10 + [0.8] * 10)
    assert metrics.expected_calibration_error(y, calibrated) == pytest.approx(0.0, abs=1e-12)
    overconfident = np.array([0.0] * 10 + [1.0] * 10)
    assert metrics.expected_calibration_error(y, overconfident) == pytest.approx(0.2)


@pytest.mark.parametrize("y,p,msg", [([0, 1], [0.5], "values"), ([0, 2], [0.1, 0.2], "0/1"),
                                     ([0, 1], [0.1, 1.2], r"\[0, 1\]"), ([], [], "no rows")])
def test_metric_input_errors(y, p, msg):
    with pytest.raises(ValueError, match=msg):
        metrics.log_loss(y, p)


def test_report_compares_with_baseline_and_slices():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 600)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, 600), 0, 1)
    report = evaluation_report(y, p, np.full(600, y.mean()), {"plan": np.where(np.arange(600) % 2, "a", "b")})
    assert report["baseline"]["roc_auc"] == 0.5
    assert report["lift"]["roc_auc"] > 0.3
    assert {r["value"] for r in report["slices"]["plan"]} == {"a", "b"}
    tiny = slice_metrics(y[:10], p[:10], ["x"] * 10)
    assert tiny[0]["roc_auc"] is None  # too few rows for an honest AUC


def test_gates():
    t = Thresholds(min_roc_auc=0.7, min_lift_over_baseline=0.05)
    good, base = {"roc_auc": 0.8, "log_loss": 0.4}, {"roc_auc": 0.5, "log_loss": 0.6}
    assert gates.minimum_quality(good, t).passed
    bad = gates.minimum_quality({"roc_auc": 0.65, "log_loss": 0.5}, t)
    assert not bad.passed and "0.65" in bad.description and bad.metadata["shortfall"] == pytest.approx(0.05)
    assert gates.beats_baseline(good, base, t).passed
    assert not gates.beats_baseline({"roc_auc": 0.52, "log_loss": 0.59}, base, t).passed


def _frame(days: int, per_day: int = 10) -> pd.DataFrame:
    ts = pd.date_range("2026-01-01", periods=days, freq="D").repeat(per_day) + pd.Timedelta(hours=3)
    return pd.DataFrame({"ts": ts, "y": np.tile([0, 1], days * per_day // 2)})


def test_time_split_holds_out_the_last_days():
    train, holdout, info = time_split(_frame(10), "ts", "y", holdout_days=3)
    assert (info.train_start, info.train_end) == ("2026-01-01", "2026-01-07")
    assert (info.holdout_start, info.holdout_end) == ("2026-01-08", "2026-01-10")
    assert len(train) == 70 and len(holdout) == 30
    assert train["ts"].max() < holdout["ts"].min()


def test_time_split_window_limits_training_days():
    train, _, info = time_split(_frame(10), "ts", "y", holdout_days=2, window_days=3)
    assert (info.train_start, info.train_end) == ("2026-01-06", "2026-01-08")
    assert len(train) == 30


def test_time_split_errors():
    with pytest.raises(ValueError, match="need more than 5 days"):
        time_split(_frame(5), "ts", "y", holdout_days=5)
    with pytest.raises(ValueError, match="timestamp column 'when'"):
        time_split(_frame(5), "when", "y", holdout_days=1)
    one_class = _frame(6).assign(y=0)
    with pytest.raises(ValueError, match="single target class"):
        time_split(one_class, "ts", "y", holdout_days=2)
