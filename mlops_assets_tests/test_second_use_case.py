"""A second use case added as data only, the way the README says: `dg scaffold defs
mlops_assets.components.UseCase tumours` writes the skeleton, its fields are filled in, and the
defs.yaml goes into a folder named by MLOPS_USE_CASE_DIRS; batch files come from a data set
scikit-learn ships. No platform code changes. Materialized end to end with real Dagster,
MLflow and Evidently: raw, training set, candidate, evaluation, promotion, scoring, drift."""
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent

FEATURES = ["mean_radius", "mean_texture", "mean_perimeter", "mean_area", "mean_smoothness",
            "mean_compactness", "mean_concavity", "mean_symmetry", "worst_radius", "worst_texture",
            "worst_area", "worst_concavity"]


def _write_batches(folder, days: int = 12):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    rng = np.random.default_rng(0)
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["patient_id"] = [f"P{i:04d}" for i in range(len(frame))]
    start = dt.datetime(2026, 3, 1)
    day = np.arange(len(frame)) % days
    frame["visit_ts"] = [start + dt.timedelta(days=int(d), seconds=int(s))
                         for d, s in zip(day, rng.integers(0, 86_400, len(frame)))]
    frame["malignant"] = 1 - frame["target"]  # scikit-learn codes malignant as 0
    folder.mkdir(parents=True)
    for d in range(days):
        part = frame[day == d][["patient_id", "visit_ts", *FEATURES, "malignant"]]
        part.to_csv(folder / f"visits_{(start + dt.timedelta(days=d)).date()}.csv", index=False)
    return len(frame)


def _scaffold(tmp_path, name: str) -> dict:
    """`dg scaffold defs` in a copy of the project (the scaffolder writes into the project's
    defs folder and dbt models); returns the defs.yaml it wrote, parsed."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project)
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", "dbt_packages", ".user.yml")
    for folder in ("mlops_assets", "dbt_project"):
        shutil.copytree(REPO / folder, project / folder, ignore=ignore)
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1"}
    proc = subprocess.run([str(Path(sys.executable).parent / "dg"), "scaffold", "defs",
                           "mlops_assets.components.UseCase", name], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load((project / "mlops_assets" / "defs" / name / "defs.yaml").read_text())


def test_scaffolded_use_case_runs_end_to_end(data_dir, tmp_path, monkeypatch, dbt_manifest):
    import duckdb
    import mlflow

    from mlops_assets import settings
    from mlops_assets.chain import handoffs

    days = 12
    n_rows = _write_batches(data_dir / "landing" / "tumours", days)
    scaffolded = _scaffold(tmp_path, "tumours")
    assert scaffolded["type"] == "mlops_assets.components.UseCase"
    attrs = scaffolded["attributes"]
    # fill in what the skeleton leaves as TODO/placeholders; every other field keeps its default
    attrs.update(
        description="Benign or malignant, from scikit-learn's breast cancer data.",
        first_day=dt.date(2026, 3, 1), last_day=dt.date(2026, 3, days),
        entity_column="patient_id", timestamp_column="visit_ts", target_column="malignant")
    attrs["landing"].update(folder="tumours", pattern="visits_*.csv")
    attrs["features"] = {"dbt_model": None, "numeric": FEATURES, "categorical": []}
    attrs["model"].update(family="logistic_regression", params={"max_iter": 1000})
    attrs["split"]["holdout_days"] = 3
    attrs["thresholds"].update(min_roc_auc=0.9, min_lift_over_baseline=0.3, drift_share=0.5)
    cases = tmp_path / "my_use_cases"
    (cases / "tumours").mkdir(parents=True)
    (cases / "tumours" / "defs.yaml").write_text(yaml.safe_dump(scaffolded, sort_keys=False))
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(cases))

    from mlops_assets.definitions import build_defs

    defs = build_defs()
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    chain = ["raw", "training_set", "candidate_model", "model_evaluation", "champion_model", "batch_predictions",
             "drift_report"]
    assert {f"tumours/{name}" for name in chain} <= keys
    assert "churn/raw" in keys  # the demo is still there, untouched
    groups = {a.group_names_by_key[k] for k, a in repo.assets_defs_by_key.items() if k.path[0] == "tumours"}
    assert groups == {"tumours"}
    # a historical data set: its day partitions are exactly the days of the data
    part_keys = repo.get_job("tumours_daily").partitions_def.get_partition_keys()
    assert (part_keys[0], part_keys[-1], len(part_keys)) == ("2026-03-01", f"2026-03-{days:02d}", days)

    instance = dg.DagsterInstance.get()
    from mlops_assets.orchestrate import run_pipeline

    assert run_pipeline(only=["tumours"])
    for name in chain:
        assert instance.get_latest_materialization_event(dg.AssetKey(["tumours", name])) is not None, name

    def metadata(name):
        return instance.get_latest_materialization_event(dg.AssetKey(["tumours", name])).asset_materialization.metadata

    raw = metadata("raw")
    assert raw[handoffs.ROW_COUNT].value == n_rows
    assert sum(handoffs.read_rows_per_day(raw).values()) == n_rows
    assert metadata("model_evaluation")["holdout_roc_auc"].value > 0.9
    # promoted: the registry's champion is the version that scored the last day
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri())
    champion = client.get_model_version_by_alias("tumours_model", "champion").version
    last_day = f"2026-03-{days:02d}"
    assert handoffs.read_scored_version(metadata("batch_predictions")) == str(champion)
    with duckdb.connect(str(settings.duckdb_path()), read_only=True) as con:
        scored = con.execute("SELECT count(*) FROM predictions.tumours WHERE CAST(visit_ts AS DATE) = ?",
                             [dt.date.fromisoformat(last_day)]).fetchone()[0]
    assert scored == sum(1 for i in range(n_rows) if i % days == days - 1)  # the last day's rows
    drift = metadata("drift_report")
    assert drift["current_day"].value == last_day
    assert drift["model_version"].value == str(champion)
    assert drift["report_url"].value.endswith(f"drift_report_{last_day}.json.gz")  # the compact snapshot
    # the churn chain was not part of this job
    assert instance.get_latest_materialization_event(dg.AssetKey(["churn", "raw"])) is None
