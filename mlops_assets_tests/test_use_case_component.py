"""A use case is a Dagster component (mlops_assets.components.UseCase): its attributes, its
errors, per-environment overrides, the scaffolder, and the `dg` / `dagster` command lines."""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from pydantic import BaseModel

from mlops_assets.components import UseCase as UseCaseComponent
from mlops_assets.components.scaffold import dbt_files, defs_yaml, scaffold_use_case
from mlops_assets.components.use_case import InvalidUseCaseFile
from mlops_assets.use_cases import config
from mlops_assets.use_cases.config import UseCaseError
from mlops_assets.use_cases.loader import DEFS_DIR, OVERRIDES_ENV, load, load_use_cases

REPO = Path(__file__).resolve().parent.parent
CHURN_DEFS = DEFS_DIR / "churn" / "defs.yaml"
BIN = Path(sys.executable).parent
HEAVY = ("sklearn", "mlflow", "evidently", "pandas", "numpy")  # imported by steps, never by loading


def _attributes(path: Path = CHURN_DEFS) -> dict:
    return yaml.safe_load(path.read_text())["attributes"]


def _field_names(model: type[BaseModel]) -> dict:
    """Field name -> nested field names (or None), recursively."""
    out = {}
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        ann = info.annotation
        out[name] = _field_names(ann) if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return out


def _component_file(folder: Path, attrs: dict) -> Path:
    (folder / "churn").mkdir(parents=True, exist_ok=True)
    path = folder / "churn" / "defs.yaml"
    path.write_text(yaml.safe_dump({"type": "mlops_assets.components.UseCase", "attributes": attrs}))
    return path


def test_the_component_is_the_use_case_schema():
    """One schema: the component class is the use-case class with Dagster's behaviour added."""
    assert issubclass(UseCaseComponent, config.UseCase) and issubclass(UseCaseComponent, dg.Component)
    assert _field_names(UseCaseComponent) == _field_names(config.UseCase)
    same = {n: repr(f) for n, f in config.UseCase.model_fields.items()}
    assert {n: repr(f) for n, f in UseCaseComponent.model_fields.items()} == same  # types, defaults, bounds
    # the schema is Resolvable as it stands: Dagster derives its YAML model from the same fields
    assert set(config.UseCase.model().model_fields) == set(config.UseCase.model_fields)
    # what Dagster checks before the component's code runs is any mapping; the loader checks the rest
    UseCaseComponent.get_model_cls().model_validate({"name": 3, "no_such_field": {}})


def test_the_demo_is_one_defs_yaml_of_the_component():
    raw = yaml.safe_load(CHURN_DEFS.read_text())
    assert raw["type"] == "mlops_assets.components.UseCase"
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert Path(uc.source_file) == CHURN_DEFS
    component = UseCaseComponent.from_file(CHURN_DEFS)
    assert isinstance(component, UseCaseComponent) and component.source_file == str(CHURN_DEFS)
    resolved = UseCaseComponent.resolve_from_dict(raw["attributes"])  # Dagster's own resolution agrees
    assert component.model_dump() == resolved.model_dump() == uc.model_dump() == load(CHURN_DEFS).model_dump()
    assert uc.thresholds.min_roc_auc == 0.70 and uc.first_day == dt.date(2026, 1, 1)


def test_an_invalid_attribute_names_the_defs_yaml_and_the_field(tmp_path, monkeypatch):
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    attrs = _attributes()
    attrs["thresholds"]["min_roc_auc"] = 1.5
    path = _component_file(tmp_path, attrs)
    with pytest.raises(UseCaseError, match=r"churn/defs\.yaml: invalid use case: thresholds\.min_roc_auc"):
        load(path)
    component = UseCaseComponent.from_file(path)
    assert isinstance(component, InvalidUseCaseFile)
    assert component.invalid.path == str(path) and "thresholds.min_roc_auc" in component.invalid.error
    attrs = _attributes()
    attrs["slice_columns"] = ["age"]
    with pytest.raises(UseCaseError, match=r"defs\.yaml.*slice_columns"):
        load(_component_file(tmp_path, attrs))


def test_overrides_deep_merge_per_environment(tmp_path, monkeypatch):
    overrides = tmp_path / "ci.yaml"
    overrides.write_text("churn: {thresholds: {min_roc_auc: 0.8}, retrain: {on_drift: false}}\n")
    monkeypatch.setenv(OVERRIDES_ENV, str(overrides))
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert uc.thresholds.min_roc_auc == 0.8
    assert uc.thresholds.min_lift_over_baseline == 0.10  # the rest of the file's thresholds stay
    assert uc.retrain.on_drift is False and uc.retrain.min_new_rows == 5000
    # the component loads through the same loader, overrides included
    assert UseCaseComponent.from_file(CHURN_DEFS).thresholds.min_roc_auc == 0.8

    overrides.write_text("churn: {thresholds: {min_roc_auc: 2}}\n")
    with pytest.raises(UseCaseError, match=r"churn/defs\.yaml: invalid use case \(with overrides from .*ci\.yaml\)"):
        load_use_cases(strict=True)
    assert [u.name for u in load_use_cases()] == ["demand"]  # churn left out (and logged), never half-applied
    overrides.write_text("chrun: {thresholds: {min_roc_auc: 0.8}}\n")
    with pytest.raises(UseCaseError, match=r"ci\.yaml: overrides for unknown use case\(s\) \['chrun'\]"):
        load_use_cases(strict=True)


def test_use_case_dirs_take_defs_yaml_folders_with_env_templates(tmp_path, monkeypatch):
    attrs = _attributes()
    attrs.update(name="churn_eu", landing={"folder": "churn_eu", "poll_seconds": "{{ env.MLOPS_UC_EU_POLL }}"})
    attrs["features"]["dbt_model"] = None
    (tmp_path / "churn_eu").mkdir()
    (tmp_path / "churn_eu" / "defs.yaml").write_text(
        yaml.safe_dump({"type": "mlops_assets.components.UseCase", "attributes": attrs}))
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(tmp_path))
    monkeypatch.setenv("MLOPS_UC_EU_POLL", "12")
    ucs = {u.name: u for u in load_use_cases()}
    assert set(ucs) == {"churn", "demand", "churn_eu"}
    assert ucs["churn_eu"].landing.poll_seconds == 12


def test_scaffolded_defs_yaml_has_every_field_with_its_default():
    text = defs_yaml("fraud")
    raw = yaml.safe_load(text)
    assert raw["type"] == "mlops_assets.components.UseCase"
    attrs = raw["attributes"]

    def present(names: dict, values: dict, where: str):
        for name, nested in names.items():
            assert name in values, f"{where}{name} missing from the skeleton"
            if nested:
                present(nested, values[name], f"{where}{name}.")

    present(_field_names(config.UseCase), attrs, "")
    uc = config.UseCase(**attrs)
    assert uc.thresholds == config.Thresholds() and uc.retrain == config.RetrainConfig()
    assert uc.features.dbt_model == "features_fraud"
    files = dbt_files("fraud")
    assert set(files) == {"sources.yml", "schema.yml", "stg_fraud.sql", "features_fraud.sql"}
    for model, ts in (("stg_fraud.sql", "event_ts"), ("features_fraud.sql", "s.event_ts")):
        assert f"{{{{ in_window('{ts}') }}}}" in files[model] and "event_date" in files[model]
    assert "{{ source('raw', 'fraud') }}" in files["stg_fraud.sql"]


def test_scaffold_refuses_bad_names_and_existing_files(tmp_path):
    with pytest.raises(ValueError, match="lower-case"):
        scaffold_use_case(tmp_path / "defs" / "Fraud", tmp_path / "models", "Fraud")
    written = scaffold_use_case(tmp_path / "defs" / "fraud", tmp_path / "models", "fraud")
    assert len(written) == 5 and all(p.exists() for p in written)
    with pytest.raises(FileExistsError, match="defs.yaml"):
        scaffold_use_case(tmp_path / "defs" / "fraud", tmp_path / "models", "fraud")


def _run(args: list, cwd: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.integration
def test_dg_scaffold_then_check_and_list_defs(tmp_path, data_dir):
    """In a copy of the project: `dg scaffold defs` a use case, build the manifest, and `dg check
    defs` / `dg list defs` load it beside the demo without importing the heavy libraries."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project)
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", "dbt_packages", ".user.yml")
    for folder in ("mlops_assets", "dbt_project"):
        shutil.copytree(REPO / folder, project / folder, ignore=ignore)
    # the copy's package shadows the installed one: `python -m` and dg put the project first
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1"}

    _run([BIN / "dg", "scaffold", "defs", "mlops_assets.components.UseCase", "fraud"], project, env)
    assert (project / "mlops_assets" / "defs" / "fraud" / "defs.yaml").read_text() == defs_yaml("fraud")
    for name, text in dbt_files("fraud").items():
        assert (project / "dbt_project" / "models" / "fraud" / name).read_text() == text

    _run([sys.executable, "-m", "mlops_assets.cli", "prepare"], project, env)
    check = _run([BIN / "dg", "check", "defs"], project, env)
    assert "All definitions loaded successfully" in check.stdout + check.stderr
    listed = json.loads(_run([BIN / "dg", "list", "defs", "--json"], project, env).stdout)
    keys = {a["asset_key"] for a in listed["assets"]}
    for uc in ("churn", "fraud"):
        assert {f"{uc}/raw", f"{uc}/features_{uc}", f"{uc}/training_set", f"{uc}/model_evaluation",
                f"{uc}/champion_model", f"{uc}/batch_predictions", f"{uc}/drift_report"} <= keys
    assert {"churn_daily", "churn_training", "fraud_daily", "fraud_training"} <= {j["name"] for j in listed["jobs"]}
    assert {"fraud_landing_sensor", "fraud_retrain_sensor"} <= {s["name"] for s in listed["sensors"]}

    code = ("import sys, mlops_assets.definitions; "
            f"sys.exit(','.join(m for m in {HEAVY!r} if m in sys.modules) or None)")
    _run([sys.executable, "-c", code], project, env)


@pytest.mark.integration
def test_dg_launch_and_dagster_asset_materialize(data_dir, dbt_manifest):
    """The README's CI commands: `dg launch --assets` and `dagster asset materialize` each
    build a day of raw data and dbt features."""
    import dagster as dg

    from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

    write_days(data_dir / "landing" / "churn", day_range(dt.date(2026, 1, 1), 2), SimulationConfig(rows_per_day=50))
    env = {**os.environ, "NO_COLOR": "1"}
    select = "churn/raw,churn/stg_churn,churn/features_churn"
    _run([BIN / "dg", "launch", "--assets", select, "--partition", "2026-01-01"], REPO, env)
    _run([BIN / "dagster", "asset", "materialize", "-m", "mlops_assets.definitions",
          "--select", select, "--partition", "2026-01-02"], REPO, env)

    instance = dg.DagsterInstance.get()
    for name in ("raw", "features_churn"):
        assert instance.get_materialized_partitions(dg.AssetKey(["churn", name])) == {"2026-01-01", "2026-01-02"}
    import duckdb

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT event_date, count(*) FROM main.features_churn GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [(dt.date(2026, 1, 1), 50), (dt.date(2026, 1, 2), 50)]


def test_code_location_loads_from_the_defs_folder_without_deprecation_warnings(data_dir, dbt_manifest):
    import warnings

    import dagster as dg

    from mlops_assets.definitions import build_defs

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        defs = build_defs()
        job = defs.resolve_job_def("churn_daily")
    assert job.partitions_def is not None  # inferred from the assets, not passed to define_asset_job
    sensors = {s.name for s in defs.get_repository_def().sensor_defs}
    assert {"automation", "churn_landing_sensor", "churn_retrain_sensor"} <= sensors
    assert isinstance(defs.resolve_assets_def(dg.AssetKey(["churn", "features_churn"])), dg.AssetsDefinition)


def test_a_dbt_model_missing_from_the_manifest_is_named(dbt_manifest):
    from mlops_assets.chain.build import dbt_assets_of

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert len(dbt_assets_of(uc)) == 1
    missing = uc.model_copy(update={"features": uc.features.model_copy(update={"dbt_model": "features_nope"})})
    with pytest.raises(ValueError, match=r"churn/defs\.yaml: features\.dbt_model 'features_nope' is not a model "
                                         r"under dbt_project/models/churn/.*mlops-assets prepare"):
        dbt_assets_of(missing)


def test_an_invalid_defs_yaml_becomes_a_failing_asset_not_a_broken_location(tmp_path, monkeypatch):
    """A defs.yaml whose values break a rule builds one failing asset that names the file and
    the field, so the other use cases of the location still load."""
    from mlops_assets.chain.build import INVALID_GROUP

    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    attrs = _attributes()
    attrs["thresholds"] = {**attrs.get("thresholds", {}), "min_roc_auc": 3}
    context = dg.ComponentTree.for_test().load_context
    defs = UseCaseComponent.from_file(_component_file(tmp_path, attrs)).build_defs(context)
    (asset,) = defs.assets
    assert asset.key.path[0] == "invalid_use_case" and asset.group_names_by_key[asset.key] == INVALID_GROUP
    description = asset.descriptions_by_key[asset.key]
    assert "defs.yaml" in description and "thresholds.min_roc_auc" in description
    result = dg.materialize([asset], raise_on_error=False)
    assert not result.success
