"""The links into MLflow open: the MLflow UI started for the project's store at
MLOPS_MLFLOW_UI_URL (mlops_assets.mlflow_ui) serves the evaluation plots the metadata links
to, one click per plot (`plot_<name>`: the PNG in the MLflow UI's artifact view), and the
preview's images are PNGs it serves."""
import os
import re
import signal

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets import settings
from mlops_assets_tests.ports import free_port


@pytest.mark.integration
def test_the_mlflow_ui_serves_every_plot_the_metadata_links(data_dir, monkeypatch):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    from mlops_assets.evaluation import plot_artifacts, plots
    from mlops_assets.mlflow_ui import mlflow_ui_command, start_mlflow_ui

    ui_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(settings.MLFLOW_UI_URL_ENV, ui_url + "/")
    cmd = mlflow_ui_command()
    assert cmd[cmd.index("--backend-store-uri") + 1] == settings.mlflow_tracking_uri()
    assert cmd[cmd.index("--port") + 1] == ui_url.rsplit(":", 1)[1]

    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    experiment = client.create_experiment("plots", artifact_location=settings.mlflow_artifact_root())
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=400), "noise": rng.normal(size=400)})
    y = (X["signal"] + rng.normal(size=400) > 0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    run_id = client.create_run(experiment).info.run_id
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id).version
    md = plot_artifacts.log_evaluation_plots(client, run_id, "m", version, model, X, y,
                                             model.predict_proba(X)[:, 1], np.full(400, y.mean()),
                                             data_dir / "plots", settings.mlflow_ui_url())

    proc = start_mlflow_ui(log=lambda _: None, stdout=open(os.devnull, "wb"), stderr=open(os.devnull, "wb"))
    assert proc is not None
    try:
        assert start_mlflow_ui(log=lambda _: None) is None  # already up: not started twice
        for name in plots.PLOT_NAMES:
            link = md[f"plot_{name}"].value  # one click from the Dagster UI
            page, artifact = link.split("#", 1)
            assert page == f"{ui_url}/"
            assert httpx.get(page, timeout=30).status_code == 200  # the MLflow UI itself
            assert artifact == f"/experiments/{experiment}/runs/{run_id}/artifacts/evaluation/plots/{name}.png"
            # what the artifact view (and the preview's image) loads: the PNG
            png = httpx.get(plot_artifacts.image_url(ui_url, run_id, name), timeout=30)
            assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n", name
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md["evaluation_plots"].value)
        assert len(images) == len(plots.PLOT_NAMES)
        assert all(httpx.get(u, timeout=30).content[:4] == b"\x89PNG" for u in images)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_a_remote_mlflow_ui_is_not_started(monkeypatch):
    from mlops_assets.mlflow_ui import start_mlflow_ui

    monkeypatch.setenv(settings.MLFLOW_UI_URL_ENV, "https://mlflow.example.com")
    said = []
    assert start_mlflow_ui(log=said.append) is None
    assert "not on this machine" in said[0]
