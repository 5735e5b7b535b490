"""Templates in use-case files read MLOPS_UC_* environment variables and nothing else: no
secrets from the environment, no files, no modules. Both places a use case comes from are
covered: the defs folder as Dagster loads it (a throwaway dg project), and MLOPS_USE_CASE_DIRS."""
import os
import textwrap
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from jinja2.nativetypes import NativeTemplate

from mlops_assets.use_cases.config import UseCaseError
from mlops_assets.use_cases.loader import load_use_case_set
from mlops_assets.use_cases.templates import render

SECRET = "s3cret-token-value"
HOSTNAME = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
# The payloads seen: a walk of ''.__class__.__mro__ to builtins that reads a file and calls
# os.getpid(), a module reached through Jinja's globals, and an environment secret.
MRO_WALK = ("{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
            "{{ c()._module.__builtins__['open']('/etc/hostname').read().strip() }}-"
            "{{ c()._module.__builtins__['__import__']('os').getpid() }}{% endif %}{% endfor %}")
MRO_EXPR = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
FILE_READ = "{{ lipsum.__globals__['__builtins__']['open']('/etc/hostname').read() }}"
MODULE = "{{ lipsum.__globals__['os'].getpid() }}"
ENV_SECRET = "{{ env.MY_SECRET_TOKEN }}"
ENV_SECRET_CALL = "{{ env('MY_SECRET_TOKEN') }}"
PAYLOADS = {"mro_walk": MRO_WALK, "mro_expr": MRO_EXPR, "file_read": FILE_READ, "module": MODULE,
            "env_secret": ENV_SECRET, "env_secret_call": ENV_SECRET_CALL}


def _fields(name: str, description: str = "a use case", poll: str | int = 10) -> dict:
    return {"name": name, "description": description, "first_day": "2026-03-01", "last_day": "2026-03-05",
            "landing": {"folder": name, "poll_seconds": poll}, "entity_column": "patient_id",
            "timestamp_column": "visit_ts", "target_column": "malignant",
            "features": {"dbt_model": None, "numeric": ["mean_radius", "mean_texture"]}}


def _component(fields: dict, **extra) -> str:
    return yaml.safe_dump({"type": "mlops_assets.components.UseCase", "attributes": fields, **extra})


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("MY_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("MLOPS_UC_POLL", "17")
    monkeypatch.setenv("MLOPS_UC_TEAM", "oncology")
    monkeypatch.delenv("MLOPS_USE_CASE_OVERRIDES", raising=False)


def test_the_payloads_are_real_under_plain_jinja(env):
    """What Dagster's renderer (an unsandboxed NativeTemplate) makes of them: the leak itself."""
    out = str(NativeTemplate(MRO_WALK).render())
    assert out == f"{HOSTNAME}-{os.getpid()}"
    assert str(NativeTemplate(MODULE).render()) == str(os.getpid())
    from dagster.components.resolved.scopes import EnvScope

    assert NativeTemplate(ENV_SECRET).render(env=EnvScope()) == SECRET


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_render_refuses_every_payload_naming_file_and_field(env, kind):
    with pytest.raises(UseCaseError, match=r"^uc\.yaml: field attributes\.description: ") as err:
        render({"attributes": {"description": PAYLOADS[kind]}}, "uc.yaml")
    assert SECRET not in str(err.value) and str(os.getpid()) not in str(err.value)


@pytest.mark.parametrize("text", ["{% if true %}x{% endif %}", "{# note #}", "{{ env.MLOPS_UC_POLL", "{{ env['MLOPS_UC_POLL'] }}",
                                  "{{ env.MLOPS_UC_POLL | upper }}", "{{ env.MLOPS_UC_POLL.__class__ }}",
                                  "{{ env('MLOPS_UC_POLL', lipsum) }}", "{{ env.MLOPS_WAREHOUSE_PG_PASSWORD }}"])
def test_render_refuses_anything_but_an_allowed_variable(env, text):
    with pytest.raises(UseCaseError, match=r"field landing\.folder"):
        render({"landing": {"folder": text}}, "uc.yaml")


def test_render_takes_allowed_variables(env, monkeypatch):
    assert render({"a": "{{ env.MLOPS_UC_POLL }}", "b": ["x-{{ env('MLOPS_UC_TEAM') }}-{{env.MLOPS_UC_POLL}}"],
                   "c": "{{ env('MLOPS_UC_UNSET', 'dflt') }}", "d": "{{ env.MLOPS_UC_UNSET }}", "e": "plain }} text"},
                  "uc.yaml") == {"a": "17", "b": ["x-oncology-17"], "c": "dflt", "d": None, "e": "plain }} text"}
    with pytest.raises(UseCaseError, match=r"field a: the environment variable MLOPS_UC_UNSET is not set"):
        render({"a": "{{ env('MLOPS_UC_UNSET') }}"}, "uc.yaml")
    monkeypatch.setenv("MLOPS_UC_NESTED", "{{ env.MY_SECRET_TOKEN }}")  # a value is never rendered again
    with pytest.raises(UseCaseError, match=r"field a: the environment variable MLOPS_UC_NESTED holds template syntax"):
        render({"a": "{{ env.MLOPS_UC_NESTED }}"}, "uc.yaml")
    with pytest.raises(UseCaseError, match=r"field template_vars_module: not allowed"):
        render({"type": "x", "template_vars_module": ".vars"}, "uc.yaml")


# -- MLOPS_USE_CASE_DIRS -------------------------------------------------------------------------

def _use_case_dir(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / "dirs"
    (folder / "good").mkdir(parents=True)
    (folder / "good" / "defs.yaml").write_text(_component(_fields("good", "team {{ env.MLOPS_UC_TEAM }}",
                                                                  "{{ env.MLOPS_UC_POLL }}")))
    (folder / "plain.yaml").write_text(yaml.safe_dump(_fields("plain", "{{ env('MLOPS_UC_TEAM') }}")))
    (folder / "evil").mkdir()
    (folder / "evil" / "defs.yaml").write_text(_component(_fields("evil", PAYLOADS[kind])))
    (folder / "evil_plain.yaml").write_text(yaml.safe_dump(_fields("evil_plain", PAYLOADS[kind])))
    (folder / "evil_post").mkdir()
    (folder / "evil_post" / "defs.yaml").write_text(_component(
        _fields("evil_post"), post_processing={"assets": [{"target": "*", "attributes": {"description": PAYLOADS[kind]}}]}))
    return folder


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_use_case_dirs_refuse_the_payloads_and_load_the_others(env, tmp_path, kind):
    folder = _use_case_dir(tmp_path, kind)
    loaded = load_use_case_set(dirs=[folder])
    ucs = {uc.name: uc for uc in loaded.use_cases}
    assert set(ucs) == {"good", "plain"}
    assert ucs["good"].description == "team oncology" and ucs["good"].landing.poll_seconds == 17
    assert ucs["plain"].description == "oncology"
    errors = {Path(b.path).relative_to(folder).as_posix(): b.error for b in loaded.invalid}
    assert set(errors) == {"evil/defs.yaml", "evil_plain.yaml", "evil_post/defs.yaml"}
    assert f"{folder / 'evil' / 'defs.yaml'}: field attributes.description:" in errors["evil/defs.yaml"]
    assert f"{folder / 'evil_plain.yaml'}: field description:" in errors["evil_plain.yaml"]
    assert "field post_processing.assets[0].attributes.description" in errors["evil_post/defs.yaml"]
    for uc in ucs.values():
        assert SECRET not in uc.model_dump_json() and HOSTNAME not in uc.description


def test_the_code_location_shows_a_hostile_use_case_dir_file_as_a_failing_asset(env, tmp_path, monkeypatch, data_dir,
                                                                               dbt_manifest):
    folder = _use_case_dir(tmp_path, "mro_walk")
    monkeypatch.setenv("MLOPS_USE_CASE_DIRS", str(folder))
    from mlops_assets.definitions import build_defs

    repo = build_defs().get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    assert {"good/raw", "plain/raw", "churn/raw"} <= keys
    assert {"invalid_use_case/evil", "invalid_use_case/evil_plain", "invalid_use_case/evil_post"} <= keys
    evil = repo.assets_defs_by_key[dg.AssetKey(["invalid_use_case", "evil"])]
    assert "field attributes.description" in evil.descriptions_by_key[evil.key]


# -- the defs folder, as Dagster's component loader reads it ----------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throwaway dg project whose defs folder holds use-case components."""
    pkg = f"uc_templates_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    (root / pkg / "defs").mkdir(parents=True)
    (root / pkg / "__init__.py").write_text("")
    (root / pkg / "defs" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "{pkg}"
        version = "0"
        [tool.dg]
        directory_type = "project"
        [tool.dg.project]
        root_module = "{pkg}"
        defs_module = "{pkg}.defs"
        registry_modules = ["mlops_assets.components"]
        """))
    monkeypatch.syspath_prepend(str(root))
    return root, root / pkg / "defs"


def _chain(exc: BaseException | None) -> str:
    """The messages of an exception and of its causes (Dagster wraps a component's error)."""
    parts = []
    while exc is not None:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _write(defs: Path, folder: str, text: str) -> Path:
    (defs / folder).mkdir()
    path = defs / folder / "defs.yaml"
    path.write_text(text)
    return path


def test_dagster_loads_allowed_templates_of_the_defs_folder(env, project):
    root, defs = project
    _write(defs, "good", _component(_fields("good", "team {{ env.MLOPS_UC_TEAM }}", "{{ env.MLOPS_UC_POLL }}")))
    loaded = dg.load_from_defs_folder(path_within_project=root)
    assert dg.AssetKey(["good", "raw"]) in {k for a in loaded.assets for k in a.keys}
    sensor = next(s for s in loaded.sensors if s.name == "good_landing_sensor")
    assert sensor.minimum_interval_seconds == 17


def _invalid_description(loaded: dg.Definitions, name: str) -> str:
    (asset,) = [a for a in loaded.assets if a.key == dg.AssetKey(["invalid_use_case", name])]
    return asset.descriptions_by_key[asset.key]


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_dagster_never_renders_a_payload_of_the_defs_folder(env, project, kind):
    """The component reads its attributes through the loader, never through Dagster's renderer:
    the file becomes a failing asset naming the field, and the other use case loads."""
    root, defs = project
    _write(defs, "good", _component(_fields("good")))
    evil = _write(defs, "evil", _component(_fields("evil", PAYLOADS[kind])))
    loaded = dg.load_from_defs_folder(path_within_project=root)
    keys = {k.to_user_string() for a in loaded.assets for k in a.keys}
    assert "good/raw" in keys and not any(k.startswith("evil/") for k in keys)
    message = _invalid_description(loaded, "evil")
    assert f"{evil}: field attributes.description:" in message
    assert SECRET not in message and f"{HOSTNAME}-" not in message


def test_a_defs_yaml_dagster_would_refuse_is_a_failing_asset(env, project):
    """An unknown key, a wrong type or a broken rule: Dagster accepts the attributes as any
    mapping, the loader refuses them, and the location loads with the file as a failing asset."""
    root, defs = project
    _write(defs, "good", _component(_fields("good")))
    _write(defs, "unknown", _component({**_fields("unknown"), "no_such_field": 1}))
    _write(defs, "wrong_type", _component({**_fields("wrong_type"), "landing": "not a mapping"}))
    _write(defs, "no_attributes", yaml.safe_dump({"type": "mlops_assets.components.UseCase"}))
    loaded = dg.load_from_defs_folder(path_within_project=root)
    assert dg.AssetKey(["good", "raw"]) in {k for a in loaded.assets for k in a.keys}
    assert "no_such_field" in _invalid_description(loaded, "unknown")
    assert "landing" in _invalid_description(loaded, "wrong_type")
    assert "attributes" in _invalid_description(loaded, "no_attributes")


@pytest.mark.parametrize("where", ["post_processing", "template_vars_module"])
def test_dagster_never_renders_the_rest_of_a_use_case_file(env, project, where):
    root, defs = project
    extra = ({"post_processing": {"assets": [{"target": "*", "attributes": {"description": MRO_WALK}}]}}
             if where == "post_processing" else {"template_vars_module": "os"})
    evil = _write(defs, "evil", _component(_fields("evil"), **extra))
    with pytest.raises(Exception) as err:
        dg.load_from_defs_folder(path_within_project=root)
    assert f"{evil}: field {where}" in _chain(err.value)


def test_a_hostile_defs_folder_file_is_a_failing_asset_and_the_others_load(env, project, monkeypatch, data_dir):
    """The code location as a whole: the defs folder's bad file is a failing asset there too."""
    import mlops_assets.definitions as definitions
    from mlops_assets.use_cases import loader

    root, defs = project
    _write(defs, "good", _component(_fields("good", "team {{ env.MLOPS_UC_TEAM }}")))
    _write(defs, "evil", _component(_fields("evil", MRO_WALK)))
    monkeypatch.setattr(definitions, "PROJECT_ROOT", root)
    monkeypatch.setattr(loader, "DEFS_DIR", defs)
    repo = definitions.build_defs().get_repository_def()
    keys = {k.to_user_string() for k in repo.assets_defs_by_key}
    assert "good/raw" in keys and "invalid_use_case/evil" in keys and not any(k.startswith("evil/") for k in keys)
    evil = repo.assets_defs_by_key[dg.AssetKey(["invalid_use_case", "evil"])]
    description = evil.descriptions_by_key[evil.key]
    assert "evil/defs.yaml: field attributes.description" in description and HOSTNAME + "-" not in description
    result = dg.materialize([evil], raise_on_error=False)
    assert not result.success
