"""Unit tests of monitoring per task type (regression, multiclass): the prediction-label join,
the day's figures recomputed by hand, Evidently's presets agreeing with them, the tolerance
rule on the primary metric, prediction and target drift, the check's hand-off, the summary and
the evaluation plots."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation import plots, tasks
from mlops_assets.monitoring import performance as perf
from mlops_assets.monitoring import prediction_drift as pdrift

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _frame(n: int, **columns) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"E{i}" for i in range(n)],
                         "ts": pd.date_range("2026-03-01", periods=n, freq="h"), "model_version": "2", **columns})


def _proba_json(rows: list[dict]) -> list[str]:
    return [json.dumps(r) for r in rows]


# ------------------------------------------------------------------------------ join and labels


def test_regression_join_keeps_numbers_and_refuses_text():
    preds = _frame(3, score=[1.5, 2.0, 3.0])
    labels = preds[["id", "ts"]].iloc[:2].assign(label=[1.0, 2.0])
    joined = perf.join_outcomes(preds, labels, "id", "ts", task="regression")
    assert joined["label"].tolist()[:2] == [1.0, 2.0] and math.isnan(joined["label"].iloc[2])
    with pytest.raises(perf.PerformanceInputError, match="not finite numbers, e.g. \\['late'\\]"):
        perf.join_outcomes(preds, labels.assign(label=["late", 2.0]), "id", "ts", task="regression")


def test_multiclass_join_needs_class_probabilities_and_reads_labels_as_text():
    preds = _frame(2, score=[0.7, 0.6], predicted_class=["2", "1"],
                   class_probabilities=_proba_json([{"1": 0.3, "2": 0.7}, {"1": 0.6, "2": 0.4}]))
    labels = preds[["id", "ts"]].assign(label=[2.0, 1.0])  # a float column of whole labels
    joined = perf.join_outcomes(preds, labels, "id", "ts", task="multiclass")
    assert joined["label"].tolist() == ["2", "1"] and "predicted_class" in joined
    with pytest.raises(perf.PerformanceInputError, match=r"predictions lack column\(s\) \['class_probabilities'\]"):
        perf.join_outcomes(preds.drop(columns="class_probabilities"), labels, "id", "ts", task="multiclass")


def test_class_label_is_the_same_however_the_label_was_stored():
    assert perf.class_label(2) == perf.class_label(2.0) == perf.class_label("2") == perf.class_label(np.int64(2)) == "2"
    assert perf.class_label("2.0") == "2" and perf.class_label(2.5) == "2.5"
    assert perf.class_label("gold") == "gold" and perf.class_label(True) == "True"


def test_class_probabilities_fill_labels_a_row_does_not_name_with_zero():
    frame = pd.DataFrame({"class_probabilities": _proba_json([{"a": 0.9, "b": 0.1}, {"b": 0.2, "c": 0.8}])})
    proba = perf.class_probabilities(frame)
    assert proba.classes == ("a", "b", "c")
    assert proba.probabilities.tolist() == [[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]]
    with pytest.raises(perf.PerformanceInputError, match="row 0 has no readable class_probabilities"):
        perf.class_probabilities(pd.DataFrame({"class_probabilities": ["{not json"]}))


# ------------------------------------------------------------------------------------- figures


def test_regression_figures_by_hand():
    labelled = pd.DataFrame({"label": [1.0, 2.0, 4.0], "score": [1.5, 2.0, 3.0]})
    f = perf.task_figures("regression", labelled)
    # errors 0.5, 0, -1; the mean target 7/3, so the total sum of squares is 42/9
    assert f["mae"] == pytest.approx(0.5)
    assert f["rmse"] == pytest.approx(math.sqrt(1.25 / 3))
    assert f["r2"] == pytest.approx(1 - 1.25 / (42 / 9))
    assert f["mape"] == pytest.approx((0.5 / 1 + 0 + 1 / 4) / 3)
    assert f["mean_prediction"] == pytest.approx(6.5 / 3) and f["mean_target"] == pytest.approx(7 / 3)
    with_zero = perf.task_figures("regression", pd.DataFrame({"label": [0.0, 2.0], "score": [1.0, 2.0]}))
    assert "mape" not in with_zero  # undefined with a zero target
    assert perf.defined(tasks.get_task("regression", "mape"), pd.DataFrame({"label": [0.0, 2.0]})) \
        == "a true value is zero: MAPE undefined"


def test_multiclass_figures_by_hand():
    rows = [{"a": 0.7, "b": 0.2, "c": 0.1}, {"a": 0.1, "b": 0.8, "c": 0.1},
            {"a": 0.5, "b": 0.1, "c": 0.4}, {"a": 0.2, "b": 0.2, "c": 0.6}]
    labelled = pd.DataFrame({"label": ["a", "b", "c", "c"], "class_probabilities": _proba_json(rows)})
    f = perf.task_figures("multiclass", labelled)
    # predicted a, b, a, c: 3 of 4 right; F1 a = 2/3, b = 1, c = 2/3
    assert f["accuracy"] == pytest.approx(0.75)
    assert f["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert f["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.4) + math.log(0.6)) / 4)
    assert (f["recall_a"], f["recall_b"], f["recall_c"]) == (1.0, 1.0, 0.5)


def test_evidently_regression_preset_agrees_and_writes_its_report(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.normal(20, 4, 300)
    labelled = pd.DataFrame({"label": y, "score": y + rng.normal(0, 2, 300)})
    evid = perf.evidently_task_figures("regression", labelled, html_path=tmp_path / "r.html",
                                       snapshot_path=tmp_path / "r.json.gz")
    own = perf.task_figures("regression", labelled)
    for name in ("mae", "rmse", "r2", "mape"):
        assert evid[name] == pytest.approx(own[name], rel=1e-6), name
    assert perf.evidently_disagreements(own, evid) == []
    assert (tmp_path / "r.html").stat().st_size > 10_000 and (tmp_path / "r.json.gz").exists()


def test_evidently_classification_preset_agrees_on_multiclass_even_without_a_class(tmp_path):
    rng = np.random.default_rng(6)
    classes = ["bronze", "gold", "silver"]
    proba = rng.dirichlet([2, 2, 2], 200)
    labels = [classes[i] if rng.random() < 0.6 else classes[rng.integers(3)] for i in proba.argmax(axis=1)]
    labelled = pd.DataFrame({"label": labels, "class_probabilities": _proba_json(
        [dict(zip(classes, map(float, row))) for row in proba])})
    own = perf.task_figures("multiclass", labelled)
    evid = perf.evidently_task_figures("multiclass", labelled, html_path=tmp_path / "m.html")
    for name in ("accuracy", "macro_f1", "log_loss", "recall_bronze", "recall_gold", "recall_silver"):
        assert evid[name] == pytest.approx(own[name], abs=1e-9), name
    # a day whose labels lack a class: Evidently's probability figures cannot run; labels only
    some = labelled[labelled["label"] != "silver"]
    partial = perf.evidently_task_figures("multiclass", some)
    assert "log_loss" not in partial and perf.evidently_disagreements(perf.task_figures("multiclass", some), partial) == []


def test_disagreement_is_reported_by_name():
    assert perf.evidently_disagreements({"r2": 0.5, "mae": 100.0}, {"r2": 0.6, "mae": 100.05}) == [
        "r2: Evidently 0.600000, the project 0.500000"]  # an error's tolerance scales with its size


# ---------------------------------------------------------------------------- tolerance rule


def test_tolerance_on_an_error_metric_counts_a_rise_as_a_drop():
    task = tasks.get_task("regression", "rmse")
    joined = pd.DataFrame({"label": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, np.nan],
                           "score": [1.0, 2.0, 3.0, 6.0, 1.5, 2.5, 9.0],
                           "model_version": ["3", "3", "3", "3", "4", "4", "4"]})
    versions = perf.per_version(joined, {"3": 0.5, "4": None}, task)
    v3, v4 = versions
    assert v3.value == pytest.approx(1.0) and v3.drop == pytest.approx(0.5)  # RMSE sqrt(4/4) vs 0.5
    assert v4.drop is None and v4.note == "holdout RMSE unknown" and v4.labelled_rows == 2
    coverage = perf.label_coverage(7, 6, 0.8, 2)
    verdict = perf.tolerance_verdict("d", coverage, versions, 0.2, 2)
    assert verdict.evaluated and not verdict.passed and verdict.failing_versions == ["3"]
    assert "v3: RMSE 1.000 vs holdout 0.500 (drop +0.500, 4 rows)" in verdict.description
    better = perf.tolerance_verdict("d", coverage, perf.per_version(joined, {"3": 1.2}, task), 0.2, 2)
    assert better.passed and better.worst_drop == pytest.approx(-0.2)


def test_multiclass_versions_judged_on_macro_f1():
    joined = pd.DataFrame({"label": ["a", "b", "a", "b"], "model_version": "1",
                           "class_probabilities": _proba_json([{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8},
                                                              {"a": 0.4, "b": 0.6}, {"a": 0.3, "b": 0.7}])})
    (v,) = perf.per_version(joined, {"1": 0.9}, "multiclass")
    # predicted a, b, b, b: F1 a = 2/3, F1 b = 4/5
    assert v.metric == "macro_f1" and v.value == pytest.approx((2 / 3 + 0.8) / 2)
    assert v.drop == pytest.approx(0.9 - (2 / 3 + 0.8) / 2)


def test_per_segment_figures_by_hand():
    labelled = pd.DataFrame({"label": [1.0, 2.0, 3.0, 5.0, 5.0, 7.0],
                             "score": [1.0, 2.0, 4.0, 5.0, 6.0, 6.0],
                             "region": ["n", "n", "n", "s", "s", "x"]})
    rows = perf.per_segment(labelled, "region", tasks.get_task("regression", "mae"), min_rows=2)
    assert rows == [
        {"segment": "n", "labelled_rows": 3, "metric": "mae", "value": pytest.approx(1 / 3, abs=1e-5), "note": ""},
        {"segment": "s", "labelled_rows": 2, "metric": "mae", "value": 0.5, "note": ""},
        {"segment": "x", "labelled_rows": 1, "metric": "mae", "value": None, "note": "1 labelled rows < 2"}]
    binary = pd.DataFrame({"label": [0, 1, 1, 1], "score": [0.2, 0.7, 0.6, 0.9], "region": ["n", "n", "s", "s"]})
    n, s_ = perf.per_segment(binary, "region", "binary", min_rows=2)
    assert n["value"] == 1.0 and s_["value"] is None and "single class" in s_["note"]


# ------------------------------------------------------------------------------------- drift


def test_prediction_drift_of_regression_values_and_multiclass_classes():
    rng = np.random.default_rng(7)
    reference = rng.normal(10, 1, 2000)
    calm = pd.DataFrame({"score": rng.normal(10, 1, 300)})
    shifted = pd.DataFrame({"score": rng.normal(12, 1, 300)})
    assert not pdrift.prediction_drift("regression", reference, calm).drifted
    moved = pdrift.prediction_drift("regression", reference, shifted)
    assert moved.drifted and moved.column == "prediction"

    classes = ("a", "b", "c")
    ref_proba = tasks.ClassProbabilities(np.tile([0.6, 0.3, 0.1], (900, 1)), classes)
    ref_proba.probabilities[300:600] = [0.1, 0.8, 0.1]
    ref_proba.probabilities[600:] = [0.1, 0.1, 0.8]
    assert pdrift.predicted_classes(ref_proba)[::300] == ["a", "b", "c"]
    same = pd.DataFrame({"predicted_class": ["a", "b", "c"] * 100})
    skewed = pd.DataFrame({"predicted_class": ["a"] * 270 + ["b"] * 15 + ["c"] * 15})
    assert not pdrift.prediction_drift("multiclass", ref_proba, same).drifted
    assert pdrift.prediction_drift("multiclass", ref_proba, skewed).drifted
    assert pdrift.class_shares(skewed["predicted_class"]) == {"a": 0.9, "b": 0.05, "c": 0.05}
    # without predicted_class the most probable label of class_probabilities counts
    only_json = pd.DataFrame({"class_probabilities": _proba_json([{"a": 0.2, "b": 0.8}, {"a": 0.6, "b": 0.4}])})
    assert pdrift.served_classes(only_json) == ["b", "a"]


# ------------------------------------------------------------------------- hand-off and summary


def test_the_check_metadata_names_the_primary_metric_and_binary_keeps_its_names():
    from mlops_assets.chain import handoffs as h

    binary = h.performance_check_metadata(evaluated=True, coverage=0.9, roc_auc=0.8, holdout_roc_auc=0.82,
                                          drop=0.02, tolerance=0.05)
    assert set(binary) == {"evaluated", "label_coverage", "tolerance", "roc_auc", "holdout_roc_auc", "roc_auc_drop"}
    verdict = h.read_performance_verdict("d", True, binary)
    assert (verdict.metric, verdict.value, verdict.holdout, verdict.drop) == ("roc_auc", 0.8, 0.82, 0.02)

    rmse = h.performance_check_metadata(evaluated=True, coverage=0.9, roc_auc=None, holdout_roc_auc=None, drop=0.3,
                                        tolerance=0.05, metric="rmse", value=1.3, holdout=1.0)
    assert rmse["primary_metric"] == "rmse" and "roc_auc_drop" not in rmse
    verdict = h.read_performance_verdict("d", False, rmse)
    assert (verdict.metric, verdict.value, verdict.holdout, verdict.drop) == ("rmse", 1.3, 1.0, 0.3)
    assert verdict.roc_auc is None and verdict.roc_auc_drop is None


def test_summary_shows_the_primary_metric_of_the_task():
    from mlops_assets.chain.summary import summary_rows
    from mlops_assets.monitoring.summary import columns, names, overview_html, table_records

    performance = {"2026-03-02": {"evaluated": True, "within_tolerance": True, "label_coverage": 1.0,
                                  "primary_metric": "r2", "primary_value": 0.61, "model_versions": "2"},
                   "2026-03-03": {"evaluated": False, "within_tolerance": True, "label_coverage": 0.1}}
    rows = summary_rows({}, {}, performance, metric="r2")
    assert list(rows[0]) == names("r2") and "roc_auc" not in rows[0]
    assert rows[1]["r2"] == 0.61 and rows[0]["r2"] is None and rows[0]["performance_check"] == "pending"
    assert [c[0] for c in columns("r2", "R²")][6] == "r2" and "R² of the served" in columns("r2", "R²")[6][2]
    assert list(table_records(rows, "r2")[0]) == names("r2")
    page = overview_html("demand", rows, drift_threshold=0.3, min_coverage=0.8, metric="r2", label="R²")
    assert "R² of served predictions" in page and "<th>r2</th>" in page and "ROC AUC" not in page


# -------------------------------------------------------------------------------------- plots


def test_multiclass_confusion_and_residuals_by_hand():
    labels, counts = plots.multiclass_confusion(["a", "b", "c", "c", "a"], ["a", "c", "c", "a", "a"])
    assert labels == ["a", "b", "c"]
    assert counts.tolist() == [[2, 0, 0], [0, 0, 1], [1, 0, 1]]  # rows actual, columns predicted
    assert plots.residuals([1.0, 2.0, 4.0], [1.5, 2.0, 3.0]).tolist() == [-0.5, 0.0, 1.0]
    assert plots.plot_names("regression") == ("predicted_vs_actual", "residuals", "feature_importance")
    assert plots.plot_names("binary") == plots.PLOT_NAMES


class _Rule:
    """A hand-written regression rule on one feature: what a team's own model may be."""

    def predict(self, X):
        return 2.0 * X["signal"].to_numpy() + 1.0


class _ClassRule:
    classes_ = np.array(["neg", "pos"])

    def predict(self, X):
        return np.where(X["signal"] > 0, "pos", "neg")


def test_task_importances_are_model_agnostic():
    rng = np.random.default_rng(8)
    X = pd.DataFrame({"signal": rng.normal(size=400), "noise": rng.normal(size=400)})
    y = 2.0 * X["signal"].to_numpy() + 1.0 + rng.normal(0, 0.1, 400)
    imp = {i.feature: i.mean for i in plots.task_permutation_importances("regression", _Rule(), X, y)}
    assert imp["signal"] > 1.0 and imp["noise"] == 0.0  # R² lost: the rule ignores noise
    y_class = np.where(X["signal"] > 0, "pos", "neg")
    imp = {i.feature: i.mean for i in plots.task_permutation_importances("multiclass", _ClassRule(), X, y_class)}
    assert imp["signal"] > 0.3 and imp["noise"] == 0.0


def test_task_plots_are_written_as_png(tmp_path):
    rng = np.random.default_rng(9)
    y = rng.normal(5, 1, 200)
    imp = [plots.Importance("signal", 0.5, 0.01)]
    regression = plots.save_task_plots("regression", y, y + rng.normal(0, 0.5, 200), imp, tmp_path / "r",
                                       baseline=np.full(200, y.mean()))
    classes = ("a", "b", "c")
    proba = tasks.ClassProbabilities(rng.dirichlet([1, 1, 1], 200), classes)
    multiclass = plots.save_task_plots("multiclass", rng.choice(classes, 200), proba, imp, tmp_path / "m")
    assert tuple(regression) == plots.plot_names("regression") and tuple(multiclass) == plots.plot_names("multiclass")
    for path in [*(tmp_path / "r").glob("*.png"), *(tmp_path / "m").glob("*.png")]:
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, path
    assert sorted(p.stem for p in (tmp_path / "r").glob("*.png")) == sorted(plots.plot_names("regression"))
    assert sorted(p.stem for p in (tmp_path / "m").glob("*.png")) == sorted(plots.plot_names("multiclass"))


@pytest.mark.integration
def test_regression_plots_are_logged_on_the_run(tmp_path):
    import mlflow

    from mlops_assets.evaluation import plot_artifacts

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("plots", artifact_location=(tmp_path / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = 2.0 * X["signal"].to_numpy() + 1.0 + rng.normal(0, 0.3, 300)
    run_id = client.create_run(experiment).info.run_id
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id).version
    md = plot_artifacts.log_evaluation_plots(client, run_id, "m", version, _Rule(), X, y, _Rule().predict(X),
                                             np.full(300, y.mean()), tmp_path / "plots", "http://mlflow.example:5000/",
                                             task="regression")
    logged = sorted(a.path for a in client.list_artifacts(run_id, plot_artifacts.ARTIFACT_DIR))
    assert logged == sorted(f"evaluation/plots/{n}.png" for n in plots.plot_names("regression"))
    assert md["evaluation_plots"].value.count("![") == 3 and list(md["top_features"].value)[0] == "signal"
