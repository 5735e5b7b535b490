"""The deployment templates call the documented commands: the CI workflows (GitHub Actions, Azure
Pipelines), the Dockerfile and the Helm values. The commands are read from the bash code blocks of
README.md and docs/*.md, never copied here, so a docs change that the templates do not follow
fails. A block is found by the marker comment right before it (`<!-- commands:NAME -->`), never
by a heading, so headings can be reworded and blocks moved between pages."""
from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from mlops_assets import settings
from mlops_assets.instance import concurrency
from mlops_assets.instance import executors

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI_FILES = {"github": ROOT / ".github" / "workflows" / "ci.yml", "azure": ROOT / "azure-pipelines.yml"}

# The markers of the documented command blocks (docs/testing.md lists them).
QUICKSTART = "quickstart"
INSTALL = "install"
CI = "ci"
CI_DAGSTER = "ci-dagster"
CI_TEMPLATES = "ci-templates"
MARKER = re.compile(r"<!--\s*commands:([\w-]+)\s*-->")


# ---- reading commands ------------------------------------------------------------------------

def _strip_comment(line: str) -> str:
    """A shell line without its trailing `# comment` (a # outside quotes, after a blank)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def shell_commands(script: str) -> list[str]:
    """The commands of a shell script, one per entry: continuation lines joined, comments and
    blank lines dropped, runs of blanks collapsed (layout is not meaning)."""
    commands, pending = [], ""
    for raw in script.splitlines():
        line = _strip_comment(raw)
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            commands.append(" ".join(line.split()))
    return commands


def bash_blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """(marker, commands) of each bash code block of a Markdown text; the marker is the NAME of a
    `<!-- commands:NAME -->` line right before the block (blank lines between allowed), else None."""
    blocks: list[tuple[str | None, list[str]]] = []
    marker, block, fence = None, [], None  # fence: the open code block's language, "" for none
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence, block = stripped[3:].strip(), []
            else:
                if fence == "bash":
                    blocks.append((marker, shell_commands("\n".join(block))))
                fence, marker = None, None
            continue
        if fence is not None:
            block.append(line)
        elif found := MARKER.fullmatch(stripped):
            marker = found.group(1)
        elif stripped:
            marker = None  # a marker names only the block right after it
    return blocks


def documented_blocks() -> list[tuple[str | None, list[str]]]:
    return [b for path in DOCS for b in bash_blocks(path.read_text(encoding="utf-8"))]


def marked(name: str) -> list[str]:
    """The commands of every block marked `<!-- commands:NAME -->`, in page order (README first)."""
    commands = [c for marker, block in documented_blocks() if marker == name for c in block]
    assert commands, f"no bash block after <!-- commands:{name} --> in README.md or docs/*.md"
    return commands


def documented_commands() -> set[str]:
    return {c for _, block in documented_blocks() for c in block}


def install_commands() -> tuple[list[str], list[str]]:
    """(CI install, image install) from the docs: `pip install uv` then the uv sync line
    with the dev tools (CI) or with --no-dev (the image)."""
    commands = marked(INSTALL)
    pip = [c for c in commands if c.startswith("pip install")]
    syncs = [c for c in commands if c.startswith("uv sync")]
    ci = [c for c in syncs if "--no-dev" not in c]
    image = [c for c in syncs if "--no-dev" in c]
    assert len(pip) == 1 and len(ci) == 1 and len(image) == 1, commands
    return pip + ci, pip + image


def test_command_extraction_joins_continuations_and_drops_comments():
    script = ("set -e\n# a comment\nuv run --frozen dagster asset materialize -m m \\\n"
              "    --select 'a,b'   # what it does\necho 'x # not a comment'\n")
    assert shell_commands(script) == ["set -e", "uv run --frozen dagster asset materialize -m m --select 'a,b'",
                                      "echo 'x # not a comment'"]


def test_marker_names_only_the_block_right_after_it():
    text = ("<!-- commands:a -->\n\n```bash\nuv sync\n```\n<!-- commands:b -->\nprose\n"
            "```bash\necho x\n```\n  ```bash\n  pip install uv\n  ```\n")
    assert bash_blocks(text) == [("a", ["uv sync"]), (None, ["echo x"]), (None, ["pip install uv"])]


def test_docs_name_the_commands_the_templates_use():
    ci_install, image_install = install_commands()
    assert ci_install == ["pip install uv", "uv sync --frozen"]
    assert image_install[1].startswith("uv sync --frozen --no-dev") and "--extra kubernetes" in image_install[1]
    assert "uv run --frozen pytest" in marked(QUICKSTART)
    assert [c for c in marked(CI) if c.startswith("uv run --frozen mlops-assets run")], marked(CI)
    # Dagster's CLI needs a command per selection (docs/operations.md says why): the same three.
    materialize = [c for c in marked(CI_DAGSTER) if c.startswith("uv run --frozen dagster asset materialize")]
    assert len(materialize) == 3, materialize


# ---- CI templates ----------------------------------------------------------------------------

def ci_scripts(kind: str) -> list[str]:
    """The shell scripts of a CI file: `run:` of GitHub Actions steps, `bash:`/`script:` of Azure
    Pipelines steps."""
    doc = yaml.safe_load(CI_FILES[kind].read_text(encoding="utf-8"))
    scripts = []
    for job in doc["jobs"].values() if kind == "github" else doc["jobs"]:
        for step in job["steps"]:
            for key in ("run",) if kind == "github" else ("bash", "script"):
                if key in step:
                    scripts.append(step[key])
    assert scripts, f"{CI_FILES[kind]}: no shell steps found"
    return scripts


def ci_commands(kind: str) -> list[str]:
    return [c for script in ci_scripts(kind) for c in shell_commands(script)]


@pytest.mark.parametrize("kind", sorted(CI_FILES))
def test_ci_templates_run_the_documented_commands(kind):
    commands = ci_commands(kind)
    ci_install, _ = install_commands()
    required = ci_install + ["uv run --frozen pytest"] + marked(CI) + marked(CI_TEMPLATES)
    missing = [c for c in required if c not in commands]
    assert not missing, f"{CI_FILES[kind]} does not run these documented commands: {missing}"
    # Nothing that installs or runs the project is made up: each such line is in the docs.
    known = documented_commands()
    invented = [c for c in commands if c.split()[0] in ("uv", "pip") and c not in known]
    assert not invented, f"{CI_FILES[kind]} runs commands the docs do not show: {invented}"


@pytest.mark.parametrize("kind", sorted(CI_FILES))
def test_ci_scripts_stop_at_the_first_failing_command(kind):
    """A script of several commands must stop at the first failure, or a failed gate in the
    middle would be hidden by a later command that succeeds (Azure's bash steps and a plain
    shell do not stop by themselves)."""
    for script in ci_scripts(kind):
        commands = shell_commands(script)
        if len(commands) > 1:
            assert commands[0] == "set -euo pipefail", f"{CI_FILES[kind]}: a step does not start with it:\n{script}"


@pytest.mark.parametrize("kind", sorted(CI_FILES))
def test_ci_training_chain_runs_in_order_on_the_demo_data(kind):
    commands = ci_commands(kind)
    order = [next(i for i, c in enumerate(commands) if needle in c) for needle in (
        "DAGSTER_HOME=", "mlops-assets simulate", "mlops-assets run")]
    assert order == sorted(order), f"{CI_FILES[kind]}: the instance, the demo data and the chain out of order"


# ---- Dockerfile ------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), " ".join(args.split())))
    return out


def test_dockerfile_installs_with_the_documented_commands():
    _, image_install = install_commands()
    runs = [args for instruction, args in dockerfile() if instruction == "RUN"]
    installs = [r for r in runs if r.split()[0] in ("pip", "uv")]
    assert installs == image_install, f"Dockerfile install lines {installs} != the docs' {image_install}"
    # The dbt manifest is built in the image (outside dg and dagster dev nothing builds it).
    assert "uv run --frozen mlops-assets prepare" in marked("ci-check")
    assert "mlops-assets prepare" in runs


def test_dockerfile_starts_the_code_location_the_helm_chart_expects():
    instructions = dockerfile()
    # The chart passes `dagster api grpc ...` as the container's args: an ENTRYPOINT would prefix it.
    assert "ENTRYPOINT" not in [i for i, _ in instructions]
    cmd = yaml.safe_load(next(args for i, args in instructions if i == "CMD"))
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert cmd[:3] == ["dagster", "api", "grpc"] and cmd[cmd.index("-m") + 1] == module
    port = cmd[cmd.index("-p") + 1]
    assert ("EXPOSE", port) in instructions
    deployment = helm_values()["dagster-user-deployments"]["deployments"][0]
    assert str(deployment["port"]) == port


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "data", ".git", "dbt_project/target"} <= ignored
    assert "README.md" not in ignored  # pyproject's `readme`: the package build needs it


def test_dockerignore_keeps_local_secrets_out_of_the_image():
    """`COPY . .` would bake a local .env (MLOPS_POSTGRES_URL with its password, tokens) into
    every layer of the image."""
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".env.*", "**/.env"} <= ignored


# ---- Helm values -----------------------------------------------------------------------------

def helm_values() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text(encoding="utf-8"))


def test_helm_values_run_the_code_location_with_the_shared_profile():
    values = helm_values()
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True and len(user["deployments"]) == 1
    deployment = user["deployments"][0]
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}  # runs and steps get the env too
    env = {e["name"]: e for e in deployment["env"]}
    assert env[settings.PROFILE_ENV]["value"] == settings.SHARED
    # The server URL holds a password: from a secret, never a plain value.
    assert "value" not in env[settings.POSTGRES_URL_ENV]
    assert env[settings.POSTGRES_URL_ENV]["valueFrom"]["secretKeyRef"]["name"]
    # Artifacts and the data folder on the volume every pod mounts.
    mount = deployment["volumeMounts"][0]["mountPath"]
    assert env[settings.DATA_DIR_ENV]["value"] == mount
    assert env[settings.ARTIFACT_ROOT_ENV]["value"].startswith(f"file://{mount}/")
    assert deployment["volumeMounts"][0]["name"] == deployment["volumes"][0]["name"]
    # The executor setting is one the code location accepts, and it is the k8s one.
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    assert executors.executor_choice(plain).name == executors.K8S_JOB


def test_helm_values_launch_runs_as_kubernetes_jobs_on_the_shared_instance():
    values = helm_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlDatabase"] == settings.DAGSTER_DB
    assert values["generatePostgresqlPasswordSecret"] is False


def test_helm_concurrency_matches_the_shared_profile_limits():
    limits = concurrency.limits(settings.SHARED)
    block = helm_values()["concurrency"]
    assert block["enabled"] is True
    assert block["runs"]["maxConcurrentRuns"] == limits.max_concurrent_runs
    assert block["runs"]["tagConcurrencyLimits"] == [{"key": concurrency.BACKFILL_TAG, "limit": limits.backfill_runs}]
    assert block["pools"] == {"granularity": "op", "defaultLimit": limits.warehouse_writers}


# ---- Celery worker config --------------------------------------------------------------------

def test_celery_worker_config_reads_the_broker_variable_the_executor_reads():
    worker = yaml.safe_load((ROOT / "deploy" / "celery" / "worker.yaml").read_text())
    executor = executors.executor_choice({executors.EXECUTOR_ENV: "celery", executors.CELERY_BROKER_ENV: "x"})
    assert worker["execution"]["config"] == dict(executor.config)


def test_celery_worker_config_is_valid_for_dagster_celery(monkeypatch):
    pytest.importorskip("dagster_celery", reason="the optional extra 'celery' is not installed")
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv(executors.CELERY_BROKER_ENV, "pyamqp://guest@rabbitmq:5672//")
    config = get_validated_config(str(ROOT / "deploy" / "celery" / "worker.yaml"))
    assert config["broker"] == "pyamqp://guest@rabbitmq:5672//"


def test_documented_celery_worker_command_uses_the_shipped_config():
    worker = [c for c in documented_commands() if "dagster-celery worker start" in c]
    assert worker and all("-y deploy/celery/worker.yaml" in c for c in worker)
    assert all(shlex.split(c)[:4] == ["uv", "run", "--frozen", "--extra"] for c in worker)
