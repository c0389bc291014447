"""Datasets on object storage: the manifest layer and the `manifests` commands against a real S3 API server
(moto's server mode on 127.0.0.1, started by the test)."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pyarrow.fs as pafs
import pytest
from _manifests_helpers import append_units, run_cli, score_row, small_dataset, write_same_unit
from _s3_helpers import closed_port, s3_server  # noqa: F401 - the `s3` fixture

from manifests import read_table
from manifests.housekeeping import gc_dataset
from manifests.storage import location
from manifests.synthetic import write_clip_files
from manifests.validate import validate_dataset
from manifests.writer import ManifestWriter

SPAWN = multiprocessing.get_context("spawn")  # delta-rs's runtime does not survive fork


def _cli(*args: object) -> dict:
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_dataset_on_s3_is_written_read_and_served_by_every_command(s3, tmp_path):
    root = f"s3://{s3.bucket()}/datasets/ds1"
    tables = small_dataset(root, n_clips=30, n_objects=4, unit_rows=10)
    local = tmp_path / "local"
    small_dataset(local, n_clips=30, n_objects=4, unit_rows=10)
    assert read_table(root, "clips").sort_by("clip_id").equals(read_table(local, "clips").sort_by("clip_id"))
    assert read_table(root, "clips").num_rows == tables["clips"].num_rows
    assert not location(root + "/manifests/clips").parent.name.startswith("s3:")

    summary = {t["table"]: t for t in _cli("summary", root)["tables"]}
    assert summary["clips"]["rows"] == 30 and summary["objects"]["rows"] == tables["objects"].num_rows
    assert len(_cli("head", root, "clips", "-n", "3")["rows"]) == 3
    assert _cli("validate", root)["ok"]
    assert len(_cli("filter", root, "clips", "start_frame >= 0", "--limit", "100")["rows"]) == 30
    snap = _cli("snapshot", root, "--name", "s1")
    assert snap["root"] == root and snap["tables"]["clips"]["rows"] == 30
    assert list(_cli("snapshot", root, "--list")["registered"]) == ["s1"]
    compacted = {c["table"]: c for c in _cli("compact", root)["tables"]}
    assert compacted["clips"]["files_after"] < compacted["clips"]["files_before"]
    assert read_table(root, "clips").sort_by("clip_id").equals(read_table(local, "clips").sort_by("clip_id"))
    # the snapshot pins the pre-compaction files: gc keeps them while it is registered, and collects them after
    gc = _cli("gc", root, "--retention-hours", "0", "--allow-short-retention")
    assert gc["files"]["clips"] == []
    assert run_cli("snapshot", root, "--release", "s1").returncode == 0
    gc = _cli("gc", root, "--retention-hours", "0", "--allow-short-retention")
    assert len(gc["files"]["clips"]) == compacted["clips"]["files_before"]
    assert _cli("validate", root)["ok"] and read_table(root, "clips").num_rows == 30


def test_concurrent_writers_on_one_fresh_s3_root_land_every_unit_once(s3):
    """Writers race from the first commit (so table creation races too), in processes and in threads."""
    root = f"s3://{s3.bucket()}/ds"
    with SPAWN.Pool(3) as pool:
        skipped = pool.starmap(append_units, [(root, w, 6) for w in range(3)])
    assert skipped == [0, 0, 0]
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            writer = ManifestWriter(root, "scores")
            for k in range(4):
                writer.write(f"t{w}-{k}", [score_row(f"t{w}-{k}")])
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = read_table(root, "scores", columns=["clip_id"]).column("clip_id").to_pylist()
    expected = {f"w{w}-{k:05d}" for w in range(3) for k in range(6)} | {f"t{w}-{k}" for w in range(4) for k in range(4)}
    assert sorted(ids) == sorted(expected)
    assert [i.check for i in validate_dataset(root)] == ["reference"]  # only: scores name clips never written


def test_the_same_unit_from_racing_processes_lands_once_on_s3(s3):
    root = f"s3://{s3.bucket()}/ds"
    start = SPAWN.Manager().Event()
    with SPAWN.Pool(3) as pool:
        result = pool.starmap_async(write_same_unit, [(root, start)] * 3)
        start.set()
        skipped = result.get(timeout=300)
    assert sorted(skipped) == [False, True, True]
    assert read_table(root, "scores").num_rows == 50
    assert gc_dataset(root, 0, allow_short_retention=True, dry_run=True)["scores"] == []  # losers left nothing behind
    files = [p.name for p in location(root + "/manifests/scores").glob("*.parquet")]
    assert len(files) == 1


@pytest.mark.parametrize("case", ["wrong key", "missing bucket", "server gone"])
def test_object_store_failures_are_one_line_errors_without_secrets(s3, monkeypatch, case):
    bucket = s3.bucket()
    root = f"s3://{bucket}/ds"
    small_dataset(root, n_clips=6, n_objects=1, unit_rows=6)
    if case == "wrong key":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key[::-1])
    elif case == "missing bucket":
        root = f"s3://{bucket}-absent/ds"
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    for command in (["summary", root], ["validate", root], ["snapshot", root]):
        done = run_cli(*command)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert s3.secret_key not in done.stderr and s3.secret_key[::-1] not in done.stderr
        assert "Traceback" not in done.stderr


def test_sample_and_check_files_on_an_s3_root(s3, tmp_path, monkeypatch):
    """`sample` draws clips from local copies of their objects; `validate --check-files` counts the objects
    that rows name but the bucket lacks (8 of 12 clips have no file here, then one more is deleted)."""
    local = tmp_path / "local"
    tables = small_dataset(local, n_clips=12, n_objects=2, unit_rows=12)
    write_clip_files(local, tables["clips"], 4)
    remote = location(f"s3://{s3.bucket()}/ds")
    pafs.copy_files(str(local), remote.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=remote.fs)
    cache = tmp_path / "cache"
    monkeypatch.setenv("LIVEDITOR_STAGING_DIR", str(cache))
    done = run_cli("sample", remote, "-n", "4", "--out", tmp_path / "sheet.png", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["clips"]) == 4 and (tmp_path / "sheet.png").stat().st_size > 0
    assert len([p for p in cache.rglob("*.mp4")]) == 4  # read from local copies

    def missing_clip_files() -> int:
        done = run_cli("validate", remote, "--check-files", "--json")
        assert done.returncode == 1, done.stderr
        issues = [i for i in json.loads(done.stdout)["issues"] if i["table"] == "clips" and "missing" in i["message"]]
        return sum(i["count"] for i in issues)

    assert missing_clip_files() == 8
    (remote / tables["clips"].column("uri")[0].as_py()).unlink()
    assert missing_clip_files() == 9



def test_report_on_an_s3_root_equals_the_local_one_and_puts_its_png_beside_the_manifests(s3, tmp_path):
    local = tmp_path / "local"
    small_dataset(local, n_clips=30, n_objects=6)
    remote = location(f"s3://{s3.bucket()}/ds")
    pafs.copy_files(str(local), remote.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=remote.fs)
    here, there = _cli("report", local, "--out", tmp_path / "r.png"), _cli("report", remote)
    assert there.pop("png") == str(remote / "yield_report.png") and here.pop("png") == str(tmp_path / "r.png")
    assert there == here and there["pairs"] == 6
    assert (remote / "yield_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
