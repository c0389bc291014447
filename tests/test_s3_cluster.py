"""`ray job submit` of a curation from and to `s3://` on a loopback cluster whose nodes share no staging folder.

A head (no CPUs: every stage actor runs on a worker node) and two worker nodes, each node with its own
LIVEDITOR_STAGING_DIR, as machines without a shared disk would have: a stage on one node finds the files
an earlier stage wrote on another only through the object store. The result must equal a local
in-process run, and no node may keep a staged file or a cached input.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs as pafs
from _job_helpers import REPO, job_command, plain_env, sorted_rows, write_job_config
from _s3_helpers import s3_server  # noqa: F401 - the `s3` fixture

from curation.corpus import build_corpus
from curation.ray_runtime import LOOPBACK, loopback_environment, short_temp_dir
from manifests import validate_dataset
from manifests.storage import location

RAY = str(Path(sys.executable).with_name("ray"))
NO_AGENT_YET = "No available agent to submit job"


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_stages_on_nodes_without_a_shared_disk_meet_through_the_object_store(s3, tmp_path):
    build_corpus(tmp_path / "corpus", seed=2, quick=True, videos=3)
    corpus = tmp_path / "corpus" / "synthetic"
    loopback_environment()
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback-only test cluster (docs/RAY.md says why)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the job's `python`
    from ray.cluster_utils import Cluster

    staging = {name: tmp_path / f"staging-{name}" for name in ("head", "node1", "node2")}
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    head = dict(num_cpus=0, node_ip_address=LOOPBACK, include_dashboard=True, dashboard_host=LOOPBACK,
                dashboard_port=port, temp_dir=str(short_temp_dir()),
                env_vars={"LIVEDITOR_STAGING_DIR": str(staging["head"])})
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        for name in ("node1", "node2"):
            cluster.add_node(num_cpus=2, node_ip_address=LOOPBACK, env_vars={"LIVEDITOR_STAGING_DIR": str(staging[name])})
        cluster.wait_for_nodes()
        bucket = s3.bucket()
        source, root = location(f"s3://{bucket}/corpus"), f"s3://{bucket}/curated"
        pafs.copy_files(str(corpus), source.key, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=source.fs)
        config = write_job_config(tmp_path, corpus, tmp_path / "unused")
        submit = [RAY, "job", "submit", "--address", f"http://{cluster.webui_url}", "--working-dir", str(REPO), "--",
                  "python", "-m", "jobs.curate", "--config", str(config), "--input", str(source), "--output", root,
                  "--no-summary"]
        deadline = time.monotonic() + 600
        while True:  # only a job server whose agent has not registered yet may refuse the job
            done = subprocess.run(submit, cwd=REPO, capture_output=True, text=True, timeout=900)
            if NO_AGENT_YET not in done.stdout + done.stderr or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert done.returncode == 0 and "succeeded" in done.stdout + done.stderr, done.stdout + done.stderr
    finally:
        cluster.shutdown()

    whole = tmp_path / "whole"
    local = subprocess.run(job_command("--config", str(write_job_config(tmp_path, corpus, whole)), "--in-process",
                                       "--no-summary"), cwd=REPO, capture_output=True, text=True, env=plain_env(),
                           timeout=900)
    assert local.returncode == 0, local.stderr
    for table in ("clips", "scores"):  # videos and errors rows name the inputs by their s3:// URIs here
        assert sorted_rows(root, table) == sorted_rows(whole, table), f"{table} differs"
    assert len(sorted_rows(root, "errors")) == len(sorted_rows(whole, "errors"))
    assert validate_dataset(root, check_files=True) == []
    used = [name for name in ("node1", "node2") if staging[name].exists()]
    assert used, "no stage staged on a worker node's own folder"
    leftovers = {name: _files(folder) for name, folder in staging.items()}
    assert all(not files for files in leftovers.values()), json.dumps({k: [str(p) for p in v] for k, v in leftovers.items()})
