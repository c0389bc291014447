"""compact and gc: fewer files, the same rows, nothing lost while a job appends."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time

import pyarrow.parquet as pq
from _manifests_helpers import append_units, compact_in_loop, score_row

from manifests import ManifestWriter, read_table, take_snapshot, validate_dataset

SPAWN = multiprocessing.get_context("spawn")


def _ids(root):
    return sorted(read_table(root, "scores", columns=["clip_id"]).column("clip_id").to_pylist())


def test_compact_merges_complete_units_only_and_keeps_every_row(tmp_path):
    writer = ManifestWriter(tmp_path, "scores")
    for k in range(6):
        writer.write(f"u{k}", [score_row(f"c{k}-{i}") for i in range(3)])
    writer.write("half", [score_row("h")], complete=False)
    before = _ids(tmp_path)
    old = take_snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "manifests", "compact", str(tmp_path), "scores", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["tables"][0]
    assert (result["files_before"], result["files_after"], result["rows"]) == (7, 2, 18)
    assert _ids(tmp_path) == before and len(before) == 18
    assert len(take_snapshot(tmp_path).table("scores").files) == 1
    assert [i.check for i in validate_dataset(tmp_path) if i.table == "scores"] == ["unit", "reference"]  # no orphans
    assert sorted(read_table(tmp_path, "scores", snapshot=old).column("clip_id").to_pylist()) == before  # old files kept
    ManifestWriter(tmp_path, "scores").write("half", [score_row("h")])  # completing it later still works
    assert len(_ids(tmp_path)) == 19


def test_compact_and_gc_while_writers_append(tmp_path):
    with SPAWN.Pool(3) as pool:
        writers = [pool.apply_async(append_units, (str(tmp_path), w, 15)) for w in range(2)]
        compactor = pool.apply_async(compact_in_loop, (str(tmp_path), 4))
        assert [w.get() for w in writers] == [0, 0]
        compactor.get()
    assert _ids(tmp_path) == sorted(f"w{w}-{k:05d}" for w in range(2) for k in range(15))


def test_gc_removes_orphans_and_compacted_files_after_the_window_only(tmp_path):
    writer = ManifestWriter(tmp_path, "scores")
    for k in range(3):
        writer.write(f"u{k}", [score_row(f"c{k}")])
    folder = tmp_path / "manifests/scores"
    orphan = folder / "dead.00000000000000aa-00000.parquet"
    pq.write_table(read_table(tmp_path, "scores"), orphan)
    run = [sys.executable, "-m", "manifests", "gc", str(tmp_path), "--json", "--allow-short-retention"]
    young = subprocess.run([*run, "--retention-hours", "1"], capture_output=True, text=True)
    assert young.returncode == 0, young.stderr
    assert json.loads(young.stdout)["files"]["scores"] == [] and orphan.exists()  # inside the window: kept
    compacted = subprocess.run([sys.executable, "-m", "manifests", "compact", str(tmp_path), "--json"], capture_output=True,
                               text=True)
    units = json.loads(compacted.stdout)["tables"][-1]
    assert (units["table"], units["files_before"], units["files_after"], units["rows"]) == ("_units", 3, 1, 3)
    time.sleep(0.01)
    dry = json.loads(subprocess.run([*run, "--retention-hours", "0", "--dry-run"], capture_output=True, text=True).stdout)
    assert len(dry["files"]["scores"]) == 4 and orphan.exists()  # 3 compacted-away files and the orphan
    gone = json.loads(subprocess.run([*run, "--retention-hours", "0"], capture_output=True, text=True).stdout)
    assert len(gone["files"]["scores"]) == 4 and not orphan.exists()
    assert _ids(tmp_path) == ["c0", "c1", "c2"]
    assert len(list(folder.glob("*.parquet"))) == 1 and len(list((tmp_path / "manifests/_units").glob("*.parquet"))) == 1
