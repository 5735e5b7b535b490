"""A throwaway PostgreSQL server for the tests of the shared profile.

`throwaway_server()` runs Debian's (or any) PostgreSQL binaries: initdb into a temporary folder
(as the `postgres` user via `runuser` when running as root: PostgreSQL refuses to run as root),
a free port on 127.0.0.1 only, trust authentication, no fsync (nothing here must survive), and
`pg_ctl -w start`. It stops the server in fast mode when done and kills it if that fails.
`.ci/postgres.sh` starts the same kind of server for CI with this module's command line.

`fresh_database(base_url, prefix)` creates a uniquely named database so that tests sharing one
server never see each other's tables.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    from mlops_assets_tests.ports import free_port
except ModuleNotFoundError:  # run as a script by .ci/postgres.sh: this folder is on sys.path then
    from ports import free_port

SERVER_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    return None


def bin_dir_or_skip() -> Path:
    """The binaries' folder, for a test that starts servers itself. Without them the test skips,
    or fails when MLOPS_REQUIRE_POSTGRES=1 and no MLOPS_TEST_POSTGRES_URL names a server to use."""
    import pytest

    found = find_bin_dir()
    if found is None:
        reason = ("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH; "
                  "install them with `apt-get install -y postgresql`")
        if os.environ.get("MLOPS_REQUIRE_POSTGRES") == "1" and not os.environ.get("MLOPS_TEST_POSTGRES_URL"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@dataclass
class PgServer:
    bin_dir: Path
    root: Path  # temporary folder: data/, server.log, the socket
    port: int
    as_user: str | None  # run the binaries as this user (when we are root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        proc = self._run("initdb", "-D", str(self.data), "-U", SERVER_USER, "-A", "trust", "-E", "UTF8",
                         "--no-locale", "--no-sync")
        if proc.returncode != 0:
            raise RuntimeError(f"initdb into {self.data} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        opts = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200")
        proc = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        if proc.returncode != 0:
            self.kill()
            raise RuntimeError(f"pg_ctl start on 127.0.0.1:{self.port} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}\nserver log:\n{self._log_tail()}")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Fast shutdown (ends the sessions, no waiting for clients); killed if that fails."""
        try:
            proc = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout=60)
            ok = proc.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if not ok:
            self.kill()

    def kill(self) -> None:
        # The postmaster only: its backends notice its death and exit on their own. A stale pid
        # file (the server crashed, the pid was reused) must not make us kill another process.
        pid = self.pid()
        if pid and self._is_our_postmaster(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return sys.platform != "linux"  # no /proc to check: trust the pid file
        return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(self.data).encode() in cmdline


def new_server(root: Path | None = None) -> PgServer:
    """Create (initdb) a server in a new temporary folder; not started yet. A folder this
    function made itself is deleted again when that fails."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH; "
                                "install them with `apt-get install -y postgresql`")
    made = root is None
    root = Path(root or tempfile.mkdtemp(prefix="mlops-pg-"))
    try:
        return _init_server(bin_dir, root)
    except BaseException:
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise


def _init_server(bin_dir: Path, root: Path) -> PgServer:
    as_user = None
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        import pwd

        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            raise RuntimeError(f"running as root and there is no `{SERVER_USER}` user to run PostgreSQL as "
                               "(PostgreSQL refuses root)") from exc
        as_user = SERVER_USER
        for parent in root.resolve().parents:  # initdb would only say "Permission denied"
            st = parent.stat()
            if not (st.st_mode & 0o001 or (st.st_uid == entry.pw_uid and st.st_mode & 0o100)
                    or (st.st_gid == entry.pw_gid and st.st_mode & 0o010)):
                raise RuntimeError(f"PostgreSQL runs as `{SERVER_USER}` here (it refuses root) and cannot reach "
                                   f"{root} through {parent} (mode {oct(st.st_mode & 0o777)}): use a folder "
                                   "whose parents others may enter, e.g. under /tmp")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        # The server user must be able to reach the folder through its parents (e.g. /tmp/xyz).
        os.chmod(root, 0o700)
    server = PgServer(bin_dir=bin_dir, root=root, port=0, as_user=as_user)
    server.init()
    return server


def start_on_free_port(server: PgServer, attempts: int = 3) -> None:
    """Start on a free port, trying again on a new one: the port can be taken between the
    probe and the start (another test, another CI job on the machine)."""
    for attempt in range(attempts):
        server.port = free_port()
        try:
            server.start()
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise


@contextmanager
def throwaway_server() -> Iterator[PgServer]:
    """A running server on a free 127.0.0.1 port, stopped and deleted afterwards."""
    server = new_server()
    try:
        start_on_free_port(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def _connect(url: str):
    import psycopg2

    con = psycopg2.connect(url, connect_timeout=10)
    con.autocommit = True  # CREATE/DROP DATABASE refuse to run inside a transaction
    return con


def fresh_database(base_url: str, prefix: str = "t") -> str:
    """Create a database with a unique name on the server of `base_url`; returns its URL."""
    from urllib.parse import urlsplit

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = urlsplit(base_url)._replace(path="/postgres").geturl()
    con = _connect(admin)
    try:
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    return urlsplit(base_url)._replace(path=f"/{name}").geturl()


def drop_database(url: str) -> None:
    """Drop the database of `url` (its sessions are ended first)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    con = _connect(parts._replace(path="/postgres").geturl())
    try:
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        con.close()


def main(argv: list[str]) -> int:
    """`python -m mlops_assets_tests.pg_server start <folder>` prints the URL of a started
    server; `stop <folder>` stops it (for .ci/postgres.sh)."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pg_server.py start|stop <folder>", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if argv[0] == "start":
        server = new_server(root)
        start_on_free_port(server)
        (root / "port").write_text(str(server.port))
        print(server.url)
        return 0
    port = int((root / "port").read_text()) if (root / "port").exists() else 0
    bin_dir = find_bin_dir()
    if bin_dir is None or not (root / "data").exists():
        return 0
    PgServer(bin_dir=bin_dir, root=root, port=port, as_user=SERVER_USER if os.geteuid() == 0 else None).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
