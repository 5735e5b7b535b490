"""The warehouse lock: the one thing that keeps DuckDB writers apart, across processes.

DuckDB lets one process open the file for writing, or several for reading, and refuses the rest
at once ("Could not set lock on file"); it never waits. So every process that opens the
warehouse first takes this lock beside the file (shared for readers, exclusive for writers and
for a whole `dbt build`, whose subprocess opens the file itself), waiting with a bound and saying
for whom it waits. Nothing else waits for the file: connecting under this lock finds DuckDB's own
lock free (duckdb_store.py). The Dagster pool `mlops_warehouse` (instance/concurrency.py) is
not a second lock: it decides which runs' writing steps are started, so that they queue in
Dagster instead of each holding a run worker blocked here; writers outside Dagster (the CLI,
a dbt run by hand) are kept apart by this lock alone.

Locks are `flock`s, released by the kernel when the holder dies, so a crashed run leaves nothing
to clean up. The lock file records its last holder for the timeout message. Re-entrant within a
process (a step that holds it may open the warehouse again).
"""
from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WarehouseLockTimeout(TimeoutError):
    """The lock was not free within the bound; the message names the lock file and its holder."""


def lock_path(db_path: str | os.PathLike) -> Path:
    return Path(f"{db_path}.lock")


def default_holder() -> str:
    cmd = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:3]))
    return f"pid {os.getpid()} ({cmd})"


def describe_holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


# Per process: lock file -> [fd, exclusive, depth]. flock locks belong to the open file, so a
# second open in the same process would wait for itself; nested use reuses the first one.
_held: dict[str, list] = {}
_guard = threading.RLock()


@contextmanager
def warehouse_lock(db_path: str | os.PathLike, *, exclusive: bool, timeout_s: float, holder: str | None = None,
                   log: Callable[[str], None] | None = None, poll_s: float = 0.2) -> Iterator[None]:
    """Hold the warehouse lock (exclusive for writers). Waits at most `timeout_s`, logging once
    that it waits and for whom; raises WarehouseLockTimeout after that."""
    path = lock_path(db_path)
    key = str(path.absolute())
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[2] += 1
    if entry is not None:  # nested in this process: reuse the held lock, upgrading it if need be
        upgraded = exclusive and not entry[1]
        try:
            if upgraded:
                _acquire(entry[0], path, True, timeout_s, log, poll_s)
                entry[1] = True
            yield
        finally:
            if upgraded:
                fcntl.flock(entry[0], fcntl.LOCK_SH)
                entry[1] = False
            with _guard:
                entry[2] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, exclusive, timeout_s, log, poll_s)
        who = f"{holder or default_holder()}, {'writing' if exclusive else 'reading'} since {time.strftime('%H:%M:%S')}"
        try:  # for the "waiting for whom" message of others; readers overwrite each other, harmless
            os.ftruncate(fd, 0)
            os.pwrite(fd, who.encode(), 0)
        except OSError:
            pass
        with _guard:
            _held[key] = [fd, exclusive, 1]
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
    finally:
        os.close(fd)  # releases the flock


def _acquire(fd: int, path: Path, exclusive: bool, timeout_s: float, log, poll_s: float) -> None:
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    started = time.monotonic()
    said = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            if said and log:
                log(f"warehouse lock {path} acquired after {time.monotonic() - started:.1f}s")
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise WarehouseLockTimeout(
                f"gave up after {waited:.0f}s waiting for the warehouse lock {path}, held by "
                f"{describe_holder(path)}; if that process is gone the lock is free again, so retry")
        if not said and log:
            log(f"waiting up to {timeout_s:.0f}s for the warehouse lock {path}, held by {describe_holder(path)}")
            said = True
        time.sleep(poll_s)
