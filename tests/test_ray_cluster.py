"""A Ray cluster of a head and two worker nodes on 127.0.0.1, the job sent with `ray job submit`.

The cluster is `ray.cluster_utils.Cluster` (docs/RAY.md shows the same cluster with `ray start`): a head
with the dashboard (the job server) and no CPUs, so every stage actor runs on a worker node, and two
worker nodes of 2 CPUs each. The job pauses after its second commit (its fault hook), the test kills the
worker node that hosts the stage actors still alive (SIGKILL of its raylet and workers: the actors and the
finished units waiting in its object store are lost), and releases it: Ray Data restarts the lost actors
on the other node, and the result must equal an undisturbed in-process run row for row.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from _job_helpers import REPO, is_loopback, job_command, plain_env, sockets_of, sorted_rows, write_job_config

from curation.corpus import build_corpus
from curation.ray_runtime import LOOPBACK, loopback_environment, short_temp_dir
from manifests import validate_dataset

TABLES = ("videos", "clips", "scores", "errors")
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def cluster():
    loopback_environment()
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback-only test cluster (docs/RAY.md says why)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the job's `python`
    from ray.cluster_utils import Cluster

    temp_dir = short_temp_dir()
    with socket.socket() as probe:  # a free dashboard port: Ray's fixed 8265 may be taken by another run here
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    head = dict(num_cpus=0, node_ip_address=LOOPBACK, include_dashboard=True, dashboard_host=LOOPBACK,
                dashboard_port=port, temp_dir=str(temp_dir))
    cluster = Cluster(initialize_head=True, head_node_args=head)
    workers = [cluster.add_node(num_cpus=2, node_ip_address=LOOPBACK) for _ in range(2)]
    cluster.wait_for_nodes()
    try:
        yield cluster, workers
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=3, quick=True, videos=6)
    return root / "synthetic"



NO_AGENT_YET = "No available agent to submit job"


def _submit(command: list[str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def _stage_actor_nodes(dashboard: str, alive_only: bool) -> dict[str, set[str]]:
    """Node id -> names of the stage actors on it, alive now or ever (Ray's state API, through the dashboard)."""
    from ray.util.state import list_actors

    nodes: dict[str, set[str]] = {}
    filters = [("state", "=", "ALIVE")] if alive_only else None
    for actor in list_actors(address=dashboard, filters=filters, limit=1000):
        if "StageActor" in actor.class_name:
            nodes.setdefault(actor.node_id, set()).add(actor.class_name)
    return nodes


def test_job_submit_to_a_three_node_loopback_cluster_survives_losing_a_worker_node(cluster, corpus, tmp_path):
    ray_cluster, workers = cluster
    dashboard = f"http://{ray_cluster.webui_url}"
    out, release = tmp_path / "out", tmp_path / "release"
    runtime_env = {"env_vars": {"LIVEDITOR_FAULTS": f"pause_after_commits=2,pause_file={release}"}}
    submit = [RAY, "job", "submit", "--address", dashboard, "--working-dir", str(REPO),
              "--runtime-env-json", json.dumps(runtime_env), "--",
              "python", "-m", "jobs.curate", "--config", str(write_job_config(tmp_path, corpus, out)), "--no-summary"]
    proc = _submit(submit, tmp_path / "submit.log")
    try:
        deadline, tries = time.monotonic() + 600, 1
        while not Path(f"{release}.paused").exists():
            if proc.poll() is not None:  # only a job server whose agent has not registered yet may refuse it
                log = (tmp_path / "submit.log").read_text()
                assert NO_AGENT_YET in log and tries < 30, log
                time.sleep(2)
                proc, tries = _submit(submit, tmp_path / "submit.log"), tries + 1
            assert time.monotonic() < deadline, "the job never reached its second commit"
            time.sleep(0.2)
        listening, remote = sockets_of({p.pid for p in psutil.Process().children(recursive=True)})
        assert len(listening) >= 6 and all(is_loopback(ip) for ip, _ in listening), listening
        assert remote == []

        ever = _stage_actor_nodes(dashboard, alive_only=False)
        assert len(ever) == 2 and all(w.node_id in ever for w in workers), ever  # the work spread over both
        alive = _stage_actor_nodes(dashboard, alive_only=True)  # Ray Data stops the actors of finished stages
        victim = next(w for w in workers if w.node_id in alive)
        ray_cluster.remove_node(victim, allow_graceful=False)
        release.touch()
        assert proc.wait(timeout=900) == 0, (tmp_path / "submit.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "succeeded" in (tmp_path / "submit.log").read_text()

    whole = tmp_path / "whole"
    undisturbed = subprocess.run(job_command("--config", str(write_job_config(tmp_path, corpus, whole)), "--in-process",
                                             "--no-summary"), cwd=REPO, capture_output=True, text=True,
                                 env=plain_env(), timeout=900)
    assert undisturbed.returncode == 0, undisturbed.stderr
    for table in TABLES:
        assert sorted_rows(out, table) == sorted_rows(whole, table), f"{table} differs after losing a node"
    assert validate_dataset(out) == []
