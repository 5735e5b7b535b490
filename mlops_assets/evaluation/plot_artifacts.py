"""The evaluation plots of a candidate as MLflow artifacts of its run (the model version's run,
also tagged on the version) and as model_evaluation metadata: one link per plot that opens its
image in the MLflow UI in one click (`plot_<name>`), a link to the folder, the local folder, and
a markdown preview that shows the images when the MLflow UI is running at its configured URL
(`mlops_assets.mlflow_ui.start_mlflow_ui` starts it beside Dagster)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

ARTIFACT_DIR = "evaluation/plots"
VERSION_TAG = "evaluation_plots"


def artifacts_url(mlflow_ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{ARTIFACT_DIR}"


def plot_url(mlflow_ui_url: str, experiment_id: str, run_id: str, name: str) -> str:
    """The plot's PNG in the MLflow UI's artifact view (which shows the image)."""
    return f"{artifacts_url(mlflow_ui_url, experiment_id, run_id)}/{name}.png"


def image_url(mlflow_ui_url: str, run_id: str, name: str) -> str:
    """The MLflow server's artifact download endpoint: a browser renders it inline."""
    return f"{mlflow_ui_url.rstrip('/')}/get-artifact?path={ARTIFACT_DIR}/{name}.png&run_uuid={run_id}"


def preview_markdown(paths: dict[str, Path], mlflow_ui_url: str, run_id: str) -> str:
    lines = []
    for name, path in paths.items():
        title = name.replace("_", " ")
        lines += [f"**{title}** ([MLflow]({image_url(mlflow_ui_url, run_id, name)}), local `{path}`)", "",
                  f"![{title}]({image_url(mlflow_ui_url, run_id, name)})", ""]
    return "\n".join(lines)


def log_evaluation_plots(client, run_id: str, model_name: str, version: str, model, X, y, prob, baseline_prob,
                         out_dir: Path, mlflow_ui_url: str, task="binary") -> dict[str, Any]:
    """Draws the task's plots (plots.plot_names: binary five, regression predicted vs actual and
    residuals, multiclass the confusion matrix, each with feature importance) into ``out_dir``,
    logs them under evaluation/plots/ on the run, tags the model version with that folder, and
    returns the metadata entries for the asset. ``prob`` and ``baseline_prob``: the candidate's
    and the baseline's holdout prediction in evaluation.tasks.predict's form (for binary the
    probability of class 1); ``task``: a task name or evaluation.tasks.Task."""
    from mlops_assets.evaluation import plots

    importances = plots.task_permutation_importances(task, model, X, y)
    paths = plots.save_task_plots(task, y, prob, importances, out_dir, baseline=baseline_prob)
    client.log_artifacts(run_id, str(out_dir), ARTIFACT_DIR)
    client.set_model_version_tag(model_name, version, VERSION_TAG, f"runs:/{run_id}/{ARTIFACT_DIR}")
    experiment_id = client.get_run(run_id).info.experiment_id
    top = sorted(importances, key=lambda i: -i.mean)[:5]
    return {
        **{f"plot_{name}": dg.MetadataValue.url(plot_url(mlflow_ui_url, experiment_id, run_id, name)) for name in paths},
        "evaluation_plots": dg.MetadataValue.md(preview_markdown(paths, mlflow_ui_url, run_id)),
        "evaluation_plots_url": dg.MetadataValue.url(artifacts_url(mlflow_ui_url, experiment_id, run_id)),
        "evaluation_plots_dir": dg.MetadataValue.path(str(out_dir)),
        "top_features": dg.MetadataValue.json({i.feature: round(i.mean, 5) for i in top}),
    }
