"""Evaluation plots: the curve maths against hand-computed points and sklearn, the PNG files,
and clear errors on input a plot cannot be drawn from."""
import numpy as np
import pandas as pd
import pytest

from mlops_assets.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_roc_points_by_hand():
    # scores 0.9(1) 0.8(0) 0.4(1) 0.1(0): thresholds walk down one row at a time
    fpr, tpr = plots.roc_points([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]


def test_tied_scores_are_one_threshold():
    fpr, tpr = plots.roc_points([1, 0, 1, 0], [0.7, 0.7, 0.7, 0.2])
    assert fpr.tolist() == [0, 0.5, 1] and tpr.tolist() == [0, 1, 1]


def test_curves_match_sklearn():
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1).round(2)  # rounded: many ties
    fpr, tpr = plots.roc_points(y, p)
    sk_fpr, sk_tpr, _ = roc_curve(y, p, drop_intermediate=False)
    assert auc(fpr, tpr) == pytest.approx(auc(sk_fpr, sk_tpr))
    recall, precision = plots.precision_recall_points(y, p)
    sk_precision, sk_recall, _ = precision_recall_curve(y, p)
    # sklearn lists from the lowest threshold; ours from the highest, with the (0, 1) anchor first
    assert np.allclose(recall[1:], sk_recall[::-1][1:]) and np.allclose(precision[1:], sk_precision[::-1][1:])


def test_confusion_counts():
    counts = plots.confusion_counts([1, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.1, 0.5])
    assert counts.tolist() == [[1, 1], [1, 2]]  # [[TN, FP], [FN, TP]]; 0.5 counts as positive


def test_all_plots_are_written_as_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.4 * y + rng.random(300) * 0.6, 0, 1)
    imp = [plots.Importance("tenure_months", 0.12, 0.01), plots.Importance("plan", -0.002, 0.001)]
    paths = plots.save_evaluation_plots(y, p, imp, tmp_path / "plots", baseline_prob=np.full(300, y.mean()))
    assert set(paths) == set(plots.PLOT_NAMES)
    for name, path in paths.items():
        assert path == tmp_path / "plots" / f"{name}.png"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, name


def test_one_class_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="both classes.*all 3 rows are 1"):
        plots.roc_figure([1, 1, 1], [0.2, 0.5, 0.9])


def test_mismatched_lengths_and_empty_importance_are_refused():
    with pytest.raises(ValueError, match="3 values but y_prob has 2"):
        plots.precision_recall_points([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="at least one feature"):
        plots.importance_figure([])


def test_permutation_importance_finds_the_informative_feature():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=3000), "noise": rng.normal(size=3000)})
    y = (X["signal"] + 0.3 * rng.normal(size=3000) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    imp = {i.feature: i for i in plots.permutation_importances(model, X, y, max_rows=500)}
    assert set(imp) == {"signal", "noise"}
    assert imp["signal"].mean > 0.3 and abs(imp["noise"].mean) < 0.02


@pytest.mark.integration
def test_plots_are_logged_on_the_model_versions_run_and_linked(tmp_path):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.evaluation import plot_artifacts

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("plots", artifact_location=(tmp_path / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=400), "noise": rng.normal(size=400)})
    y = (X["signal"] + rng.normal(size=400) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    run_id = client.create_run(experiment).info.run_id
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id).version
    prob = model.predict_proba(X)[:, 1]

    md = plot_artifacts.log_evaluation_plots(client, run_id, "m", version, model, X, y, prob, np.full(400, y.mean()),
                                             tmp_path / "plots", "http://mlflow.example:5000/")
    logged = sorted(a.path for a in client.list_artifacts(run_id, plot_artifacts.ARTIFACT_DIR))
    assert logged == sorted(f"evaluation/plots/{n}.png" for n in plots.PLOT_NAMES)
    assert client.get_model_version("m", version).tags["evaluation_plots"] == f"runs:/{run_id}/evaluation/plots"
    assert md["evaluation_plots_url"].value == \
        f"http://mlflow.example:5000/#/experiments/{experiment}/runs/{run_id}/artifacts/evaluation/plots"
    preview = md["evaluation_plots"].value
    assert preview.count("![") == 5 and f"get-artifact?path=evaluation/plots/roc_curve.png&run_uuid={run_id}" in preview
    assert list(md["top_features"].value)[0] == "signal"
