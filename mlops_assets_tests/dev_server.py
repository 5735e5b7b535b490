"""Starting and ending the servers tests run (dagster dev, dagster-webserver): a free port,
waiting for a condition while the server lives, and ending its whole process group.

dagster dev's children (daemon, code servers, run workers) outlive a plain SIGTERM to dagster dev,
and outlive dagster dev itself when it crashes; left running they keep CI from finishing."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def stop_group(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the whole group of `proc` (started with start_new_session=True), SIGKILL what is
    left after `grace_s`; also when `proc` itself has already exited."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:  # nobody left in the group
        proc.wait(timeout=10)
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, so that a zombie does not count as left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, bound_s: float, what: str, proc: subprocess.Popen, log: Path, poll_s: float = 1.0):
    """The first truthy value of predicate(), polled while `proc` runs; an AssertionError with the
    tail of its log when it exits or `bound_s` passes first."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited ({proc.returncode}) while waiting for {what}:\n"
                                 + log.read_text()[-3000:])
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {bound_s}s waiting for {what}; dagster dev log tail:\n"
                         + log.read_text()[-3000:])


def webserver_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_dagster_dev(port: int, log: Path, intervals: dict[str, str]) -> subprocess.Popen:
    """`dagster dev` on the project's code location in its own process group (end it with
    stop_group), its output in `log`; `intervals`: the sensor interval variables for this test."""
    from mlops_assets import settings

    env = {**os.environ, **intervals, "DO_NOT_TRACK": "1"}
    with log.open("w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "mlops_assets.definitions",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=settings.PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
