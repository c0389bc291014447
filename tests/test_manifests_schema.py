"""Schema evolution: 1.x only adds nullable columns (and tables) to a frozen copy of 1.0; old datasets migrate."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _manifests_helpers import clip_row, commit_raw, video_row

from manifests import SCHEMA_VERSION, SCHEMAS, ManifestWriter, read_table, validate_dataset
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, PAIR_GATES, PRIMARY_KEYS

SCHEMA_1_0: dict[str, list[tuple[str, str, bool]]] = {
    # Frozen copy of schema 1.0 (name, Arrow type, nullable), as released before Delta Lake. Never edit.
    "videos": [
        ("video_id", "string", False),
        ("uri", "string", False),
        ("sha256", "string", False),
        ("size_bytes", "int64", False),
        ("duration_s", "double", True),
        ("fps", "double", True),
        ("frames", "int64", True),
        ("width", "int32", True),
        ("height", "int32", True),
        ("codec", "string", True),
        ("status", "string", False),
        ("reject_reason", "string", True),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
    "clips": [
        ("clip_id", "string", False),
        ("video_id", "string", False),
        ("start_frame", "int64", False),
        ("end_frame", "int64", False),
        ("start_time_s", "double", False),
        ("end_time_s", "double", False),
        ("fps", "double", False),
        ("width", "int32", True),
        ("height", "int32", True),
        ("uri", "string", True),
        ("shot_method", "string", False),
        ("status", "string", False),
        ("reject_reason", "string", True),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
    "objects": [
        ("object_id", "string", False),
        ("clip_id", "string", False),
        ("track_id", "int32", False),
        ("class_name", "string", False),
        ("confidence", "float", False),
        ("frame_indices", "list<item: int32>", False),
        ("boxes", "list<item: fixed_size_list<item: float>[4]>", False),
        ("mask_rle", "list<item: string>", True),
        ("mask_height", "int32", True),
        ("mask_width", "int32", True),
        ("mask_uri", "string", True),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
    "scores": [
        ("clip_id", "string", False),
        ("signal", "string", False),
        ("value", "double", True),
        ("passed", "bool", True),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
    "edit_pairs": [
        ("pair_id", "string", False),
        ("clip_id", "string", False),
        ("edit_type", "string", False),
        ("instruction", "string", False),
        ("source_uri", "string", False),
        ("target_uri", "string", False),
        ("mask_uri", "string", True),
        ("gates_passed", "list<item: string>", False),
        ("split", "string", False),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
    "errors": [
        ("error_id", "string", False),
        ("input", "string", False),
        ("error_class", "string", False),
        ("message", "string", False),
        ("attempt", "int32", False),
        ("stage", "string", False),
        ("stage_version", "string", False),
        ("model_name", "string", False),
        ("weights_id", "string", False),
    ],
}


def test_minor_versions_only_add_nullable_columns_to_1_0():
    assert SCHEMA_VERSION.split(".")[0] == "1"
    for table, frozen in SCHEMA_1_0.items():
        current = [(f.name, str(f.type), f.nullable) for f in SCHEMAS[table]]
        kept = [c for c in current if c[0] in {name for name, _, _ in frozen}]
        assert kept == frozen, table  # same columns, types, nullability and order
        added = [c for c in current if c not in frozen]
        assert all(nullable for _, _, nullable in added), (table, added)


def write_old_layout(root, table: str, unit: str, data: pa.Table, committed: bool = True) -> None:
    """What the pre-Delta writer left: <table>/<unit>-00000.parquet and a _committed/<unit>.json marker."""
    folder = root / "manifests" / table
    (folder / "_committed").mkdir(parents=True, exist_ok=True)
    part = folder / f"{unit}-00000.parquet"
    pq.write_table(data.replace_schema_metadata({META_VERSION_KEY: b"1.0", META_TABLE_KEY: table.encode()}), part)
    if committed:
        marker = {"files": [part.name], "rows": data.num_rows, "bytes": part.stat().st_size,
                  "schema_version": "1.0", "written_at": "2026-11-27T00:00:00+00:00"}
        (folder / "_committed" / f"{unit}.json").write_text(json.dumps(marker))


def _schema_1_0(table: str) -> pa.Schema:
    return pa.schema([SCHEMAS[table].field(name) for name, _, _ in SCHEMA_1_0[table]])


def test_migrate_converts_a_commit_marker_dataset(tmp_path):
    write_old_layout(tmp_path, "videos", "b000000", pa.Table.from_pylist([video_row("v0")], schema=_schema_1_0("videos")))
    clips = pa.Table.from_pylist([clip_row(0), clip_row(20)], schema=_schema_1_0("clips"))
    write_old_layout(tmp_path, "clips", "b000000", clips)
    write_old_layout(tmp_path, "clips", "b000001", clips.slice(0, 1), committed=False)  # a killed run's part
    run = [sys.executable, "-m", "manifests", "migrate", str(tmp_path), "--json"]
    first = subprocess.run(run, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    counts = {t["table"]: (t["units"], t["rows"], t["skipped"]) for t in json.loads(first.stdout)["tables"]}
    assert counts["videos"] == (1, 1, 0) and counts["clips"] == (1, 2, 0)
    assert sorted(read_table(tmp_path, "clips").column("start_frame").to_pylist()) == [0, 20]
    assert read_table(tmp_path, "videos").num_rows == 1
    again = subprocess.run(run, capture_output=True, text=True)
    assert {t["table"]: t["skipped"] for t in json.loads(again.stdout)["tables"]}["clips"] == 1
    assert read_table(tmp_path, "clips").num_rows == 2
    assert ManifestWriter(tmp_path, "clips").write("b000000", [clip_row(0), clip_row(20)], complete=False).skipped
    assert [i.check for i in validate_dataset(tmp_path)] == ["orphan", "orphan"]  # old parts wait for gc


ADDED = {  # (table, the version before): the columns a later minor version added to that table
    ("edit_pairs", "1.1"): ["object_id", "edit_params", "frames", "fps", "width", "height",
                            *[f"gate_{g}" for g in PAIR_GATES], "gate_notes"],
    ("videos", "1.2"): ["sar", "display_width", "display_height", "pix_fmt", "bit_depth", "color_transfer",
                        "interlaced", "vfr", "conversion"],
}


@pytest.mark.parametrize(("table", "old_version"), list(ADDED))
def test_an_older_delta_table_gains_the_new_columns_on_the_next_write(tmp_path, table, old_version):
    """A table an older writer made (resuming onto an old output): Delta's schema evolves (one metadata
    commit), old rows read the new columns as nulls, and new rows keep their values."""
    import deltalake

    from manifests.delta import create
    from manifests.layout import table_dir
    from manifests.synthetic import synthetic_clips, synthetic_edit_pairs, synthetic_objects, synthetic_videos

    videos = synthetic_videos(4)
    rows = videos if table == "videos" else synthetic_edit_pairs(synthetic_objects(synthetic_clips(videos, 4), 4))
    added = ADDED[table, old_version]
    old_schema = pa.schema([f for f in SCHEMAS[table] if f.name not in added])
    old = rows.slice(0, 2).select(old_schema.names).cast(old_schema)
    folder = table_dir(tmp_path, table)
    folder.mkdir(parents=True)
    deltalake.DeltaTable.create(str(folder), schema=old_schema, mode="error")
    commit_raw(tmp_path, table, "old", old, {META_VERSION_KEY: old_version.encode(), META_TABLE_KEY: table.encode()})
    assert added[0] not in {f.name for f in deltalake.DeltaTable(str(folder)).schema().fields}

    ManifestWriter(tmp_path, table).write("new", rows.slice(2))
    assert {f.name for f in deltalake.DeltaTable(str(folder)).schema().fields} == set(SCHEMAS[table].names)
    version = deltalake.DeltaTable(str(folder)).version()
    create(folder, SCHEMAS[table])
    assert deltalake.DeltaTable(str(folder)).version() == version  # already evolved: no further commit
    key = PRIMARY_KEYS[table][0]
    got = {r[key]: r for r in read_table(tmp_path, table).to_pylist()}
    old_keys = set(old.column(key).to_pylist())
    for row in rows.to_pylist():
        want = {c: None for c in added} if row[key] in old_keys else {c: row[c] for c in added}
        assert {c: got[row[key]][c] for c in added} == want, row[key]
