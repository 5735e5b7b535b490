"""A second use case added as data only: a YAML file in a folder named by MLOPS_USE_CASE_DIRS
and batch files from a data set scikit-learn ships. No platform code changes."""
import datetime as dt
import textwrap

import dagster as dg
import numpy as np
import pytest

pytestmark = pytest.mark.integration

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


def test_yaml_only_use_case_gets_its_own_chain(data_dir, tmp_path, monkeypatch, dbt_manifest):
    days = 12
    n_rows = _write_batches(data_dir / "landing" / "tumours", days)
    cases = tmp_path / "my_use_cases"
    cases.mkdir()
    (cases / "tumours.yaml").write_text(textwrap.dedent(f"""\
        name: tumours
        description: Benign or malignant, from scikit-learn's breast cancer data.
        first_day: 2026-03-01
        last_day: 2026-03-{days:02d}
        landing: {{folder: tumours, pattern: "visits_*.csv"}}
        entity_column: patient_id
        timestamp_column: visit_ts
        target_column: malignant
        features:
          dbt_model: null
          numeric: {FEATURES}
        model: {{family: logistic_regression, params: {{max_iter: 1000}}}}
        split: {{holdout_days: 3}}
        thresholds: {{min_roc_auc: 0.9, min_lift_over_baseline: 0.3, drift_share: 0.5}}
        """))
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(cases))

    from mlops_assets.definitions import build_defs

    defs = build_defs()
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    assert {"tumours/raw", "tumours/training_set", "tumours/candidate_model", "tumours/model_evaluation",
            "tumours/drift_report"} <= keys
    assert "churn/raw" in keys  # the demo is still there, untouched
    groups = {a.group_names_by_key[k] for k, a in repo.assets_defs_by_key.items() if k.path[0] == "tumours"}
    assert groups == {"tumours"}
    # a historical data set: its day partitions are exactly the days of the data
    keys = repo.get_job("tumours_daily").partitions_def.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2026-03-01", f"2026-03-{days:02d}", days)

    instance = dg.DagsterInstance.get()
    from mlops_assets.orchestrate import run_pipeline

    assert run_pipeline(only=["tumours"])
    raw = instance.get_latest_materialization_event(dg.AssetKey(["tumours", "raw"])).asset_materialization.metadata
    assert raw["dagster/row_count"].value == n_rows
    evaluation = instance.get_latest_materialization_event(
        dg.AssetKey(["tumours", "model_evaluation"])).asset_materialization.metadata
    assert evaluation["holdout_roc_auc"].value > 0.9
    # the churn chain was not part of this job
    assert instance.get_latest_materialization_event(dg.AssetKey(["churn", "raw"])) is None
