"""`dg scaffold defs mlops_assets.components.UseCase <name> --task ...`: the skeleton of each task
type is a valid use case with the task's defaults, its dbt feature model takes the target from the
label files, and no dbt test requires the target that those files fill in later."""
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlops_assets.components.scaffold import ScaffoldParams, dbt_files, defs_yaml, scaffold_use_case
from mlops_assets.use_cases import config

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TASKS = ["binary", "multiclass", "regression"]


def _target_tests(schema_yml: str, target: str = "label") -> list:
    """The dbt tests on the target column, in every model of a schema.yml."""
    tests = []
    for model in yaml.safe_load(schema_yml)["models"]:
        for column in model.get("columns", []):
            if column["name"] == target:
                tests += column.get("data_tests") or []
    return tests


@pytest.mark.parametrize("task", TASKS)
def test_each_task_gets_its_defaults_and_no_not_null_on_the_target(task):
    attrs = yaml.safe_load(defs_yaml("sales", task))["attributes"]
    uc = config.UseCase(**attrs)
    assert uc.task == task
    assert uc.labels is not None and uc.labels.folder == "sales_labels"
    expected_metric = None if task == "binary" else config.TASK_METRICS[task][0]
    assert uc.thresholds.primary_metric == expected_metric
    assert config.primary_bounds(task, uc.thresholds).metric == config.TASK_METRICS[task][0]

    files = dbt_files("sales", task)
    tests = _target_tests(files["schema.yml"])
    assert "not_null" not in tests
    if task == "binary":
        assert tests == [{"accepted_values": {"arguments": {"values": [0, 1]}}}]
    else:
        assert tests == []
    # the label files' outcome joins the rows; without a labels table yet, the landing target alone
    features = files["features_sales.sql"]
    assert "source('labels', 'sales')" in features and "load_relation(labels_source)" in features
    assert "coalesce(l.label, s.label)" in features
    sources = {s["name"]: s for s in yaml.safe_load(files["sources.yml"])["sources"]}
    assert [t["name"] for t in sources["labels"]["tables"]] == ["sales"]
    cast = {"binary": "integer", "multiclass": "type_text()", "regression": "type_double()"}[task]
    assert cast in features.split("coalesce(l.label, s.label)")[1].splitlines()[0]


def test_without_label_files():
    attrs = yaml.safe_load(defs_yaml("sales", "regression", labels=False))["attributes"]
    assert config.UseCase(**attrs).labels is None
    files = dbt_files("sales", "regression", labels=False)
    assert "labels" not in files["features_sales.sql"].replace("labelled", "")
    assert [s["name"] for s in yaml.safe_load(files["sources.yml"])["sources"]] == ["raw"]
    assert "not_null" not in _target_tests(files["schema.yml"])


def test_the_binary_default_is_unchanged_apart_from_the_labels():
    assert ScaffoldParams() == ScaffoldParams(task="binary", labels=True)
    uc = config.UseCase(**yaml.safe_load(defs_yaml("fraud"))["attributes"])
    assert uc.task == "binary" and uc.thresholds == config.Thresholds()


def test_an_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="task 'ranking'"):
        scaffold_use_case(tmp_path / "defs" / "x", tmp_path / "models", "x", task="ranking")


def _project_copy(tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project)
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", "dbt_packages", ".user.yml")
    for folder in ("mlops_assets", "dbt_project"):
        shutil.copytree(REPO / folder, project / folder, ignore=ignore)
    return project


@pytest.mark.integration
def test_dg_scaffold_regression_builds_on_rows_without_labels(tmp_path):
    """`dg scaffold ... --task regression` in a copy of the project, then `dbt build` of the
    skeleton's models on rows that landed without their target, some of whose labels arrived:
    the build and its tests pass, and the labelled rows carry the label file's number."""
    import duckdb

    project = _project_copy(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1", "DO_NOT_TRACK": "1"}
    proc = subprocess.run([str(BIN / "dg"), "scaffold", "defs", "mlops_assets.components.UseCase", "sales",
                           "--task", "regression"], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = (project / "mlops_assets" / "defs" / "sales" / "defs.yaml").read_text()
    assert written == defs_yaml("sales", "regression")
    for name, text in dbt_files("sales", "regression").items():
        assert (project / "dbt_project" / "models" / "sales" / name).read_text() == text

    day = dt.datetime(2026, 3, 2)
    rows = pd.DataFrame({
        "entity_id": [f"E{i}" for i in range(6)],
        "event_ts": [day + dt.timedelta(hours=i) for i in range(6)],
        "feature_1": [1.0, 2, 3, 4, 5, 6], "feature_2": [0.5] * 6, "segment": ["A", "b ", "A", "B", "a", "b"],
        "label": [None] * 6,  # the outcome comes later
        "_source_file": "sales_2026-03-02.csv", "_loaded_at": dt.datetime(2026, 3, 3)})
    label_rows = rows[["entity_id", "event_ts"]].head(4).assign(label=[3.5, 0.0, 12.25, 7.0])
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("landed", rows)
        con.register("label_rows", label_rows)
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA labels")
        con.execute("CREATE TABLE raw.sales AS SELECT * REPLACE (CAST(label AS DOUBLE) AS label, "
                    "CAST(event_ts AS TIMESTAMP) AS event_ts, CAST(_loaded_at AS TIMESTAMP) AS _loaded_at) FROM landed")
        con.execute("CREATE TABLE labels.sales AS SELECT * REPLACE (CAST(event_ts AS TIMESTAMP) AS event_ts) FROM label_rows")
    dbt_dir = project / "dbt_project"
    proc = subprocess.run([str(BIN / "dbt"), "build", "--select", "path:models/sales", "--project-dir", str(dbt_dir),
                           "--profiles-dir", str(dbt_dir)], cwd=dbt_dir, capture_output=True, text=True, timeout=300,
                          env={**env, "MLOPS_DUCKDB_PATH": str(db), "MLOPS_DBT_TARGET": "local"})
    assert proc.returncode == 0, proc.stdout[-4000:]
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute("SELECT entity_id, label, segment FROM main.features_sales ORDER BY entity_id").fetchall()
    assert got == [("E0", 3.5, "a"), ("E1", 0.0, "b"), ("E2", 12.25, "a"), ("E3", 7.0, "b"), ("E4", None, "a"),
                   ("E5", None, "b")]
