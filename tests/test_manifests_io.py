"""Writer and reader: round trips, sharding, atomicity, resume, bad rows, refused files, pushdown."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from _manifests_helpers import clip_row, commit_raw, files_under, small_dataset, video_row

from manifests import SCHEMAS, ManifestError, ManifestWriter, open_table, read_table
from manifests.reader import committed_parts, part_batches
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, SCHEMA_VERSION


def test_round_trip_all_six_tables(tmp_path):
    written = small_dataset(tmp_path)
    for table, data in written.items():
        back = read_table(tmp_path, table)
        assert back.schema.equals(SCHEMAS[table]), table
        assert back.num_rows == data.num_rows > 0, table
        assert back.sort_by(back.column_names[0]).equals(data.sort_by(data.column_names[0])), table


def test_dict_rows_round_trip_with_defaults_and_lists(tmp_path):
    rows = [
        {"object_id": "o1", "clip_id": "c1", "track_id": 3, "class_name": "dog", "confidence": 0.5,
         "frame_indices": [0, 1], "boxes": [[0, 0, 4, 4], [1.5, 1, 5, 5]], "mask_rle": ["0", None],
         "stage": "objects", "stage_version": "1", "model_name": "yolo", "weights_id": "random-init"},
    ]
    ManifestWriter(tmp_path, "objects").write("u", rows)
    back = read_table(tmp_path, "objects").to_pylist()[0]
    assert back["boxes"] == [[0, 0, 4, 4], [1.5, 1, 5, 5]]
    assert back["mask_uri"] is None and back["mask_height"] is None
    assert back["weights_id"] == "random-init"


def test_rolls_parts_by_rows_and_bytes(tmp_path):
    rows = [clip_row(i) for i in range(1000)]
    info = ManifestWriter(tmp_path, "clips", max_rows_per_shard=300, row_group_rows=100).write("b", rows)
    assert [re.sub(r"\.[0-9a-f]{16}-", ".T-", f) for f in info.files] == [f"b.T-{k:05d}.parquet" for k in range(4)]
    assert [pq.read_metadata(tmp_path / "manifests/clips" / f).num_rows for f in info.files] == [300, 300, 300, 100]
    by_bytes = ManifestWriter(tmp_path, "clips", max_bytes_per_shard=1, row_group_rows=250).write("c", rows[:20])
    assert len(by_bytes.files) == 20  # row groups are sized by bytes too: one row each, and each closes its part
    assert read_table(tmp_path, "clips").num_rows == 1020
    assert info.rows == 1000 and info.schema_version == SCHEMA_VERSION and info.version == 1


def test_row_groups_are_sized_by_bytes(tmp_path):
    rows = [clip_row(i, reject_reason="x" * 2000) for i in range(400)]
    info = ManifestWriter(tmp_path, "clips", row_group_bytes=100_000).write("big", rows)
    meta = pq.read_metadata(tmp_path / "manifests/clips" / info.files[0])
    assert meta.num_row_groups > 4 and max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 50


def test_rerun_with_same_rows_is_a_no_op_and_with_other_rows_an_error(tmp_path):
    writer = ManifestWriter(tmp_path, "clips")
    first = writer.write("batch-000017", [clip_row(1), clip_row(2)])
    assert writer.is_committed("batch-000017") and not first.skipped
    again = writer.write("batch-000017", [clip_row(2), clip_row(1)])  # same rows, another order
    assert again.skipped and again.rows == 2
    with pytest.raises(ManifestError, match="unit batch-000017 is already committed with different rows"):
        writer.write("batch-000017", [clip_row(1)])
    assert read_table(tmp_path, "clips").num_rows == 2
    assert len(list((tmp_path / "manifests/clips").glob("*.parquet"))) == 1  # the refused rows left no file


def test_empty_unit_commits_with_no_files(tmp_path):
    writer = ManifestWriter(tmp_path, "scores")
    info = writer.write("empty", [])
    assert info.rows == 0 and info.files == () and writer.is_committed("empty")
    assert not list(tmp_path.rglob("manifests/scores/*.parquet"))
    assert read_table(tmp_path, "scores").num_rows == 0


def test_uncommitted_and_incomplete_files_are_invisible_then_replaced(tmp_path):
    writer = ManifestWriter(tmp_path, "clips")
    writer.write("done", [clip_row(0)])
    folder = tmp_path / "manifests/clips"
    # A killed writer: a data file on disk that no commit names, and a unit committed but never completed.
    pq.write_table(pa.Table.from_pylist([clip_row(9)], schema=SCHEMAS["clips"]), folder / "killed.00000000000000aa-00000.parquet")
    writer.write("half", [clip_row(5)], complete=False)
    assert read_table(tmp_path, "clips").column("clip_id").to_pylist() == [clip_row(0)["clip_id"]]
    assert not writer.is_committed("killed") and writer.is_committed("half")
    info = writer.write("killed", [clip_row(7)])
    assert not info.skipped and info.rows == 1
    assert sorted(read_table(tmp_path, "clips").column("start_frame").to_pylist()) == [0, 7]


def test_unit_ids_that_prefix_each_other_stay_apart(tmp_path):
    writer = ManifestWriter(tmp_path, "clips")
    writer.write("a-00001", [clip_row(1)])
    writer.write("a", [clip_row(2)])
    writer.write("a.0123456789abcdef", [clip_row(3)])
    assert read_table(tmp_path, "clips").num_rows == 3


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{k: v for k, v in clip_row(0).items() if k != "fps"}], "clips.fps: required column is missing"),
        ([clip_row(0, fps="fast")], "clips.fps: wrong type string, expected double"),
        ([clip_row(0, start_frame=1.5)], "clips.start_frame: wrong type double, expected int64"),
        ([clip_row(0), clip_row(1, video_id=None)], "clips.video_id: null in required column (row 1)"),
        ([clip_row(0, colour="red")], "clips.colour: unknown column"),
        ([clip_row(0, stage_version=" ")], "clips.stage_version: empty provenance value"),
        ([clip_row(0, width=2**40)], "clips.width: cannot convert to int32"),
        (["not a dict"], "clips: row 0 is a str, expected a dict"),
    ],
)
def test_bad_rows_raise_one_line_and_leave_nothing(tmp_path, rows, message):
    with pytest.raises(ManifestError) as err:
        ManifestWriter(tmp_path, "clips").write("bad", rows)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert files_under(tmp_path) == []


def test_bad_arrow_table_is_refused(tmp_path):
    data = pa.table({"clip_id": ["c"], "signal": ["blur"], "value": pa.array(["1.0"]),
                     "stage": ["s"], "stage_version": ["1"], "model_name": ["none"], "weights_id": ["none"]})
    with pytest.raises(ManifestError, match=r"scores.value: wrong type string, expected double"):
        ManifestWriter(tmp_path, "scores").write("u", data)
    ok = data.set_column(2, "value", pa.array([1], pa.int32()))  # int widens to double: allowed
    assert ManifestWriter(tmp_path, "scores").write("u", ok).rows == 1


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ManifestError, match="unknown table 'clip'"):
        ManifestWriter(tmp_path, "clip")
    with pytest.raises(ManifestError, match="bad unit id"):
        ManifestWriter(tmp_path, "clips").write("../escape", [clip_row(0)])


def test_projection_and_pushdown(tmp_path):
    rows = [clip_row(i, fps=24.0 if i < 500 else 30.0) for i in range(1000)]
    ManifestWriter(tmp_path, "clips", row_group_rows=100).write("u", rows)
    out = read_table(tmp_path, "clips", columns=["clip_id"], filter=pc.field("fps") > 24)
    assert out.column_names == ["clip_id"] and out.num_rows == 500
    # Row-group statistics let the scan skip whole row groups: half of the 10 groups hold fps == 24 only.
    fragment = next(open_table(tmp_path, "clips").get_fragments())
    kept = fragment.split_by_row_group(filter=pc.field("fps") > 24)
    assert len(kept) == 5
    with pytest.raises(ManifestError, match="clips.nope: unknown column"):
        read_table(tmp_path, "clips", columns=["nope"])


def test_missing_or_empty_table_reads_as_zero_rows(tmp_path):
    assert read_table(tmp_path, "edit_pairs").num_rows == 0
    assert open_table(tmp_path, "edit_pairs").schema.equals(SCHEMAS["edit_pairs"])


def _good_part(tmp_path):
    info = ManifestWriter(tmp_path, "videos").write("u", [video_row()])
    return tmp_path / "manifests/videos" / info.files[0]


def test_truncated_part_is_refused_naming_the_file(tmp_path):
    part = _good_part(tmp_path)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with pytest.raises(ManifestError, match=r"u\.[0-9a-f]{16}-00000.parquet: not a readable Parquet file"):
        open_table(tmp_path, "videos")


def test_foreign_parquet_is_refused(tmp_path):
    commit_raw(tmp_path, "clips", "x", pa.table({"a": [1]}), metadata={b"other": b"1"})
    with pytest.raises(ManifestError, match=r"x\.0123456789abcdef-00000.parquet: foreign Parquet file \(no liveditor metadata\)"):
        read_table(tmp_path, "clips")


def test_unknown_major_version_and_wrong_table_are_refused(tmp_path):
    data = pa.Table.from_pylist([clip_row(0)], schema=SCHEMAS["clips"])
    commit_raw(tmp_path, "clips", "v2", data, {META_VERSION_KEY: b"2.0", META_TABLE_KEY: b"clips"})
    with pytest.raises(ManifestError, match=r"v2\.0123456789abcdef-00000.parquet: unsupported schema version 2.0"):
        open_table(tmp_path, "clips")
    commit_raw(tmp_path, "scores", "w", data, {META_VERSION_KEY: b"1.0", META_TABLE_KEY: b"clips"})
    with pytest.raises(ManifestError, match=r"belongs to table 'clips', not 'scores'"):
        open_table(tmp_path, "scores")


def test_newer_minor_version_with_extra_column_is_read(tmp_path):
    data = pa.Table.from_pylist([clip_row(0)], schema=SCHEMAS["clips"]).append_column("future", pa.array([1]))
    commit_raw(tmp_path, "clips", "m", data, {META_VERSION_KEY: b"1.7", META_TABLE_KEY: b"clips"})
    back = read_table(tmp_path, "clips")
    assert back.num_rows == 1 and "future" not in back.column_names


def test_wrong_column_type_in_file_is_refused(tmp_path):
    data = pa.Table.from_pylist([clip_row(0)], schema=SCHEMAS["clips"])
    data = data.set_column(data.schema.get_field_index("fps"), "fps", pa.array(["25"]))
    commit_raw(tmp_path, "clips", "t", data)
    with pytest.raises(ManifestError, match=r"column 'fps' has type string, expected double"):
        open_table(tmp_path, "clips")


def test_file_integrity_against_the_delta_log_is_checked(tmp_path):
    part = _good_part(tmp_path)
    pq.write_table(pa.Table.from_pylist([video_row("a"), video_row("b")], schema=SCHEMAS["videos"]).replace_schema_metadata(
        pq.read_schema(part).metadata), part)
    with pytest.raises(ManifestError, match="the Delta log says 1 rows, the file holds 2"):
        open_table(tmp_path, "videos")
    part.unlink()
    with pytest.raises(ManifestError, match="committed part is missing"):
        open_table(tmp_path, "videos")


def test_many_units_read_in_order(tmp_path):
    writer = ManifestWriter(tmp_path, "scores")
    for k in range(5):
        writer.write(f"batch-{k:06d}", [{"clip_id": f"c{k}", "signal": "blur", "value": float(k), **_prov()}])
    values = read_table(tmp_path, "scores", columns=["value"]).column("value").to_numpy()
    assert np.array_equal(values, np.arange(5.0))


def _prov():
    return {"stage": "filters", "stage_version": "1", "model_name": "none", "weights_id": "none"}


def test_older_file_without_a_nullable_column_reads_it_as_nulls(tmp_path):
    data = pa.Table.from_pylist([clip_row(0)], schema=SCHEMAS["clips"]).drop_columns(["uri"])
    commit_raw(tmp_path, "clips", "old", data, {META_VERSION_KEY: b"1.0", META_TABLE_KEY: b"clips"})
    assert read_table(tmp_path, "clips", columns=["uri"]).column("uri").to_pylist() == [None]
    batches = list(part_batches(committed_parts(tmp_path, "clips"), "clips", ["clip_id", "uri"]))
    assert batches[0].column("uri").null_count == 1 and batches[0].column("clip_id")[0].as_py() == clip_row(0)["clip_id"]


def test_one_objects_masks_are_read_alone_through_row_group_statistics(tmp_path):
    from manifests import commit_unit_tables
    from manifests.reader import read_object_masks
    from manifests.synthetic import synthetic_clips, synthetic_object_frames, synthetic_objects, synthetic_videos

    objects = synthetic_objects(synthetic_clips(synthetic_videos(3), 30), 30)
    frames = synthetic_object_frames(objects, frames=20, mask_hw=(270, 480))
    ManifestWriter(tmp_path, "object_frames", row_group_bytes=40_000).write("m", frames, complete=False)
    commit_unit_tables(tmp_path, "m", {"objects": objects, "object_frames": frames})
    target = objects.column("object_id")[7].as_py()
    got = read_object_masks(tmp_path, target)
    assert got.column("frame_index").to_pylist() == list(range(20))
    assert got.column("mask_rle").to_pylist() == frames.filter(pc.field("object_id") == target).column("mask_rle").to_pylist()
    fragments = list(open_table(tmp_path, "object_frames").get_fragments())
    touched = [g for f in fragments for g in f.split_by_row_group(pc.field("object_id") == target)]
    assert sum(f.num_row_groups for f in fragments) >= 8 and len(touched) <= 2
