"""The use-case schema: identifiers, cron strings and day ranges are validated on load with
errors naming the file and field; bad files do not hide good ones; every field is documented."""
import copy
import datetime as dt
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml
from pydantic import BaseModel

from mlops_assets.chain.partitions import daily_partitions
from mlops_assets.use_cases.config import UseCase, UseCaseError
from mlops_assets.use_cases.fields import describe_fields, fields_markdown
from mlops_assets.use_cases.loader import get_use_case, load_use_case_set, load_use_cases
from mlops_assets.use_cases.loader import load as load_use_case

CHURN_YAML = Path(__file__).resolve().parent.parent / "mlops_assets" / "defs" / "churn" / "defs.yaml"
HOSTILE = 'x" AS VARCHAR)) FROM (SELECT 1); COPY (SELECT 1) TO \'/tmp/owned.csv\'; --'


def _churn() -> dict:
    return yaml.safe_load(CHURN_YAML.read_text())["attributes"]


def _write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set(data: dict, dotted: str, value) -> dict:
    data = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    if last.endswith("]"):  # e.g. numeric[0]
        last, index = last[:-1].split("[")
        node[last][int(index)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("field,loc", [
    ("entity_column", "entity_column"),
    ("timestamp_column", "timestamp_column"),
    ("target_column", "target_column"),
    ("features.numeric[2]", r"features\.numeric\.2"),
    ("features.categorical[0]", r"features\.categorical\.0"),
    ("slice_columns[1]", r"slice_columns\.1"),
    ("features.dbt_model", r"features\.dbt_model"),
    ("model.registered_name", r"model\.registered_name"),
])
@pytest.mark.parametrize("value", [HOSTILE, "has space", "1starts_with_digit", ""])
def test_identifiers_in_a_use_case_must_be_plain(tmp_path, field, loc, value):
    path = _write(tmp_path, "hostile", _set(_churn(), field, value))
    with pytest.raises(UseCaseError, match=rf"hostile\.yaml: invalid use case: {loc}: .*not a plain identifier") as err:
        load_use_case(path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize("cron", ["61 3 * * 1", "every monday", "0 3 * * 1 2027", "0 0 30 2 *", ""])
def test_a_bad_cron_names_the_file_and_field(tmp_path, cron):
    path = _write(tmp_path, "badcron", _set(_churn(), "retrain.cron", cron))
    with pytest.raises(UseCaseError, match=r"badcron\.yaml: invalid use case: retrain\.cron: .*not a valid cron string"):
        load_use_case(path)


def test_valid_crons_load(tmp_path):
    for cron in ["0 3 * * 1", "*/15 * * * *", "0 0 1 * *"]:
        assert load_use_case(_write(tmp_path, "ok", _set(_churn(), "retrain.cron", cron))).retrain.cron == cron


def test_last_day_bounds_the_partitions_and_must_follow_first_day(tmp_path):
    uc = load_use_case(_write(tmp_path, "hist", {**_churn(), "first_day": "2019-03-01", "last_day": "2019-03-10"}))
    keys = daily_partitions(uc).get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2019-03-01", "2019-03-10", 10)

    with pytest.raises(UseCaseError, match=r"backwards\.yaml: .*last_day 2019-02-01 is before first_day 2019-03-01"):
        load_use_case(_write(tmp_path, "backwards", {**_churn(), "first_day": "2019-03-01", "last_day": "2019-02-01"}))


def test_without_last_day_partitions_run_to_today():
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert uc.last_day is None
    keys = daily_partitions(uc).get_partition_keys()
    assert keys[0] == uc.first_day.isoformat()
    assert keys[-1] == dt.datetime.now(dt.timezone.utc).date().isoformat()
    # a last day still in the future stops at today too: no partitions for days without data yet
    future = uc.model_copy(update={"last_day": dt.date.today() + dt.timedelta(days=30)})
    assert daily_partitions(future).get_partition_keys()[-1] == keys[-1]


def test_demo_partitions_start_where_the_simulator_starts():
    from mlops_assets.simulate.churn import SimulationConfig

    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    assert uc.first_day == SimulationConfig().start_date


def test_one_bad_file_does_not_hide_the_good_ones(tmp_path, caplog):
    good = _set(_set(_churn(), "name", "good_one"), "features.dbt_model", None)
    _write(tmp_path, "good", good)
    _write(tmp_path, "bad", _set(_set(_churn(), "name", "bad_one"), "target_column", "churned; drop"))
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "zz_again.yaml").write_text(yaml.safe_dump(good))  # same name as good.yaml

    loaded = load_use_case_set([tmp_path])
    assert [uc.name for uc in loaded.use_cases] == ["good_one"]
    errors = {Path(i.path).name: i.error for i in loaded.invalid}
    assert set(errors) == {"bad.yaml", "latin1.yaml", "zz_again.yaml"}
    assert "target_column" in errors["bad.yaml"] and str(tmp_path / "bad.yaml") in errors["bad.yaml"]
    assert "UTF-8" in errors["latin1.yaml"]
    assert "already defined in" in errors["zz_again.yaml"] and "good.yaml" in errors["zz_again.yaml"]

    with caplog.at_level("ERROR"):
        assert [uc.name for uc in load_use_cases([tmp_path])] == ["good_one"]
    assert "bad.yaml" in caplog.text
    with pytest.raises(UseCaseError, match=r"bad\.yaml.*target_column"):
        load_use_cases([tmp_path], strict=True)

    assert get_use_case("good_one", [tmp_path]).name == "good_one"
    with pytest.raises(UseCaseError, match=r"unknown use case 'bad_one'.*files that failed to load: .*bad\.yaml"):
        get_use_case("bad_one", [tmp_path])


def test_a_missing_use_case_folder_is_reported_not_fatal(tmp_path):
    loaded = load_use_case_set([tmp_path / "nope"])
    assert loaded.use_cases == [] and "does not exist" in loaded.invalid[0].error


def _schema_fields(model=UseCase, prefix=""):
    out = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        out.append(prefix + name)
        ann = field.annotation
        ann = next((a for a in getattr(ann, "__args__", ()) if a is not type(None)), ann)  # an optional section
        if isinstance(ann, type) and issubclass(ann, BaseModel):  # a nested section
            out += _schema_fields(ann, prefix + name + ".")
    return out


def test_every_field_is_documented_with_its_default():
    docs = {f.path: f for f in describe_fields()}
    assert list(docs) == _schema_fields()
    undocumented = [p for p, f in docs.items() if not f.description.strip()]
    assert undocumented == []
    assert docs["thresholds.drift_share"].default == str(UseCase.model_fields["thresholds"].default_factory().drift_share)
    assert docs["retrain.cron"].default == "0 3 * * 1" and docs["retrain.cron"].type == "cron string"
    assert docs["entity_column"].required and docs["entity_column"].type == "identifier"
    assert docs["last_day"].default == "null" and not docs["last_day"].required
    table = fields_markdown()
    assert table.count("\n") == len(docs) + 1 and "`thresholds.min_roc_auc` | number | `0.6`" in table


def test_dagster_deprecations_are_errors_in_tests_and_previews_are_not():
    """pyproject's filterwarnings: a deprecated Dagster API called from project code or tests fails."""
    with pytest.raises(DeprecationWarning, match="partitions_def"):
        dg.define_asset_job("x", selection="*", partitions_def=dg.DailyPartitionsDefinition(start_date="2026-01-01"))
    with warnings.catch_warnings(record=True):  # preview, used on purpose: must not raise
        dg.AssetCheckSpec("c", asset="a", partitions_def=dg.DailyPartitionsDefinition(start_date="2026-01-01"))
