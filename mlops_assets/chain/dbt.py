"""dbt for the dbt step and the code location.

- `run_dbt`: a dbt command run in this process (dbt's programmatic `dbtRunner`), on a manifest
  parsed once per process and reused, instead of a `dbt` process per step (which paid a Python
  start, dbt's import and a parse, several seconds, for about half a second of dbt's own work).
- `DbtCli`: dagster-dbt's DbtCliResource without a `dbt --version` process per run; the step
  takes the project folder, profiles folder and target from it.
- `prepare_if_dev`: `dbt deps`/`dbt parse` under `dagster dev` and `dg` with this environment's dbt.

Imported by resources.shared_resources() and the dbt step (neither dagster_dbt nor dbt is
imported when the code location loads otherwise; dbt itself only when a dbt command runs).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from dagster_dbt import DagsterDbtCliRuntimeError, DbtCliResource
from dagster_dbt.dbt_project import DagsterDbtProjectPreparer
from packaging import version

from mlops_assets import settings
from mlops_assets.chain.dbt_freshness import dbt_files, manifest_freshness, manifest_state, write_stamp


def same_environment_dbt(executable: str) -> bool:
    """True when `executable` is the dbt installed beside this Python (settings.dbt_executable)."""
    return os.path.abspath(os.path.dirname(executable)) == os.path.abspath(os.path.dirname(sys.executable))


class DbtCli(DbtCliResource):
    """dagster-dbt asks the dbt executable for its version once per resource, that is once per
    run: `dbt --version` starts Python, imports dbt and looks up the latest releases of dbt-core and
    of every adapter on PyPI (1 s timeout each), 4-9 s before each dbt step on this machine, more
    where PyPI is unreachable. When the executable is the dbt of this environment its version is
    the installed dbt-core's; any other executable is still asked."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if same_environment_dbt(self.dbt_executable):
            try:
                return version.parse(metadata.version("dbt-core"))
            except metadata.PackageNotFoundError:  # dbt Fusion or a dbt of another environment
                pass
        return super()._cli_version


class ThisEnvironmentPreparer(DagsterDbtProjectPreparer):
    """dagster-dbt's preparer (`dbt deps` and `dbt parse` under `dagster dev` and `dg`) with the
    dbt executable of this project (settings.dbt_executable: the dbt beside this Python) instead
    of the bare name `dbt` dagster-dbt looks up on PATH, so `.venv/bin/dagster dev` and
    `.venv/bin/dg check defs` work without an activated environment."""

    def __init__(self, dbt_executable: str, prepare_project_cli_args=None):
        super().__init__(prepare_project_cli_args=prepare_project_cli_args)
        self._dbt_executable = dbt_executable

    def _dbt(self, project) -> DbtCli:
        return DbtCli(project_dir=project, dbt_executable=self._dbt_executable)

    def _prepare_packages(self, project) -> None:
        self._dbt(project).cli(["deps", "--quiet"], target_path=project.target_path).wait()

    def _prepare_manifest(self, project) -> None:
        self._dbt(project).cli(self._prepare_project_cli_args, target_path=project.target_path).wait()

    def prepare(self, project) -> None:
        """`dbt deps` and `dbt parse`, unless the manifest is fresh (chain/dbt_freshness.py, the
        test `mlops-assets prepare` applies). Under `dagster dev` the code location loads in every
        run worker, and a parse there (a dbt process, 3-4 s) delayed the start of every run."""
        env = {**os.environ, **settings.resource_env_values()}
        target = settings.dbt_target()
        if manifest_freshness(project.manifest_path, project.project_dir, project.profiles_dir, target, env).fresh:
            return
        state = manifest_state(project.project_dir, project.profiles_dir, target, env)  # before: a later edit is newer
        super().prepare(project)
        if project.manifest_path.exists():
            write_stamp(project.manifest_path, state)


def prepare_if_dev(project, dbt_executable: str) -> None:
    """What ``project.prepare_if_dev()`` does (`dbt deps` and `dbt parse` under `dagster dev`
    and `dg`), run by ``dbt_executable``: a DbtProject has no public way to take a preparer."""
    ThisEnvironmentPreparer(dbt_executable).prepare_if_dev(project)


# --- dbt in this process ----------------------------------------------------------------------

PARTIAL_PARSE = "partial_parse.msgpack"
# The events that carry a node's result (what dagster-dbt turns into Dagster events).
RESULT_EVENTS = frozenset({"LogModelResult", "LogSeedResult", "LogSnapshotResult", "LogTestResult"})

# dbt keeps its flags, event logger, invocation context and adapters in module globals: one dbt
# command at a time per process (the in-process executor runs steps one by one; this guards a
# threaded caller). Each invocation sets all of them up again (dbt's preflight), so nothing of
# one step's dbt carries over to the next but the parsed manifest kept here on purpose.
_DBT_LOCK = threading.RLock()
_parsed: dict[str, Any] = {"parses": 0}  # + "key", "manifest" (dbt's Manifest) of the last parse


def parse_count() -> int:
    """How many times this process parsed the project (benchmarks and tests read it)."""
    return _parsed["parses"]


@dataclass
class DbtRun:
    """One dbt command run in process: its result events as dbt's JSON log dicts
    (dbt_common's msg_to_dict), the error-level messages, and whether it succeeded."""

    args: list[str]
    target_path: Path
    success: bool = False
    result_events: list[dict[str, Any]] = field(default_factory=list)
    error_messages: list[str] = field(default_factory=list)
    exception: BaseException | None = None
    parsed: bool = False  # this call parsed the project (first dbt command of the process, or a change)

    @property
    def command(self) -> str:
        """The command as a user would type it (the folders it was given left out)."""
        shown, skip = [], False
        for arg in self.args:
            if skip or arg in ("--project-dir", "--profiles-dir", "--target-path", "--log-path"):
                skip = not skip
                continue
            if arg not in ("--no-use-colors", "--no-send-anonymous-usage-stats"):
                shown.append(arg)
        return "dbt " + " ".join(shown)

    def error(self) -> DagsterDbtCliRuntimeError:
        """The step's failure: dbt's own error messages, the command and the log to read."""
        messages = self.error_messages or ([f"{type(self.exception).__name__}: {self.exception}"]
                                           if self.exception else ["dbt reported failure without an error message"])
        log = self.target_path / "dbt.log"
        return DagsterDbtCliRuntimeError(
            description=(f"`{self.command}` failed (in process). Errors from dbt:\n\n" + "\n\n".join(messages)
                         + (f"\n\nThe dbt debug log: {log}" if log.exists() else "")))


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ (dbt reads the profile's and the models' variables there) for the
    time of the command, the variables as they were afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _common_args(project_dir: Path, profiles_dir: Path, target: str) -> list[str]:
    return ["--project-dir", str(project_dir), "--profiles-dir", str(profiles_dir), "--target", target,
            "--no-use-colors", "--no-send-anonymous-usage-stats"]


def _manifest_key(project_dir: Path, profiles_dir: Path, target: str, profile_env: Mapping[str, str]) -> tuple:
    """What a parse depends on: the target, the profile's values, the manifest file `mlops-assets
    prepare` wrote, and every dbt file (a file edited, added or removed changes the key)."""
    manifest = project_dir / "target" / "manifest.json"
    made = manifest.stat().st_mtime_ns if manifest.exists() else None
    files = tuple((str(p), p.stat().st_mtime_ns) for p in dbt_files(project_dir))
    return (str(project_dir), str(profiles_dir), target, tuple(sorted(profile_env.items())), made, files)


def parsed_manifest(project_dir: Path, profiles_dir: Path, target: str, profile_env: Mapping[str, str],
                    log=None) -> tuple[Any, bool]:
    """The project parsed by dbt in this process, parsed again only when the key changes.
    Returns (Manifest, parsed now?). Call under _DBT_LOCK with the profile's variables set.

    The parse starts from the project's target/partial_parse.msgpack (copied, so that concurrent
    processes never read a half-written state) and hands the new state back when it changed, as
    a `dbt build` did; so unless the SQL or the profile changed it is a partial parse (~0.1 s)."""
    key = _manifest_key(project_dir, profiles_dir, target, profile_env)
    if _parsed.get("key") == key:
        return _parsed["manifest"], False
    scratch = Path(tempfile.mkdtemp(prefix="mlops-dbt-parse-"))
    try:
        seed = project_dir / "target" / PARTIAL_PARSE
        if seed.exists():
            shutil.copy(seed, scratch / PARTIAL_PARSE)
        result, errors = _parse(project_dir, profiles_dir, target, "--target-path", str(scratch),
                                "--log-path", str(scratch))
        if not result.success:
            raise DagsterDbtCliRuntimeError(description=(
                f"dbt parse of {project_dir} (target {target!r}) failed in process: "
                + ("\n".join(errors) or repr(result.exception))))
        keep_parse_state(scratch, log, project_dir / "target")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _parsed.update(key=key, manifest=result.result, parses=_parsed["parses"] + 1)
    return result.result, True


def parse_into_target(project_dir: Path, profiles_dir: Path, target: str, env: Mapping[str, str]) -> list[str]:
    """`dbt parse` in this process, writing the project's target/manifest.json and parse state
    (what `mlops-assets prepare` makes). No dbt process: in `mlops-assets run` the dbt steps that
    follow in the same process find dbt imported and the parse state fresh. `env`: the variables
    the profile reads, set for the parse only. Returns dbt's error messages, empty on success."""
    with _DBT_LOCK, _environment({"DO_NOT_TRACK": os.environ.get("DO_NOT_TRACK", "1"),
                                  "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}):
        result, errors = _parse(Path(project_dir), Path(profiles_dir), target)
    if result.success:
        return []
    return errors or [repr(result.exception)]


def _parse(project_dir: Path, profiles_dir: Path, target: str, *extra: str):
    """`dbt parse` in this process: (dbt's result, its error messages). Call under _DBT_LOCK."""
    from dbt.cli.main import dbtRunner

    errors: list[str] = []
    result = dbtRunner(callbacks=[_collect_errors(errors)]).invoke(
        ["parse", *_common_args(project_dir, profiles_dir, target), *extra, "--quiet"])
    return result, errors


def _collect_errors(errors: list[str]):
    def callback(msg) -> None:
        if msg.info.level == "error":
            errors.append(msg.info.msg)
    return callback


def run_dbt(args: Sequence[str], *, project_dir: Path, profiles_dir: Path, target: str, target_path: Path,
            profile_env: Mapping[str, str], env: Mapping[str, str] | None = None, log=None) -> DbtRun:
    """Run `dbt <args>` in this process on the kept manifest, logs and artifacts in `target_path`.

    `profile_env`: the variables the profile reads (part of the manifest's key); `env`: further
    variables for this command only (the day window the models read when they execute).

    The DuckDB file is closed when the command ends (release_duckdb; tested: another process
    opens it for writing, and this one read-only, right after). A killed step takes dbt with it, as dbt is this process: no dbt is left writing the warehouse."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    project_dir, profiles_dir, target_path = Path(project_dir), Path(profiles_dir), Path(target_path)
    target_path.mkdir(parents=True, exist_ok=True)
    run = DbtRun(args=[*args, *_common_args(project_dir, profiles_dir, target),
                       "--target-path", str(target_path), "--log-path", str(target_path)],
                 target_path=target_path)

    def collect(msg) -> None:
        if msg.info.name in RESULT_EVENTS:
            run.result_events.append(msg_to_dict(msg))
        if msg.info.level == "error":
            run.error_messages.append(msg.info.msg)

    with _DBT_LOCK, _environment({"DO_NOT_TRACK": os.environ.get("DO_NOT_TRACK", "1"),
                                  "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **profile_env}):
        manifest, run.parsed = parsed_manifest(project_dir, profiles_dir, target, profile_env, log)
        try:
            with _environment(dict(env or {})):
                result = dbtRunner(manifest=manifest, callbacks=[collect]).invoke(list(run.args))
        finally:
            release_duckdb()
    run.success, run.exception = bool(result.success), result.exception
    return run


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open after a dbt command.

    dbt closes its connections when a command ends (dbt's adapter_management), but dbt-duckdb
    keeps the database itself open between invocations in the same process (its profile
    setting `keep_open` defaults to true). In a dbt process that ended with the process; here
    it would keep the warehouse file locked against other processes, and make our own read-only
    connection fail with DuckDB's "different configuration than existing connections". Closed
    here (nothing to do without dbt-duckdb, or when no DuckDB target ran)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    try:
        env = DuckDBConnectionManager.env()
    except Exception:  # "environment requested before creation": no DuckDB command ran
        return
    DuckDBConnectionManager.close_all_connections()
    env.close()


def keep_parse_state(invocation_target: Path, log=None, project_target: Path | None = None) -> bool:
    """Make the parse state a dbt command left in its own target folder the one the next parse
    starts from (target/partial_parse.msgpack).

    dbt parses the whole project again when the state was made with another profile (e.g.
    `mlops-assets prepare` run with another warehouse path), and leaves the new state in the
    folder it was given only, so every later process would parse again. Copied back
    (atomically, only when it differs), only the first parse after such a change is a full one.
    Returns True when it copied."""
    project_target = project_target or (settings.DBT_PROJECT_DIR / "target")
    fresh = Path(invocation_target) / PARTIAL_PARSE
    if not fresh.exists():
        return False
    dest = Path(project_target) / PARTIAL_PARSE
    data = fresh.read_bytes()
    if dest.exists() and dest.read_bytes() == data:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{PARTIAL_PARSE}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    if log is not None:
        log.info(f"dbt parse state kept in {dest} for the next parses")
    return True
