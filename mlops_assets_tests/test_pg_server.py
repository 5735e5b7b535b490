"""The throwaway PostgreSQL server CI starts (.ci/postgres.sh runs pg_server's command line)."""
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from mlops_assets_tests import pg_server


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.integration
def test_ci_start_takes_another_port_when_the_probed_one_is_taken_and_stop_ends_it(monkeypatch):
    pg_server.bin_dir_or_skip()
    import psycopg2

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    probes = iter([busy])  # the first probe hands out a port someone else took meanwhile
    real_free_port = pg_server.free_port
    monkeypatch.setattr(pg_server, "free_port", lambda: next(probes, None) or real_free_port())
    # As .ci/run makes it, under /tmp: as root the server runs as `postgres`, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-ci-"))
    pid = None
    try:
        assert pg_server.main(["start", str(root)]) == 0
        port = int((root / "port").read_text())
        assert port != busy
        psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=10).close()
        pid = pg_server.PgServer(pg_server.find_bin_dir(), root, port, None).pid()
        assert pid and _alive(pid)
    finally:
        pg_server.main(["stop", str(root)])
        taken.close()
        shutil.rmtree(root, ignore_errors=True)
    deadline = time.monotonic() + 15  # `pg_ctl -w stop` returns once the pid file is gone, just before the exit
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_a_folder_the_server_user_cannot_reach_is_named(tmp_path):
    pg_server.bin_dir_or_skip()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match=rf"cannot reach {private}/pg through {private} \(mode 0o700\)"):
        pg_server.new_server(private / "pg")


def test_kill_leaves_alone_a_process_that_reuses_a_stale_pid(tmp_path):
    """postmaster.pid left by a crashed server may name a pid the system gave to another process."""
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "postmaster.pid").write_text(f"{other.pid}\n{tmp_path / 'data'}\n")
        pg_server.PgServer(Path("/nonexistent"), tmp_path, 0, None).kill()
        time.sleep(0.2)
        assert other.poll() is None, "an unrelated process was killed"
    finally:
        other.kill()
        other.wait(timeout=10)


@pytest.mark.integration
def test_kill_ends_a_real_postmaster():
    pg_server.bin_dir_or_skip()
    with pg_server.throwaway_server() as server:
        pid = server.pid()
        assert pid and _alive(pid)
        server.kill()
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)


def test_a_failed_initdb_leaves_no_temporary_folder(monkeypatch, tmp_path):
    pg_server.bin_dir_or_skip()

    def failing_init(self):
        raise RuntimeError("initdb failed")

    monkeypatch.setattr(pg_server.PgServer, "init", failing_init)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError):
        with pg_server.throwaway_server():
            pass
    assert not list(tmp_path.glob("mlops-pg-*"))
