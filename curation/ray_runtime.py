"""Start (or join) Ray for a job, and make sure it is stopped again.

Default: an embedded single-node Ray that binds only to 127.0.0.1, whatever the shell exports. Ray
decides between "loopback only" and "use the machine's address" from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER,
read once into `ray._private.ray_constants.ENABLE_RAY_CLUSTER` when `ray` is first imported, and its
child processes (GCS, raylet, workers, agents) read the same variable from the environment they inherit.
So `local_ray` sets the variable *and* pins the constant before `ray.init`: that holds even when
something imported `ray` before us. With `_node_ip_address` = 127.0.0.1 and no dashboard, nothing
listens outside loopback (tests/test_ray_loopback.py checks the listening sockets of a real job started
from an environment without the variable). With an address ("auto", "ray://...", or RAY_ADDRESS set by
`ray job submit`) the job joins that cluster instead and starts nothing itself.

The console shows the job's own lines and errors: the driver's Ray log lines go to `<output>/logs/ray/
driver.log`, workers' output is not forwarded, and a local Ray's session logs are copied to
`<output>/logs/ray/` when the run ends (its temp folder is removed).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = "127.0.0.1"


class RayStartError(Exception):
    """Ray could not be started or joined; one line."""

LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def loopback_environment() -> None:
    """Make a local Ray (this process's and its children's) stay on loopback; call before `ray.init`.

    Sets the environment for the processes Ray will start, then pins the constant Ray's own Python code
    reads, which was fixed at Ray's first import (possibly before this call, from another environment).
    """
    os.environ.update(LOOPBACK_ENV)
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def short_temp_dir() -> Path:
    """A fresh short temp folder for Ray's sessions: its unix socket paths must stay under ~107 chars."""
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="ray-", dir=base))


def cluster_address(address: str | None = None) -> str | None:
    """The cluster to join: the given address, else RAY_ADDRESS (set by `ray job submit`); None = start locally."""
    return address or os.environ.get("RAY_ADDRESS") or None


def route_driver_logs(log_dir: Path | None) -> None:
    """Ray's and Ray Data's log lines in this process go to `<log_dir>/driver.log`; the console keeps errors.

    Ray installs its console handlers when `ray` and `ray.data` are first imported (its token-auth notice,
    Ray Data's per-dataset INFO lines and its "progress bars disabled" warning would otherwise interleave
    with the job's own progress lines).
    """
    import ray.data  # noqa: F401 - importing it installs Ray Data's logging configuration

    file_handler = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "driver.log", encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if type(handler) is not logging.FileHandler and isinstance(handler, logging.StreamHandler):
                handler.setLevel(logging.ERROR)
        if file_handler is not None and file_handler not in logger.handlers:
            logger.addHandler(file_handler)


def keep_ray_logs(temp_dir: Path, log_dir: Path | None) -> None:
    """Copy the finished session's logs out of the temp folder (which is removed) into `log_dir`."""
    logs = temp_dir / "session_latest" / "logs"
    if log_dir is None or not logs.is_dir():
        return
    target = log_dir / logs.resolve().parent.name  # session_<date>_<pid>
    try:
        shutil.copytree(logs, target, dirs_exist_ok=True, ignore_dangling_symlinks=True)
    except OSError:  # logs are a convenience; a full or read-only disk must not fail a finished run
        pass


@contextmanager
def native_stderr_to(log_file: Path | None) -> Iterator[None]:
    """Point file descriptor 2 at `log_file` while keeping `sys.stderr` on the console.

    Ray's C++ core inside the driver writes its notices straight to descriptor 2 (e.g. an `E` line that
    Ray Data's own actor pools have constructor arguments in the object store, ray-project/ray#53727), so
    only the descriptor can take them off the console; Python code, the job's progress lines included,
    writes through `sys.stderr`, which is swapped for a stream on a copy of the console descriptor.
    """
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    console_fd = os.dup(2)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(console_fd), "w", buffering=1, encoding=python_stderr.encoding,
                           errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(console_fd, 2)
        os.close(console_fd)


JOIN_PROBE_S = 10.0
"""How long a cluster address may take to accept a TCP connection before the join is refused."""


def check_answers(address: str) -> None:
    """Refuse in one line a cluster address where nothing accepts a connection: Ray's own join waits on an
    unreachable GCS for many minutes (over ten here) before it gives up. Forms not of host:port ("auto") are
    left to Ray."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_PROBE_S):
            pass
    except OSError as exc:
        raise RayStartError(f"could not join the Ray cluster at {address}: nothing answers on {host}:{port} "
                            f"({exc.strerror or type(exc).__name__})") from None


@contextmanager
def _one_line_start_errors(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exception/RuntimeError/ConnectionError here
        reasons = [str(exc) or type(exc).__name__]
        if exc.__cause__ is not None:  # Ray's "Failed to connect to Ray cluster" hides why behind its cause
            reasons.append(str(exc.__cause__) or type(exc.__cause__).__name__)
        raise RayStartError(f"{what}: {' '.join(' ('.join(reasons).split())}{')' * (len(reasons) - 1)}") from None


@contextmanager
def ray_session(num_cpus: int, address: str | None = None, log_dir: Path | None = None) -> Iterator[str]:
    """Run the body with Ray initialised; yields "local" or the address joined. Always shuts Ray down.

    `log_dir` receives the driver's Ray log lines and, for a local Ray, a copy of its session logs.
    """
    with native_stderr_to(log_dir / "driver.log" if log_dir is not None else None):
        with _ray(num_cpus, cluster_address(address), log_dir) as mode:
            yield mode


@contextmanager
def _ray(num_cpus: int, address: str | None, log_dir: Path | None) -> Iterator[str]:
    temp_dir = None
    if address:
        import ray

        check_answers(address)
        route_driver_logs(log_dir)
        with _one_line_start_errors(f"could not join the Ray cluster at {address}"):
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        mode = address
    else:
        loopback_environment()
        import ray

        route_driver_logs(log_dir)
        temp_dir = short_temp_dir()
        try:
            with _one_line_start_errors("could not start a local Ray"):
                ray.init(
                    num_cpus=num_cpus,
                    _node_ip_address=LOOPBACK,
                    include_dashboard=False,
                    _temp_dir=str(temp_dir),
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
        except RayStartError:
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        mode = "local"
    try:
        yield mode
    finally:
        ray.shutdown()
        if temp_dir is not None:
            keep_ray_logs(temp_dir, log_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)
