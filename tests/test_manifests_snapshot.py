"""Snapshots: pinned versions and one frozen file list for every reader, across fork and spawn."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys

import pytest
from _manifests_helpers import clip_row

from manifests import ManifestError, ManifestWriter, Snapshot, open_table, read_table, take_snapshot


def _ids(table) -> list[str]:
    return sorted(table.column("clip_id").to_pylist())


def _read_in_worker(snapshot_json: str) -> list[str]:
    """A DataLoader-style worker: builds its reader from the snapshot's file list alone."""
    snapshot = Snapshot.from_json(snapshot_json)
    return _ids(open_table(snapshot.root, "clips", snapshot=snapshot).to_table())


def _open_in_worker(root: str, version: int) -> list[str]:
    """A spawned worker may open the Delta log itself, pinned at a version."""
    return _ids(read_table(root, "clips", version=version))


@pytest.fixture
def growing(tmp_path):
    writer = ManifestWriter(tmp_path, "clips")
    writer.write("u0", [clip_row(0), clip_row(1)])
    snapshot = take_snapshot(tmp_path)
    writer.write("u1", [clip_row(2)])
    return tmp_path, snapshot


def test_snapshot_pins_rows_while_writers_append(growing):
    root, snapshot = growing
    first = [clip_row(0)["clip_id"], clip_row(1)["clip_id"]]
    assert snapshot.table("clips").rows == 2 and len(snapshot.table("clips").files) == 1
    assert _ids(open_table(root, "clips", snapshot=snapshot).to_table()) == first
    assert _ids(read_table(root, "clips", version=snapshot.table("clips").version)) == first
    assert len(_ids(read_table(root, "clips"))) == 3
    again = Snapshot.from_json(json.dumps(snapshot.to_json()))
    assert again == snapshot


def test_workers_see_the_snapshot_after_fork_and_spawn(growing):
    root, snapshot = growing
    text = json.dumps(snapshot.to_json())
    expected = [clip_row(0)["clip_id"], clip_row(1)["clip_id"]]
    with multiprocessing.get_context("fork").Pool(2) as pool:  # the parent has used delta-rs already
        assert pool.map(_read_in_worker, [text, text]) == [expected, expected]
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.starmap(_open_in_worker, [(str(root), snapshot.table("clips").version)]) == [expected]


def test_snapshot_cli_writes_the_file_list(growing, tmp_path):
    root, _ = growing
    out = tmp_path / "snap.json"
    done = subprocess.run([sys.executable, "-m", "manifests", "snapshot", str(root), "--out", str(out), "--version", "clips=1"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pinned = Snapshot.from_json(out.read_text())
    assert pinned.table("clips").version == 1 and pinned.table("clips").rows == 2
    bad = subprocess.run([sys.executable, "-m", "manifests", "snapshot", str(root), "--version", "clips=99"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "version 99" in bad.stderr


def test_bad_snapshot_text_is_one_error():
    with pytest.raises(ManifestError, match="not a manifests snapshot"):
        Snapshot.from_json("{}")
