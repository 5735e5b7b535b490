"""Ending a server a test started in its own process group (dagster dev, dagster-webserver).

dagster dev's children (daemon, code servers, run workers) outlive a plain SIGTERM to dagster dev,
and outlive dagster dev itself when it crashes; left running they keep CI from finishing."""
from __future__ import annotations

import os
import signal
import subprocess
import time


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
