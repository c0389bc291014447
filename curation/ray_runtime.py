"""Start (or join) Ray for a job, and make sure it is stopped again.

Default: an embedded single-node Ray that binds only to 127.0.0.1. Three settings do that together:
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in the environment before Ray starts (it keeps a single-node Ray on
loopback; without it Ray's processes also talk to the machine's other address), `_node_ip_address` =
127.0.0.1, and no dashboard. Usage stats are off. With an address ("auto", "ray://...", or RAY_ADDRESS
set by `ray job submit`) the job joins that cluster instead and starts nothing itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def loopback_environment() -> None:
    """Set the environment a local Ray needs to stay on loopback; must run before `ray.init`."""
    os.environ.update(LOOPBACK_ENV)


def short_temp_dir() -> Path:
    """A fresh short temp folder for Ray's sessions: its unix socket paths must stay under ~107 chars."""
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="ray-", dir=base))


def cluster_address(address: str | None = None) -> str | None:
    """The cluster to join: the given address, else RAY_ADDRESS (set by `ray job submit`); None = start locally."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextmanager
def ray_session(num_cpus: int, address: str | None = None) -> Iterator[str]:
    """Run the body with Ray initialised; yields "local" or the address joined. Always shuts Ray down."""
    import ray

    address = cluster_address(address)
    temp_dir = None
    if address:
        ray.init(address=address, logging_level="WARNING")
        mode = address
    else:
        loopback_environment()
        temp_dir = short_temp_dir()
        ray.init(
            num_cpus=num_cpus,
            _node_ip_address=LOOPBACK,
            include_dashboard=False,
            _temp_dir=str(temp_dir),
            logging_level="WARNING",
        )
        mode = "local"
    try:
        yield mode
    finally:
        ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
