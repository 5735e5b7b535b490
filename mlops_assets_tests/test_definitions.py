"""The code location: loads with current Dagster APIs, and a bad use-case file is shown as a
failing asset that names the file and field instead of taking every use case down."""
import textwrap
import warnings

import dagster as dg
import pytest

GOOD = textwrap.dedent("""\
    name: tumours
    first_day: 2026-03-01
    last_day: 2026-03-12
    landing: {folder: tumours}
    entity_column: patient_id
    timestamp_column: visit_ts
    target_column: malignant
    features: {dbt_model: null, numeric: [mean_radius, mean_texture]}
    """)


@pytest.fixture
def cases(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "my_use_cases"
    folder.mkdir()
    (folder / "tumours.yaml").write_text(GOOD)
    (folder / "broken-one.yaml").write_text(GOOD.replace("name: tumours", "name: broken")
                                           .replace("target_column: malignant", 'target_column: "malignant; drop"'))
    (folder / "bad_cron.yaml").write_text(GOOD.replace("name: tumours", "name: bad_cron")
                                          + "retrain: {cron: 'every monday'}\n")
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(folder))
    return folder


def test_a_bad_use_case_file_is_shown_and_the_good_ones_load(cases, dbt_manifest):
    from mlops_assets.definitions import build_defs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs()
    deprecated = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)
                  and "is deprecated and will be removed" in str(w.message)]
    assert deprecated == []

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    assert {"tumours/raw", "tumours/training_set", "tumours/candidate_model", "tumours/model_evaluation",
            "tumours/champion_model", "tumours/batch_predictions", "tumours/drift_report"} <= keys
    assert {"churn/raw", "demand/raw", "demand/performance_report"} <= keys  # the shipped demo use cases
    assert {k for k in keys if k.startswith("invalid_use_case/")} == {"invalid_use_case/broken_one",
                                                                      "invalid_use_case/bad_cron"}
    assert not any(k.startswith(("broken/", "bad_cron/")) for k in keys)

    broken = repo.assets_defs_by_key[dg.AssetKey(["invalid_use_case", "broken_one"])]
    description = broken.descriptions_by_key[broken.key]
    assert str(cases / "broken-one.yaml") in description and "target_column" in description
    cron = repo.assets_defs_by_key[dg.AssetKey(["invalid_use_case", "bad_cron"])]
    assert "retrain.cron" in cron.descriptions_by_key[cron.key]

    # the good use case's partitions end on its last_day; the job takes them from its assets
    daily = repo.get_job("tumours_daily")
    assert daily.partitions_def.get_partition_keys()[-1] == "2026-03-12"

    # materializing the stand-in fails with the error, so the UI shows it as a failed run
    result = dg.materialize([broken], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "target_column" in str(failure.step_failure_data.user_failure_data.description)


def test_rollback_of_another_use_case_is_not_blocked_by_a_bad_file(cases):
    """Before, any bad file made every command that loads use cases refuse; now the command
    reaches the registry (which has no champion for churn here, and says so)."""
    from mlops_assets.cli import rollback_champion

    with pytest.raises(SystemExit, match="rollback refused") as err:
        rollback_champion("churn", None)
    assert "churn_model" in str(err.value)
