"""Delta Lake underneath: concurrent appends, idempotent units, whole units, nothing committed ever lost."""

from __future__ import annotations

import multiprocessing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _manifests_helpers import append_units, clip_row, score_row, video_row, write_same_unit

from manifests import (
    SCHEMAS,
    ManifestError,
    ManifestWriter,
    commit_unit_tables,
    delta,
    is_unit_complete,
    mark_unit_complete,
    read_table,
    validate_dataset,
)
from manifests.conform import conform

SPAWN = multiprocessing.get_context("spawn")  # delta-rs's runtime does not survive fork
WRITERS, COMMITS = 4, 25
"""The suite runs 4 writers x 25 commits (2-core CI); benchmarks/manifest_scale.py measures 8 x 200."""


def test_concurrent_writers_on_one_table_lose_nothing_and_duplicate_nothing(tmp_path):
    with SPAWN.Pool(WRITERS) as pool:
        skipped = pool.starmap(append_units, [(str(tmp_path), w, COMMITS) for w in range(WRITERS)])
    assert skipped == [0] * WRITERS
    ids = read_table(tmp_path, "scores", columns=["clip_id"]).column("clip_id").to_pylist()
    expected = {f"w{w}-{k:05d}" for w in range(WRITERS) for k in range(COMMITS)}
    assert len(ids) == len(expected) and set(ids) == expected


def test_one_unit_written_by_two_processes_at_once_lands_once(tmp_path):
    start = SPAWN.Manager().Barrier(3)
    with SPAWN.Pool(3) as pool:
        skipped = pool.starmap(write_same_unit, [(str(tmp_path), start)] * 3)
    assert sorted(skipped) == [False, True, True]
    assert read_table(tmp_path, "scores").num_rows == 50
    files = list((tmp_path / "manifests/scores").glob("*.parquet"))
    assert len(files) == 1  # the losers removed their own uncommitted files, never the winner's


def test_a_loser_never_deletes_the_committed_files(tmp_path):
    writer = ManifestWriter(tmp_path, "scores")
    info = writer.write("u", [score_row("c0")])
    with pytest.raises(ManifestError, match="already committed with different rows"):
        ManifestWriter(tmp_path, "scores").write("u", [score_row("c1")])
    assert (tmp_path / "manifests/scores" / info.files[0]).is_file()
    assert ManifestWriter(tmp_path, "scores").write("u", [score_row("c0")]).skipped
    assert read_table(tmp_path, "scores").column("clip_id").to_pylist() == ["c0"]


def test_half_written_unit_is_invisible_until_complete(tmp_path):
    tables = ["videos", "clips"]
    ManifestWriter(tmp_path, "videos").write("b0", [video_row("v0")], complete=False)
    assert read_table(tmp_path, "videos").num_rows == 0  # clips not written yet: readers see nothing of b0
    assert not is_unit_complete(tmp_path, "b0", tables)
    with pytest.raises(ManifestError, match="table clips does not hold it"):
        mark_unit_complete(tmp_path, "b0", tables)
    issues = validate_dataset(tmp_path)
    assert [(i.table, i.check) for i in issues] == [("videos", "unit")] and "b0" in issues[0].examples
    commit_unit_tables(tmp_path, "b0", {"videos": [video_row("v0")], "clips": [clip_row(0)]})
    assert is_unit_complete(tmp_path, "b0", tables)
    assert read_table(tmp_path, "videos").num_rows == 1 and read_table(tmp_path, "clips").num_rows == 1
    assert validate_dataset(tmp_path) == []
    commit_unit_tables(tmp_path, "b0", {"videos": [video_row("v0")], "clips": [clip_row(0)]})  # a retry: no-op
    assert read_table(tmp_path, "clips").num_rows == 1
    with pytest.raises(ManifestError, match="already complete with other tables"):
        mark_unit_complete(tmp_path, "b0", ["videos"])


def test_files_no_commit_names_are_reported_as_orphans(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0")])
    orphan = tmp_path / "manifests/videos/dead.00000000000000aa-00000.parquet"
    pq.write_table(read_table(tmp_path, "videos"), orphan)
    assert read_table(tmp_path, "videos").num_rows == 1
    issues = validate_dataset(tmp_path)
    assert [(i.table, i.check) for i in issues] == [("videos", "orphan")] and orphan.name in issues[0].examples


def test_interrupt_right_after_the_commit_keeps_the_committed_files(tmp_path, monkeypatch):
    real_commit = delta.commit

    def commit_then_interrupt(*args, **kwargs):  # Ctrl-C landing just after delta-rs returned
        real_commit(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(delta, "commit", commit_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ManifestWriter(tmp_path, "scores").write("u", [score_row("c0")])
    monkeypatch.undo()
    assert ManifestWriter(tmp_path, "scores").is_committed("u")
    assert len(list((tmp_path / "manifests/scores").glob("*.parquet"))) == 1  # nothing rolled back
    assert ManifestWriter(tmp_path, "scores").write("u", [score_row("c0")]).skipped  # the retry completes the unit
    assert read_table(tmp_path, "scores").column("clip_id").to_pylist() == ["c0"]


def test_rows_in_any_chunking_are_the_same_unit_and_are_never_combined(tmp_path):
    rows = pa.Table.from_pylist([score_row(f"c{i}") for i in range(10)], schema=SCHEMAS["scores"])
    chunked = pa.concat_tables([rows.slice(0, 3), rows.slice(3)])
    assert conform("scores", chunked).column("clip_id").num_chunks == 2  # no concatenation past 32-bit offsets
    writer = ManifestWriter(tmp_path, "scores")
    assert not writer.write("u", chunked).skipped
    assert writer.write("u", rows.combine_chunks()).skipped
    assert read_table(tmp_path, "scores").num_rows == 10
