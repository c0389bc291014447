"""Commit latency and throughput: a dataset on local disk vs on an S3 API server on loopback.

Starts moto's S3 server (`python -m moto.server`) on 127.0.0.1 with throwaway credentials, then for each
root (a temp folder, an `s3://` bucket on that server) measures, in this process:
- sequential one-row unit commits through ManifestWriter.write (the table's commit plus the completion
  record), per-commit latency (median and p90);
- throughput with `--writers` processes appending `--commits` one-row units each to one table, every row
  checked present once afterwards;
- taking a snapshot of the result and reading it back (`read_table`).
The loopback server has no network latency and moto is a Python server, so the S3 figures show the cost of
the object-store protocol (more requests per commit, no rename), not of a real region.

    python benchmarks/s3_commit.py [--commits 40] [--writers 4] [--json-out benchmarks/results/s3_commit.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from manifests import read_table, take_snapshot  # noqa: E402
from manifests.writer import ManifestWriter  # noqa: E402


def _row(unit: str) -> dict:
    return {"clip_id": unit, "signal": "blur", "value": 1.0, "stage": "bench", "stage_version": "1",
            "model_name": "none", "weights_id": "none"}


def _append(root: str, worker: int, commits: int) -> None:
    writer = ManifestWriter(root, "scores")
    for k in range(commits):
        writer.write(f"w{worker}-{k:05d}", [_row(f"w{worker}-{k:05d}")])


def measure(root: str, commits: int, writers: int) -> dict:
    """Sequential latency, concurrent throughput and snapshot+read time on one root."""
    writer = ManifestWriter(root, "scores")
    latencies = []
    for k in range(commits):
        start = time.perf_counter()
        writer.write(f"seq-{k:05d}", [_row(f"seq-{k:05d}")])
        latencies.append(time.perf_counter() - start)
    spawn = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with spawn.Pool(writers) as pool:
        pool.starmap(_append, [(root, w, commits) for w in range(writers)])
    parallel_s = time.perf_counter() - start
    start = time.perf_counter()
    snapshot = take_snapshot(root, ["scores"])
    ids = read_table(root, "scores", columns=["clip_id"], snapshot=snapshot).column("clip_id").to_pylist()
    read_s = time.perf_counter() - start
    expected = commits * (writers + 1)
    if len(ids) != expected or len(set(ids)) != expected:
        raise SystemExit(f"{root}: {len(ids)} rows ({len(set(ids))} distinct), expected {expected}")
    latencies.sort()
    return {
        "commit_median_ms": 1000 * statistics.median(latencies),
        "commit_p90_ms": 1000 * latencies[int(0.9 * (len(latencies) - 1))],
        "sequential_commits_per_s": commits / sum(latencies),
        "parallel_commits_per_s": writers * commits / parallel_s,
        "snapshot_and_read_s": read_s,
        "rows_checked": expected,
    }


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=40, help="sequential commits, and commits per writer")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    proc, endpoint = start_server()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint)
    try:
        import pyarrow.fs as pafs

        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        pafs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http", region="us-east-1",
                          allow_bucket_creation=True).create_dir(bucket)
        with tempfile.TemporaryDirectory() as tmp:
            results = {"local disk": measure(tmp, args.commits, args.writers),
                       "s3 (moto, loopback)": measure(f"s3://{bucket}/ds", args.commits, args.writers)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    keys = ["commit_median_ms", "commit_p90_ms", "sequential_commits_per_s", "parallel_commits_per_s",
            "snapshot_and_read_s"]
    print(f"{'root':22}" + "".join(f"{k:>28}" for k in keys))
    for name, r in results.items():
        print(f"{name:22}" + "".join(f"{r[k]:>28.2f}" for k in keys))
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "commits": args.commits, "writers": args.writers, "results": results,
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
