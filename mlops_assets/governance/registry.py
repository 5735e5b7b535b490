"""The MLflow model registry as the project uses it: one registered model per use case, one
version per candidate, the ``champion`` alias marking what serves users.

Tags written on a version (names under ``mlops.``) carry its provenance and its promotion
history, so a rollback needs nothing but the registry. The MLflow client is made here, on a
store URI (`mlflow_client`); the assets reach it through chain.resources.MlflowResource, which
points mlflow at its store the same way, and the model server and the CLI call it directly.
Module-level mlflow calls here (register_model, download_artifacts) use the store last pointed
at. mlflow is imported inside functions (heavy: the code location must load without it).
"""
from __future__ import annotations

import tempfile
import hashlib
import json
import subprocess
import time
from pathlib import Path

from mlops_assets import settings

CHAMPION_ALIAS = "champion"
UI_URL_ENV = settings.MLFLOW_UI_URL_ENV
DEFAULT_UI_URL = settings.DEFAULT_MLFLOW_UI_URL

TAG_DAGSTER_RUN = "mlops.dagster_run_id"
TAG_WINDOW_START = "mlops.data_window_start"
TAG_WINDOW_END = "mlops.data_window_end"
TAG_CODE_VERSION = "mlops.code_version"
TAG_MANIFEST_HASH = "mlops.dbt_manifest_hash"
TAG_TRAINING_DIGEST = "mlops.training_set_digest"
TAG_PREVIOUS_CHAMPION = "mlops.previous_champion"
TAG_PROMOTED_AT = "mlops.promoted_at"
TAG_PROMOTED_BY = "mlops.promoted_by_dagster_run"
TAG_ROLLED_BACK_FROM = "mlops.rolled_back_from"
TAG_ROLLED_BACK_AT = "mlops.rolled_back_at"  # on the version a rollback took the alias from
# Holdout quality a champion had when promoted (informational: later holdouts differ, so the
# gates re-score past champions on the candidate's holdout instead of comparing these numbers).
TAG_PROMOTED_PREFIX = "mlops.promoted_holdout_"  # + the metric, for every task
TAG_PROMOTED_ROC_AUC = "mlops.promoted_holdout_roc_auc"
TAG_PROMOTED_LOG_LOSS = "mlops.promoted_holdout_log_loss"


# A model per segment (use case's segment_column): each segment model is a version of the same
# registered model tagged with its segment value; the segment's champion is the alias
# `champion_<segment>` (an alias takes letters, digits, '_' and '-' only, so the value is
# sanitised and the registered model keeps the alias -> value mapping in a tag).
TAG_SEGMENT = "mlops.segment"
TAG_SEGMENT_ALIASES = "mlops.segment_aliases"
# Promotion provenance of a segment champion, apart from the global's tags: the global's gates
# compare with recent global champions (TAG_PROMOTED_AT) and must not meet a segment's model.
TAG_SEGMENT_PROMOTED_AT = "mlops.segment_promoted_at"
TAG_SEGMENT_PREVIOUS_CHAMPION = "mlops.previous_segment_champion"


class RegistryError(RuntimeError):
    pass


def ui_base_url() -> str:
    return settings.mlflow_ui_url()


def model_version_url(name: str, version: str | int, base: str | None = None) -> str:
    """Link that opens a model version in the MLflow UI."""
    return f"{(base or ui_base_url()).rstrip('/')}/#/models/{name}/versions/{version}"


def code_version(project_root: Path = settings.PROJECT_ROOT) -> str:
    """Package version, plus the git commit (and '-dirty' with uncommitted changes) when the
    project is a git checkout; an installed package or missing git just gives the version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("mlops-assets")
    except PackageNotFoundError:
        pkg = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(project_root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return pkg
        dirty = subprocess.run(["git", "-C", str(project_root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        suffix = "-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
        return f"{pkg}+g{commit.stdout.strip()}{suffix}"
    except (OSError, subprocess.SubprocessError):
        return pkg


def dbt_manifest_hash(manifest_path: Path | None = None) -> str:
    """Hash of the dbt project as the manifest describes it: each node's id and file checksum.
    The whole file is not hashed because every `dbt parse` rewrites timestamps and invocation
    ids in it; this hash changes exactly when a model, test or seed changes."""
    path = manifest_path or settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    if not path.exists():
        return "unavailable"
    manifest = json.loads(path.read_text())
    nodes = {uid: n.get("checksum", {}).get("checksum") for uid, n in manifest.get("nodes", {}).items()}
    sources = sorted(manifest.get("sources", {}))
    payload = json.dumps({"nodes": nodes, "sources": sources}, sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def store_uri(tracking_uri: str) -> str:
    """A tracking URI as handed to MLflow: a PostgreSQL database with psycopg2 named as its
    driver (SQLAlchemy would pick psycopg 3 for a bare postgresql://)."""
    return settings.sqlalchemy_url(tracking_uri)


def point_mlflow(tracking_uri: str) -> None:
    """Point mlflow's module-level functions (register_model, load_model) at the store."""
    import mlflow

    # Both: the registry URI otherwise stays wherever an earlier call in this process left it.
    mlflow.set_tracking_uri(store_uri(tracking_uri))
    mlflow.set_registry_uri(store_uri(tracking_uri))


def mlflow_client(tracking_uri: str | None = None):
    """An MlflowClient on the store (tracking and registry; default: the settings' store), with
    mlflow's module-level functions pointed there too."""
    import mlflow

    uri = store_uri(tracking_uri or settings.mlflow_tracking_uri())
    point_mlflow(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def load_model(tracking_uri: str, name: str, version: str | int):
    """A registered version as the object it was logged as: the scikit-learn Pipeline (sklearn
    flavour), or the object a pyfunc model keeps (training/models.py), each with ``predict`` and,
    for a classifier, ``predict_proba`` and ``classes_``. By version, not by alias, so the
    version recorded is the one that was loaded."""
    import mlflow

    point_mlflow(tracking_uri)
    uri = f"models:/{name}/{version}"
    if "sklearn" in mlflow.models.get_model_info(uri).flavors:
        return mlflow.sklearn.load_model(uri)
    pyfunc = mlflow.pyfunc.load_model(uri)
    try:
        inner = pyfunc.unwrap_python_model()
    except Exception:  # noqa: BLE001 - a pyfunc of another flavour: served as it is
        return pyfunc
    return getattr(inner, "model", pyfunc)


def register_candidate(model_uri: str, name: str, tags: dict[str, str]):
    """Register a logged model as a new version of ``name`` (created on first use). Returns the
    ModelVersion once it is READY."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()}, await_registration_for=60)
    return mv


def champion_version(c, name: str) -> str | None:
    """Version the ``champion`` alias points at; None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        version = c.get_registered_model(name).aliases.get(CHAMPION_ALIAS)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    # The registry hands versions back as int or str depending on the call; the project uses str.
    return None if version is None else str(version)


def display_uri(uri: str) -> str:
    """A tracking URI fit for logs and metadata: credentials dropped (settings.display_uri)."""
    return settings.display_uri(uri)


def version_tags(c, name: str, version: str) -> dict[str, str] | None:
    """Tags of a model version, None when the model or the version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(c.get_model_version(name, str(version)).tags)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def recent_champions(c, name: str, n: int) -> list[str]:
    """The ``n`` versions most recently promoted (newest first), leaving out versions a rollback
    took the alias from: a rollback says that version should not set the bar."""
    if "'" in name:  # the filter language has no escape for it; use-case names never hold one
        raise RegistryError(f"model name {name!r} holds a quote: cannot search its versions")
    versions = c.search_model_versions(f"name = '{name}'")
    promoted = [v for v in versions if TAG_PROMOTED_AT in v.tags and TAG_ROLLED_BACK_AT not in v.tags]
    promoted.sort(key=lambda v: (v.tags[TAG_PROMOTED_AT], int(v.version)), reverse=True)
    return [str(v.version) for v in promoted[:n]]


def promote(c, name: str, version: str, previous: str | None, dagster_run_id: str,
            quality: dict[str, float] | None = None) -> None:
    """Record the provenance of the promotion on the new champion's version, then move the alias
    in one registry call. The tags come first: if the alias move fails, nothing serves the new
    version and the tags only say a promotion was attempted."""
    for metric, value in (quality or {}).items():  # roc_auc, log_loss: TAG_PROMOTED_ROC_AUC, ..._LOG_LOSS
        c.set_model_version_tag(name, version, f"{TAG_PROMOTED_PREFIX}{metric}", f"{value:.6f}")
    c.set_model_version_tag(name, version, TAG_PREVIOUS_CHAMPION, previous or "")
    c.set_model_version_tag(name, version, TAG_PROMOTED_AT, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    c.set_model_version_tag(name, version, TAG_PROMOTED_BY, dagster_run_id)
    c.set_registered_model_alias(name, CHAMPION_ALIAS, version)


def rollback(c, name: str, to_version: str | None = None) -> tuple[str, str]:
    """Move the champion alias back to ``to_version``, by default the previous champion recorded
    on the current champion. Only versions that were champion once (they carry a promotion tag)
    are accepted: a rollback must not put an unproven candidate in front of users.
    Returns (from_version, to_version)."""
    from mlflow.exceptions import MlflowException

    current = champion_version(c, name)
    if current is None:
        raise RegistryError(f"model {name!r} has no {CHAMPION_ALIAS!r} alias: nothing to roll back")
    if to_version is None:
        to_version = c.get_model_version(name, current).tags.get(TAG_PREVIOUS_CHAMPION) or None
        if to_version is None:
            raise RegistryError(f"{name} v{current} records no previous champion (it was the first); "
                                "pass --to-version N to choose one")
    to_version = str(to_version)
    if to_version == current:
        raise RegistryError(f"{name} v{current} is already the champion")
    try:
        target = c.get_model_version(name, to_version)
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {to_version}: {exc.message}") from exc
    if TAG_PROMOTED_AT not in target.tags:
        raise RegistryError(f"{name} v{to_version} was never champion (no {TAG_PROMOTED_AT} tag): "
                            "a rollback may only return to a previously promoted version")
    c.set_model_version_tag(name, to_version, TAG_ROLLED_BACK_FROM, current)
    c.set_registered_model_alias(name, CHAMPION_ALIAS, to_version)
    c.set_model_version_tag(name, current, TAG_ROLLED_BACK_AT, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if TAG_ROLLED_BACK_AT in target.tags:  # champion again (`rollback --to-version`): it sets the bar again
        c.delete_model_version_tag(name, to_version, TAG_ROLLED_BACK_AT)
    return current, to_version


def model_size_mb(model_uri: str) -> float:
    """Size of the files a server must load for this model."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    return total / 1e6


def segment_alias(segment: str) -> str:
    """The alias of a segment's champion: `champion_` + the value in lower-case letters, digits
    and '_'; a value that needed changing also gets a short hash of itself, so two values that
    sanitise alike ("North", "north!") never share an alias."""
    import re

    value = str(segment)
    clean = re.sub(r"[^a-z0-9_]", "_", value.lower())[:80]
    if clean != value:
        clean = f"{clean}_{hashlib.sha256(value.encode()).hexdigest()[:6]}"
    return f"{CHAMPION_ALIAS}_{clean}"


def segment_champions(c, name: str) -> dict[str, str]:
    """Segment value -> version its `champion_<segment>` alias points at (empty when the model,
    or any segment champion, does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        model = c.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    by_alias = json.loads(model.tags.get(TAG_SEGMENT_ALIASES) or "{}")
    return {segment: str(model.aliases[alias]) for alias, segment in sorted(by_alias.items())
            if alias in model.aliases}


def promote_segment(c, name: str, segment: str, version: str, previous: str | None, dagster_run_id: str,
                    quality: dict[str, float] | None = None) -> str:
    """Move the segment's alias to ``version`` after recording the promotion on it (as
    `promote` does for the global champion); returns the alias."""
    alias = segment_alias(segment)
    model = c.get_registered_model(name)
    by_alias = json.loads(model.tags.get(TAG_SEGMENT_ALIASES) or "{}")
    if by_alias.get(alias) != segment:
        c.set_registered_model_tag(name, TAG_SEGMENT_ALIASES, json.dumps({**by_alias, alias: segment}, sort_keys=True))
    for metric, value in (quality or {}).items():
        c.set_model_version_tag(name, version, f"{TAG_PROMOTED_PREFIX}{metric}", f"{value:.6f}")
    c.set_model_version_tag(name, version, TAG_SEGMENT_PREVIOUS_CHAMPION, previous or "")
    c.set_model_version_tag(name, version, TAG_SEGMENT_PROMOTED_AT, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    c.set_model_version_tag(name, version, TAG_PROMOTED_BY, dagster_run_id)
    c.set_registered_model_alias(name, alias, version)
    return alias
