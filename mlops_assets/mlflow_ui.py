"""The MLflow UI beside Dagster, so that the links in metadata (MLOPS_MLFLOW_UI_URL, default
http://127.0.0.1:5000) open: `mlflow server` on the project's tracking store and artifact root,
listening where that URL says. Started only when the URL names this machine and nothing answers
there yet; a UI that runs elsewhere is left to whoever runs it.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from mlops_assets import settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def ui_address(ui_url: str) -> tuple[str, int, str]:
    """(host, port, path prefix) of an MLflow UI URL."""
    parts = urlsplit(ui_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise settings.SettingsError(f"{settings.MLFLOW_UI_URL_ENV}={ui_url!r} is not an http(s) URL")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), parts.path.rstrip("/")


def is_up(ui_url: str, timeout: float = 1.0) -> bool:
    """True when an MLflow server answers /health at ``ui_url``."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{ui_url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def mlflow_ui_command(ui_url: str | None = None, tracking_uri: str | None = None,
                      artifact_root: str | None = None, workers: int = 1) -> list[str]:
    """`mlflow server` for the project's store, listening where ``ui_url`` says."""
    ui_url = ui_url or settings.mlflow_ui_url()
    host, port, prefix = ui_address(ui_url)
    mlflow = Path(sys.executable).parent / "mlflow"
    cmd = [str(mlflow)] if mlflow.is_file() else [sys.executable, "-m", "mlflow"]
    cmd += ["server", "--backend-store-uri", settings.sqlalchemy_url(tracking_uri or settings.mlflow_tracking_uri()),
            "--default-artifact-root", artifact_root or settings.mlflow_artifact_root(),
            "--host", host, "--port", str(port), "--workers", str(workers)]
    if prefix:
        cmd += ["--static-prefix", prefix]
    return cmd


def launch_mlflow_ui(ui_url: str | None = None, tracking_uri: str | None = None, artifact_root: str | None = None,
                     log=print, **popen) -> subprocess.Popen | None:
    """Start the MLflow UI for the project's store at MLOPS_MLFLOW_UI_URL (or ``ui_url``) without
    waiting for it to answer; returns the process (in a session of its own: stop it with
    os.killpg(proc.pid, SIGTERM)), or None when the URL is not on this machine or a server
    already answers there."""
    ui_url = (ui_url or settings.mlflow_ui_url()).rstrip("/")
    host, _, _ = ui_address(ui_url)
    if host not in LOCAL_HOSTS:
        log(f"[mlops-assets] MLflow UI: {ui_url} ({settings.MLFLOW_UI_URL_ENV}) is not on this machine; "
            "not starting one")
        return None
    if is_up(ui_url):
        log(f"[mlops-assets] MLflow UI already answers at {ui_url}")
        return None
    tracking_uri = tracking_uri or settings.mlflow_tracking_uri()
    store = tracking_uri.removeprefix("sqlite:///") if tracking_uri.startswith("sqlite:///") else None
    if store is not None:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(mlflow_ui_command(ui_url, tracking_uri, artifact_root), start_new_session=True, **popen)


def wait_until_up(proc: subprocess.Popen, ui_url: str | None = None, wait_s: float = 60.0, log=print) -> None:
    """Wait until the launched UI answers. Raises RuntimeError (after stopping it) when it exits
    or does not answer in ``wait_s``."""
    ui_url = (ui_url or settings.mlflow_ui_url()).rstrip("/")
    _, port, _ = ui_address(ui_url)
    deadline = time.monotonic() + wait_s
    while not is_up(ui_url, timeout=0.5):
        if proc.poll() is not None:
            raise RuntimeError(f"the MLflow UI exited with code {proc.returncode} before answering at {ui_url} "
                               f"(is port {port} in use?)")
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the MLflow UI did not answer at {ui_url} within {wait_s:g} s")
        time.sleep(0.5)
    log(f"[mlops-assets] MLflow UI: {ui_url} (pid {proc.pid}; {settings.MLFLOW_UI_URL_ENV} sets its address)")


def start_mlflow_ui(ui_url: str | None = None, tracking_uri: str | None = None, artifact_root: str | None = None,
                    wait_s: float = 60.0, log=print, **popen) -> subprocess.Popen | None:
    """launch_mlflow_ui, then wait_until_up: the process once it answers, or None (see launch)."""
    proc = launch_mlflow_ui(ui_url, tracking_uri, artifact_root, log=log, **popen)
    if proc is not None:
        wait_until_up(proc, ui_url, wait_s, log)
    return proc
