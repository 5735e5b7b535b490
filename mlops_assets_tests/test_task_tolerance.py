"""The per-day performance tolerance of a multiclass or regression use case is in its primary
metric's units (monitoring.max_primary_metric_drop; binary keeps max_roc_auc_drop), and the
retrain trigger's message names the metric and its figures."""
import pytest

from mlops_assets.training.triggers import PerformanceDay, RetrainState, decide
from mlops_assets.use_cases.config import RetrainConfig, UseCase


def _use_case(task: str, primary: str | None = None, **monitoring) -> UseCase:
    return UseCase(name="uc", landing={"folder": "uc"}, first_day="2026-03-01", entity_column="id",
                   timestamp_column="ts", target_column="y", task=task,
                   features={"numeric": ["x1"], "categorical": ["seg"]},
                   thresholds={"primary_metric": primary} if primary else {}, monitoring=monitoring)


def test_the_tolerance_follows_the_task_and_its_primary_metric():
    assert _use_case("binary").performance_tolerance == 0.05
    assert _use_case("binary", max_roc_auc_drop=0.02).performance_tolerance == 0.02
    assert _use_case("regression").performance_tolerance == 0.05  # R², a score bounded by 1
    assert _use_case("multiclass").performance_tolerance == 0.05  # macro-F1
    assert _use_case("regression", max_primary_metric_drop=0.1).performance_tolerance == 0.1
    assert _use_case("regression", "rmse", max_primary_metric_drop=2.5).performance_tolerance == 2.5


@pytest.mark.parametrize("task, primary, monitoring, message", [
    ("regression", "rmse", {}, "monitoring.max_primary_metric_drop is required: the primary metric rmse is an error"),
    ("regression", "mae", {}, "the primary metric mae is an error"),
    ("multiclass", "log_loss", {}, "the primary metric log_loss is an error"),
    ("regression", None, {"max_roc_auc_drop": 0.1},
     "monitoring.max_roc_auc_drop judges binary days; a regression day is judged on r2"),
    ("binary", None, {"max_primary_metric_drop": 0.1}, "a binary day is judged on ROC AUC with monitoring.max_roc_auc_drop"),
])
def test_a_tolerance_in_the_wrong_units_is_refused(task, primary, monitoring, message):
    with pytest.raises(ValueError, match=message):
        _use_case(task, primary, **monitoring)


def test_the_shipped_regression_use_case_sets_its_tolerance_in_r2():
    from mlops_assets import settings
    from mlops_assets.use_cases.loader import load

    demand = load(settings.PROJECT_ROOT / "mlops_assets" / "defs" / "demand" / "defs.yaml")
    assert (demand.task, demand.primary.metric, demand.performance_tolerance) == ("regression", "r2", 0.1)


def _state(days) -> RetrainState:
    return RetrainState(now=1e6, training_storage_id=10, last_retrain_end=1e6 - 7200, new_labelled_rows=0,
                        latest_drift=None, retrain_in_progress=None, performance=days)


def test_the_retrain_message_names_the_primary_metric_and_its_figures():
    cfg = RetrainConfig(min_new_rows=None, cooldown_minutes=30)
    rmse = tuple(PerformanceDay(d, False, None, None, None, sid, True, metric="rmse", value=value, holdout=10.0,
                                drop=value - 10.0)
                 for d, sid, value in (("2026-01-24", 40, 13.25), ("2026-01-23", 39, 12.5)))
    fired = decide("demand", cfg, _state(rmse), performance_days=2)
    assert fired.trigger == "performance"
    assert fired.reason == ("performance check failed on the 2 most recent labelled days: "
                            "2026-01-24 RMSE 13.25 vs holdout 10 (rise +3.25); 2026-01-23 RMSE 12.5 vs holdout 10 "
                            "(rise +2.5)")
    r2 = (PerformanceDay("2026-01-24", False, None, None, None, 41, True, metric="r2", value=0.41, holdout=0.6,
                         drop=0.19),)
    assert "2026-01-24 R² 0.410 vs holdout 0.600 (drop +0.19)" in decide("demand", cfg, _state(r2), 1).reason
    # a binary day reads as before, whatever the generic fields hold
    binary = (PerformanceDay("2026-01-24", False, 0.7, 0.82, 0.12, 42, True, value=0.7, holdout=0.82, drop=0.12),)
    assert decide("churn", cfg, _state(binary), 1).reason.endswith(
        "2026-01-24 ROC AUC 0.700 vs holdout 0.820 (drop +0.120)")
    unknown = (PerformanceDay("2026-01-24", False, None, None, None, 43, True),)
    assert decide("churn", cfg, _state(unknown), 1).reason.endswith("2026-01-24 failed")
