"""Shared helpers for the tests that run `python -m jobs.curate` as a user would: environment, sockets, rows."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import psutil
import yaml

from manifests import PRIMARY_KEYS, read_table

REPO = Path(__file__).resolve().parents[1]


def plain_env(**extra: str) -> dict[str, str]:
    """The environment of a plain shell: none of Ray's variables (CI's or conftest's) reach the job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def write_job_config(tmp: Path, inputs: Path, out: Path, **changes: object) -> Path:
    """curate_small.yaml with these inputs and output, units of one video, and `changes` on top, as a file."""
    data = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    data.update({"input": str(inputs), "output": str(out), "batch_size": 1, **changes})
    path = tmp / f"curate-{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def job_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobs.curate", *args]


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def sockets_of(pids: set[int]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(listening, connected to a non-loopback address) TCP sockets of `pids`, as (address, process name)."""
    listening, remote = [], []
    for conn in psutil.net_connections(kind="inet"):
        if conn.pid not in pids:
            continue
        try:
            name = psutil.Process(conn.pid).name()
        except psutil.NoSuchProcess:
            continue
        if conn.status == psutil.CONN_LISTEN:
            listening.append((conn.laddr.ip, name))
        elif conn.raddr and not is_loopback(conn.raddr.ip):
            remote.append((conn.raddr.ip, name))
    return listening, remote


def sorted_rows(root: Path, table: str) -> list[dict]:
    key = PRIMARY_KEYS[table]
    return sorted(read_table(root, table).to_pylist(), key=lambda r: tuple(r[k] for k in key))
