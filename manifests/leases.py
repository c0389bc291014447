"""Writer leases: the files a writer has put in a table folder but not yet committed are never collected.

A data file is named `<unit>.<token>-<part>.parquet`. Before a writer creates the first file of a token it
takes a lease on that token (`<root>/manifests/_leases/<token>.lease`, fsync'ed; on object storage one PUT),
and it drops the lease only after its commit landed or its files were discarded. gc reads the leases after it has listed its
candidates and then re-reads each table, so a file is safe either way: while its lease is held gc sees the
lease, and once the lease is gone gc sees the commit (see manifests.housekeeping.gc_dataset).

A lease older than STALE_AFTER_HOURS belongs to a writer that died (writing one unit's files takes seconds
to minutes); gc ignores it, collects its files under the usual retention rules and removes the lease.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from manifests.layout import fsync_path, manifests_dir
from manifests.storage import Location, ObjectPath, Root, list_files

LEASES_DIR = "_leases"
STALE_AFTER_HOURS = 24.0
SUFFIX = ".lease"


def leases_dir(root: Root) -> Location:
    return manifests_dir(root) / LEASES_DIR


@contextmanager
def writer_lease(root: Root, token: str) -> Iterator[None]:
    """Hold a lease on `token` for the body: create it durably before, remove it after (also on error)."""
    folder = leases_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{token}{SUFFIX}"
    body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "taken_at": time.time()})
    if isinstance(path, ObjectPath):
        path.write_text(body)
    else:
        with open(path, "w") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        fsync_path(folder)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def held_tokens(root: Root, now: float | None = None) -> tuple[set[str], list[Location]]:
    """(tokens of live leases, lease files gone stale). A lease's age is its file's modification time."""
    folder = leases_dir(root)
    now = time.time() if now is None else now
    live: set[str] = set()
    stale: list[Location] = []
    for entry in list_files(folder):  # a lease released while we list is left out
        if not entry.name.endswith(SUFFIX):
            continue
        if (now - entry.mtime) / 3600 > STALE_AFTER_HOURS:
            stale.append(folder / entry.name)
        else:
            live.add(entry.name[: -len(SUFFIX)])
    return live, stale
