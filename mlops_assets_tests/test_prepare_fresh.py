"""`mlops-assets prepare` parses the dbt project only when its manifest no longer describes it:
a dbt file changed, added or removed, another target, or other profile values."""
import os
import time

from mlops_assets.chain.dbt_freshness import STAMP, manifest_freshness, manifest_state, write_stamp

ENV = {"MLOPS_DUCKDB_PATH": "/data/warehouse.duckdb"}


def _project(tmp_path):
    project = tmp_path / "dbt_project"
    (project / "models" / "churn").mkdir(parents=True)
    (project / "macros").mkdir()
    (project / "target").mkdir()
    (project / "dbt_project.yml").write_text("name: p\n")
    (project / "profiles.yml").write_text("p:\n  outputs:\n    local:\n      path: \"{{ env_var('MLOPS_DUCKDB_PATH') }}\"\n")
    (project / "models" / "churn" / "stg.sql").write_text("select 1 as a\n")
    (project / "macros" / "m.sql").write_text("{% macro m() %}1{% endmacro %}\n")
    return project


def _parse(project, target="local", env=ENV):
    """What prepare does around `dbt parse`: the state before, the manifest, the stamp."""
    state = manifest_state(project, project, target, env)
    manifest = project / "target" / "manifest.json"
    manifest.write_text("{}")
    _later(manifest)
    write_stamp(manifest, state)
    return manifest


def _later(path, seconds=5):
    t = time.time() + seconds
    os.utime(path, (t, t))


def test_a_manifest_made_from_the_files_as_they_are_is_fresh(tmp_path):
    project = _project(tmp_path)
    manifest = _parse(project)
    verdict = manifest_freshness(manifest, project, project, "local", ENV)
    assert verdict.fresh, verdict.reason
    assert (project / "target" / STAMP).exists()


def test_a_touched_model_makes_it_stale(tmp_path):
    project = _project(tmp_path)
    manifest = _parse(project)
    _later(project / "models" / "churn" / "stg.sql", seconds=10)
    verdict = manifest_freshness(manifest, project, project, "local", ENV)
    assert not verdict.fresh and verdict.reason == "models/churn/stg.sql changed since the manifest was made"


def test_a_new_file_makes_it_stale_even_with_an_old_time(tmp_path):
    project = _project(tmp_path)
    manifest = _parse(project)
    new = project / "tests" / "assert_x.sql"
    new.parent.mkdir()
    new.write_text("select 1 where false\n")
    os.utime(new, (0, 0))  # copied with its old time (cp -p): still a file the manifest lacks
    verdict = manifest_freshness(manifest, project, project, "local", ENV)
    assert not verdict.fresh and "added tests/assert_x.sql" in verdict.reason


def test_a_removed_file_makes_it_stale(tmp_path):
    project = _project(tmp_path)
    manifest = _parse(project)
    (project / "macros" / "m.sql").unlink()
    verdict = manifest_freshness(manifest, project, project, "local", ENV)
    assert not verdict.fresh and "removed macros/m.sql" in verdict.reason


def test_another_target_or_other_profile_values_make_it_stale(tmp_path):
    project = _project(tmp_path)
    manifest = _parse(project, target="local")
    other = manifest_freshness(manifest, project, project, "postgres", ENV)
    assert not other.fresh and "made for target 'local', not 'postgres'" in other.reason
    moved = manifest_freshness(manifest, project, project, "local", {"MLOPS_DUCKDB_PATH": "/elsewhere.duckdb"})
    assert not moved.fresh and "profile's values" in moved.reason
    # a variable profiles.yml does not read changes nothing
    assert manifest_freshness(manifest, project, project, "local", {**ENV, "UNRELATED": "1"}).fresh


def test_without_a_stamp_or_manifest_it_is_stale(tmp_path):
    project = _project(tmp_path)
    manifest = project / "target" / "manifest.json"
    assert "no manifest" in manifest_freshness(manifest, project, project, "local", ENV).reason
    manifest.write_text("{}")  # made by `dbt parse` run by hand: no stamp
    assert "no stamp" in manifest_freshness(manifest, project, project, "local", ENV).reason
    (project / "target" / STAMP).write_text("not json")
    assert "unreadable stamp" in manifest_freshness(manifest, project, project, "local", ENV).reason


def test_prepare_skips_dbt_parse_when_the_manifest_is_fresh(data_dir, dbt_manifest, capsys):
    import fcntl

    from mlops_assets import settings
    from mlops_assets.cli import prepare

    # the project's target/ is shared with other test processes: parse under their lock (conftest)
    with open(settings.DBT_PROJECT_DIR / "target" / ".tests-parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepare()  # the session's manifest may have been made with another data folder
        capsys.readouterr()
        assert prepare() == dbt_manifest
    out = capsys.readouterr()
    assert "skipped dbt parse" in out.err + out.out
