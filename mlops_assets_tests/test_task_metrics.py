"""Task types (evaluation/tasks.py): metrics recomputed by hand, baselines, target checks, the
gates on the primary metric and the serving answer's shape."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation import gates, metrics, tasks
from mlops_assets.evaluation.tasks import ClassProbabilities, get_task

REG, MULTI, BIN = get_task("regression"), get_task("multiclass"), get_task("binary")


def test_regression_metrics_by_hand():
    y, pred = [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 5.0]  # errors 0.5, 0, -1, 1
    m = tasks.task_metrics(REG, y, pred)
    assert m["mae"] == pytest.approx(2.5 / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert m["r2"] == pytest.approx(1 - 2.25 / 5.0)  # mean 2.5: total sum of squares 5
    assert m["mape"] == pytest.approx((0.5 / 1 + 0 + 1 / 3 + 1 / 4) / 4)
    assert m["rows"] == 4


def test_regression_metrics_match_sklearn_and_skip_mape_with_a_zero_target():
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score, root_mean_squared_error

    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 3.0, 300) + 0.1
    p = y + rng.normal(0, 1, 300)
    m = tasks.regression_metrics(y, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(root_mean_squared_error(y, p))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["mape"] == pytest.approx(mean_absolute_percentage_error(y, p))
    assert "mape" not in tasks.regression_metrics([0.0, 1.0, 2.0], [0.1, 1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        tasks.regression_metrics([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(ValueError, match="undefined: a true value is zero"):
        tasks.primary_value(get_task("regression", "mape"), tasks.regression_metrics([0.0, 1.0], [0.0, 1.0]))


def test_multiclass_metrics_by_hand():
    y = ["a", "b", "c", "a"]
    proba = np.array([[0.7, 0.2, 0.1],     # a, right
                      [0.3, 0.4, 0.3],     # b, right
                      [0.5, 0.25, 0.25],   # a, but c
                      [0.2, 0.6, 0.2]])    # b, but a
    m = tasks.task_metrics(MULTI, y, ClassProbabilities(proba, ("a", "b", "c")))
    assert m["accuracy"] == 0.5
    # F1: a 2*1/(2+1+1), b 2*1/(2+1+0), c 0 (never predicted, once true)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    assert m["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.4) + math.log(0.25) + math.log(0.2)) / 4)
    assert (m["recall_a"], m["recall_b"], m["recall_c"]) == (0.5, 1.0, 0.0)
    assert m["classes"] == 3 and m["rows"] == 4


def test_multiclass_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    raw = rng.random((400, 4)) + np.eye(4)[y] * 1.5
    proba = raw / raw.sum(axis=1, keepdims=True)
    m = tasks.multiclass_metrics(y, (proba, [0, 1, 2, 3]))
    pred = proba.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(log_loss(y, proba))
    recalls = recall_score(y, pred, average=None)
    assert [m[f"recall_{k}"] for k in range(4)] == pytest.approx(list(recalls))


def test_multiclass_label_unknown_to_the_model_and_bad_matrices():
    m = tasks.multiclass_metrics(["x", "y", "z"], ClassProbabilities(np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]),
                                                                       ("x", "y")))
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(tasks.EPS)) / 3)
    assert m["recall_z"] == 0.0
    assert tasks.recall_key("new york/2") == "recall_new_york_2"
    with pytest.raises(ValueError, match=r"shape \(2, 2\); expected \(2 rows, 3 classes"):
        tasks.multiclass_metrics(["a", "b"], (np.full((2, 2), 0.5), ("a", "b", "c")))
    with pytest.raises(ValueError, match="row 1 sum to 0.9"):
        tasks.multiclass_metrics(["a", "b"], (np.array([[0.5, 0.5], [0.5, 0.4]]), ("a", "b")))


def test_binary_task_keeps_todays_metrics():
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.7, 0.6, 0.4, 0.3])
    assert tasks.task_metrics("binary", y, p) == metrics.classification_metrics(y, p)
    assert tasks.task_metrics(BIN, y.astype(bool), p) == metrics.classification_metrics(y, p)
    assert (BIN.primary_metric, BIN.higher_is_better, BIN.baseline_name) == ("roc_auc", True, "class prior")


def test_baselines():
    assert tasks.baseline_prediction(BIN, [0, 1, 1, 1], 3).tolist() == [0.75] * 3
    prior = tasks.baseline_prediction(MULTI, ["b", "a", "b", "c"], 2)
    assert prior.classes == ("a", "b", "c")
    assert prior.probabilities.tolist() == [[0.25, 0.5, 0.25]] * 2
    y = [1.0, 2.0, 3.0, 10.0]
    assert tasks.baseline_prediction(REG, y, 2).tolist() == [4.0, 4.0]  # mean: best constant for R²/RMSE
    mae_task = get_task("regression", primary_metric="mae")
    assert (mae_task.baseline_name, mae_task.higher_is_better) == ("training median", False)
    assert tasks.baseline_prediction(mae_task, y, 2).tolist() == [2.5, 2.5]
    assert tasks.baseline_prediction(get_task("regression", "mae", baseline="mean"), y, 1).tolist() == [4.0]
    # The prior baseline of a multiclass task has macro-F1 of the majority class alone.
    m = tasks.task_metrics(MULTI, ["a", "b", "b", "c"], tasks.baseline_prediction(MULTI, ["a", "b", "b", "c"], 4))
    assert m["accuracy"] == 0.5 and m["macro_f1"] == pytest.approx((2 * 2 / (4 + 2)) / 3)


def test_get_task_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        get_task("ranking")
    with pytest.raises(ValueError, match="regression task has no metric 'roc_auc'"):
        get_task("regression", primary_metric="roc_auc")
    with pytest.raises(ValueError, match="expected 'mean' or 'median'"):
        get_task("regression", baseline="mode")
    with pytest.raises(ValueError, match="class_prior"):
        get_task("binary", baseline="mean")


@pytest.mark.parametrize("task,values,message", [
    ("regression", [1.5, "abc", 2.0], r"target column 'price' of the regression task holds non-numeric values, e\.g\. 'abc'"),
    ("regression", ["1.5", "2.5"], r"non-numeric values, e\.g\. '1\.5'"),
    ("regression", [True, False, None], r"'price'.*true/false values, e\.g\. True"),
    ("regression", [3.0, 3.0, None], r"'price'.*single value \(3\.0\) in 2 labelled rows"),
    ("regression", [1.0, float("inf")], r"'price'.*infinite values, e\.g\. inf"),
    ("binary", [0, 0, None, 0], r"'price' of the binary task holds a single class \(0\) in 3 labelled rows"),
    ("binary", [0, 1, 2], r"'price'.*holds 2; a binary target is 0 or 1; more than two classes is a multiclass"),
    ("binary", ["yes", "no"], r"'price'.*holds 'yes'; a binary target is 0 or 1$"),
    ("multiclass", ["a", "a", None], r"'price' of the multiclass task holds a single class \('a'\)"),
    ("multiclass", [1.0, 2.5, 3.0], r"'price'.*non-integer numbers, e\.g\. 2\.5.*regression"),
    ("multiclass", [1, "a"], r"'price'.*mixes label types, e\.g\. 1, 'a'"),
    ("multiclass", [None, None], r"'price' of the multiclass task has no labelled values"),
])
def test_target_that_does_not_fit_the_task_is_refused(task, values, message):
    with pytest.raises(ValueError, match=message):
        tasks.check_target(task, pd.Series(values, dtype=None), "price")


def test_target_that_fits_is_returned_cast_without_unlabelled_rows():
    assert tasks.check_target("regression", pd.Series([1, None, 3]), "y").tolist() == [1.0, 3.0]
    assert tasks.check_target("regression", pd.Series([1, 2.5], dtype=object), "y").tolist() == [1.0, 2.5]
    assert tasks.check_target("binary", pd.Series([True, False, None]), "y").tolist() == [1, 0]
    assert tasks.check_target("binary", pd.Series([1.0, 0.0, np.nan]), "y").tolist() == [1, 0]
    assert tasks.check_target("multiclass", pd.Series(["a", None, "b"]), "y").tolist() == ["a", "b"]
    assert tasks.check_target("multiclass", pd.Series([1.0, 2.0, 3.0]), "y").tolist() == [1.0, 2.0, 3.0]


def test_minimum_quality_names_the_margin_in_both_directions():
    g = tasks.minimum_quality(REG, {"r2": 0.42}, 0.5)
    assert (g.name, g.passed, g.description) == (gates.MINIMUM_QUALITY, False, "R² 0.4200 < 0.5, short by 0.0800")
    assert g.metadata["shortfall"] == pytest.approx(0.08)
    rmse = get_task("regression", "rmse")
    g = tasks.minimum_quality(rmse, {"rmse": 12.5}, 10)
    assert (g.passed, g.description) == (False, "RMSE 12.5000 > 10, over by 2.5000")
    assert tasks.minimum_quality(rmse, {"rmse": 9.0}, 10).description == "RMSE 9.0000 <= 10"
    assert tasks.minimum_quality(rmse, {"rmse": 9.0}, None).passed


def test_beats_baseline_names_the_lift_and_the_shortfall():
    g = tasks.beats_baseline(MULTI, {"macro_f1": 0.30}, {"macro_f1": 0.29}, 0.02)
    assert not g.passed
    assert g.description == ("macro-F1 0.3000 vs the class prior baseline's 0.2900: lift +0.0100 (needs >= 0.02), "
                             "short by 0.0100")
    g = tasks.beats_baseline(get_task("regression", "mae"), {"mae": 4.0}, {"mae": 5.0}, 0.5)
    assert g.passed and g.description == "MAE 4.0000 vs the training median baseline's 5.0000: reduction +1.0000 (needs >= 0.5)"


def test_no_regression_vs_champion_and_recent_champions():
    assert tasks.no_regression(REG, {"r2": 0.5}, None, None, 0.01).passed
    g = tasks.no_regression(REG, {"r2": 0.40}, {"r2": 0.45}, "3", 0.01)
    assert not g.passed
    assert g.description == "R² 0.4000 vs champion v3 0.4500: -0.0500, beyond the allowed -0.01 by 0.0400"
    rmse = get_task("regression", "rmse")
    g = tasks.no_regression(rmse, {"rmse": 10.4}, {"rmse": 10.0}, "3", 0.5)
    assert g.passed and g.description.startswith("RMSE vs champion v3: +0.4000 (allowed +0.5)")
    # Within the tolerance of the champion, beyond it of an earlier, better champion: a slide.
    g = tasks.no_regression(rmse, {"rmse": 10.4}, {"rmse": 10.0}, "3", 0.5, recent={"2": {"rmse": 9.7}})
    assert not g.passed
    assert g.description.startswith("RMSE 10.4000 vs v2 9.7000, the best of the last 2 champions on this holdout: "
                                    "+0.7000, beyond the allowed +0.5 by 0.2000")


def test_slice_gate_on_the_primary_metric():
    y = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    groups = np.array(["n"] * 4 + ["s"] * 4 + ["tiny"])
    good, bad_south = y + 0.1, np.where(groups == "s", 2.5, y + 0.1)  # "s": the mean, R² 0
    mine = tasks.slice_metrics(REG, y, bad_south, groups, min_rows=1)
    theirs = tasks.slice_metrics(REG, y, good, groups, min_rows=1)
    assert [r["score"] for r in mine] == [pytest.approx(1 - 0.04 / 5), 0.0, None]  # one row: R² undefined
    rows = tasks.compare_slices({"region": mine}, {"region": theirs})
    g = tasks.no_slice_regression(REG, rows, True, 0.03)
    assert not g.passed
    assert g.description == "region=s (4 rows): R² -0.9920, beyond the allowed -0.03 by 0.9620"
    assert tasks.no_slice_regression(REG, tasks.compare_slices({"region": theirs}, {"region": theirs}), True, 0.03).passed
    assert tasks.no_slice_regression(REG, rows, False, 0.03).passed


def test_primary_metric_gates_in_gate_order():
    results = tasks.primary_metric_gates(MULTI, {"macro_f1": 0.6}, {"macro_f1": 0.2}, {"macro_f1": 0.61}, "1",
                                         bound=0.5, min_lift=0.02, max_drop=0.02)
    assert [g.name for g in results] == list(gates.ALL_GATES[:4])
    assert all(g.passed for g in results)


def test_predictions_and_serving_answer_per_task():
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    labels = np.array(["low", "mid", "high"])[np.digitize(X["a"], [-0.5, 0.5])]
    clf = LogisticRegression().fit(X, labels)
    pred = tasks.predict(MULTI, clf, X.head(3))
    assert pred.classes == ("high", "low", "mid") and pred.probabilities.shape == (3, 3)
    answer = tasks.serving_answer(MULTI, pred)
    assert answer["classes"] == ["high", "low", "mid"] and len(answer["probabilities"]) == 3
    assert answer["predictions"] == list(clf.predict(X.head(3)))
    assert tasks.task_metrics(MULTI, labels, tasks.predict(MULTI, clf, X))["accuracy"] > 0.8

    y = 2 * X["a"] + 1
    reg = tasks.predict(REG, LinearRegression().fit(X, y), X.head(2))
    assert tasks.serving_answer(REG, reg)["predictions"] == pytest.approx(list(y.head(2)))
    binary = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    assert tasks.serving_answer(BIN, tasks.predict(BIN, binary, X.head(2)))["scores"] == pytest.approx(
        list(binary.predict_proba(X.head(2))[:, 1]))


def test_hard_predictions_without_predict_proba_become_one_hot():
    class Rule:
        def predict(self, frame):
            return np.where(frame["a"] > 0, "up", "down")

    pred = tasks.predict(MULTI, Rule(), pd.DataFrame({"a": [1.0, -1.0]}))
    assert pred.classes == ("down", "up") and pred.probabilities.tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_modules_import_without_sklearn():
    code = ("import sys, mlops_assets.evaluation.tasks, mlops_assets.training.estimators; "
            "assert 'sklearn' not in sys.modules, 'sklearn imported at module load'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
