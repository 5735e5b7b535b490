"""`mlops-assets ui` stops with its whole tree: dagster dev, its daemon, code servers and run
workers, and the MLflow UI it started beside them, are gone within 10 s of a SIGTERM (or Ctrl-C)
to the ui process."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_assets import settings
from mlops_assets.cli import _alive, _group_members, descendants
from mlops_assets.mlflow_ui import is_up
from mlops_assets_tests.dev_server import free_port, wait_for, webserver_up

pytestmark = pytest.mark.integration


def test_ui_stops_with_all_its_processes_within_10s(data_dir, tmp_path):
    sig = signal.SIGTERM  # Ctrl-C (SIGINT) takes the same handler (cli.run_supervised)
    port, log = free_port(), tmp_path / "ui.log"
    mlflow_url = f"http://127.0.0.1:{free_port()}"
    with log.open("w") as out:
        ui = subprocess.Popen([str(Path(sys.executable).parent / "mlops-assets"), "ui", "--",
                               "-h", "127.0.0.1", "-p", str(port)],
                              cwd=settings.PROJECT_ROOT,
                              env={**os.environ, "DO_NOT_TRACK": "1", settings.MLFLOW_UI_URL_ENV: mlflow_url},
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree: set[int] = set()
    try:
        wait_for(lambda: webserver_up(port), 180, "the webserver", ui, log)
        wait_for(lambda: is_up(mlflow_url), 120, "the MLflow UI beside it", ui, log)  # the links' target
        # dagster dev and what it started (daemon, code server): in dagster dev's own group
        tree = descendants(ui.pid)
        groups = {_pgid(p) for p in tree} - {None, os.getpgid(ui.pid)}
        assert len(tree) >= 3 and groups, f"expected dagster dev with children, got {tree}"
        tree |= {p for g in groups for p in _group_members(g)}

        ui.send_signal(sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ui.poll()
            left = {p for p in tree | descendants(ui.pid) | {p for g in groups for p in _group_members(g)}
                    if _alive(p)}
            if not left and ui.returncode is not None:
                break
            time.sleep(0.2)
        assert ui.returncode == 0, log.read_text()[-2000:]
        assert not left, f"still running 10 s after {sig.name}: {sorted(left)}\n" + log.read_text()[-2000:]
        assert not is_up(mlflow_url)
    finally:
        for p in {p for p in tree | descendants(ui.pid) | {ui.pid} if _alive(p)}:  # never leave a server behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        ui.wait(timeout=10)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
