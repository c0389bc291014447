"""validate_dataset: each rule finds its problem, names it in one line, and a clean dataset passes."""

from __future__ import annotations

import pyarrow as pa
import pytest
from _manifests_helpers import clip_row, commit_raw, small_dataset, video_row

from manifests import SCHEMAS, ManifestError, ManifestWriter, read_table, validate_dataset
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY


def _by_check(issues):
    return {(i.table, i.check, i.column): i for i in issues}


def test_clean_synthetic_dataset_is_valid(tmp_path):
    small_dataset(tmp_path)
    assert validate_dataset(tmp_path) == []


def test_not_a_dataset_root_is_bad_input(tmp_path):
    with pytest.raises(ManifestError, match="not a dataset root"):
        validate_dataset(tmp_path / "nothing")


def test_duplicate_primary_keys_are_confirmed_and_named(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0")])
    clips = ManifestWriter(tmp_path, "clips")
    clips.write("a", [clip_row(i) for i in range(5)])
    clips.write("b", [clip_row(3), clip_row(4), clip_row(9)])  # two ids again, in another unit
    issue = _by_check(validate_dataset(tmp_path))["clips", "primary_key", "clip_id"]
    assert issue.count == 2 and set(issue.examples) == {clip_row(3)["clip_id"], clip_row(4)["clip_id"]}
    assert "2 primary keys (clip_id) occur more than once" in str(issue)


def test_composite_key_of_scores(tmp_path):
    prov = {"stage": "filters", "stage_version": "1", "model_name": "none", "weights_id": "none"}
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0")])
    ManifestWriter(tmp_path, "clips").write("c", [clip_row(0)])
    cid = clip_row(0)["clip_id"]
    rows = [{"clip_id": cid, "signal": s, "value": 1.0, **prov} for s in ("blur", "motion", "blur")]
    rows.append({"clip_id": cid, "signal": "blur", "value": 1.0, **{**prov, "stage": "other"}})
    ManifestWriter(tmp_path, "scores").write("s", rows)
    issue = _by_check(validate_dataset(tmp_path))["scores", "primary_key", "clip_id,signal,stage"]
    assert issue.count == 1 and issue.examples == (f"{cid}/blur/filters",)


def test_dangling_references(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0")])
    ManifestWriter(tmp_path, "clips").write("c", [clip_row(0), clip_row(1, video_id="ghost"), clip_row(2, video_id="ghost")])
    issues = _by_check(validate_dataset(tmp_path))
    issue = issues["clips", "reference", "video_id"]
    assert issue.count == 2 and issue.examples == ("ghost",)
    assert "clips.video_id: 2 rows reference missing videos.video_id" in str(issue)


def test_reference_to_an_empty_table_says_so(tmp_path):
    ManifestWriter(tmp_path, "clips").write("c", [clip_row(0)])
    issue = _by_check(validate_dataset(tmp_path))["clips", "reference", "video_id"]
    assert "(videos has no rows)" in issue.message


def test_uris_must_stay_inside_the_root(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0", uri="/mnt/raw/v0.mp4"), video_row("v1", uri="s3://bucket/v1.mp4")])
    rows = [clip_row(0, uri="clips/ok.mp4"), clip_row(1, uri="../../etc/passwd"), clip_row(2, uri="/abs/c.mp4"),
            clip_row(3, uri="s3://bucket/c.mp4"), clip_row(4, uri=None), clip_row(5, uri="")]
    ManifestWriter(tmp_path, "clips").write("c", rows)
    issues = [i for i in validate_dataset(tmp_path) if i.check == "uri"]
    found = {(i.table, i.column, i.count, i.examples) for i in issues}
    assert ("clips", "uri", 1, ("../../etc/passwd",)) in found
    assert ("clips", "uri", 2, ("/abs/c.mp4", "s3://bucket/c.mp4")) in found
    assert ("clips", "uri", 1, ("",)) in found
    assert all(i.table != "videos" for i in issues)  # inputs may live anywhere
    loose = [i for i in validate_dataset(tmp_path, allow_absolute_uris=True) if i.check == "uri"]
    assert {(i.count, i.examples) for i in loose} == {(1, ("../../etc/passwd",)), (1, ("",))}


def test_nulls_and_blank_provenance_written_around_the_writer(tmp_path):
    data = pa.Table.from_pylist([video_row("v0"), video_row("v1")], schema=SCHEMAS["videos"])
    relaxed = pa.schema([f.with_nullable(True) for f in SCHEMAS["videos"]])
    bad = pa.Table.from_pylist([video_row("v2", sha256=None, weights_id=" ")], schema=relaxed)
    commit_raw(tmp_path, "videos", "ok", data)
    commit_raw(tmp_path, "videos", "bad", bad)
    issues = _by_check(validate_dataset(tmp_path))
    assert issues["videos", "required", "sha256"].count == 1
    assert issues["videos", "provenance", "weights_id"].count == 1


def test_bad_files_become_issues_and_the_rest_is_still_checked(tmp_path):
    small_dataset(tmp_path)
    data = pa.Table.from_pylist([clip_row(0)], schema=SCHEMAS["clips"])
    commit_raw(tmp_path, "clips", "zz-future", data, {META_VERSION_KEY: b"9.0", META_TABLE_KEY: b"clips"})
    commit_raw(tmp_path, "clips", "zz-foreign", pa.table({"x": [1]}), {})
    ManifestWriter(tmp_path, "clips").write("zz-dangling", [clip_row(1, video_id="nowhere")])
    issues = validate_dataset(tmp_path)
    files = sorted(i.message for i in issues if i.check == "file")
    assert len(files) == 2 and "unsupported schema version 9.0" in files[1] and "foreign Parquet file" in files[0]
    assert any(i.check == "reference" and i.examples == ("nowhere",) for i in issues)
    assert all("\n" not in str(i) for i in issues)


def test_corrupt_data_pages_are_an_issue_naming_the_file(tmp_path):
    small_dataset(tmp_path, n_clips=600, unit_rows=300)
    part = next((tmp_path / "manifests/clips").glob("unit-000001.*-00000.parquet"))
    data = bytearray(part.read_bytes())
    data[200:4000] = bytes(b ^ 0x5A for b in data[200:4000])  # footer intact, pages garbled
    part.write_bytes(bytes(data))
    issues = validate_dataset(tmp_path)
    assert [i.check for i in issues] == ["file"]  # no spurious reference issues from the half-read table
    assert f"{part.name}: corrupt data" in issues[0].message
    with pytest.raises(ManifestError, match=f"{part.name}: corrupt data"):
        read_table(tmp_path, "clips")


def test_per_frame_lists_must_align_and_masks_need_a_size(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0")])
    ManifestWriter(tmp_path, "clips").write("c", [clip_row(0)])
    base = {"clip_id": clip_row(0)["clip_id"], "track_id": 0, "class_name": "dog", "confidence": 0.9,
            "frame_indices": [0, 1], "boxes": [[0, 0, 2, 2], [0, 0, 2, 2]], "mask_rle": ["04", "04"],
            "mask_height": 2, "mask_width": 2, "stage": "objects", "stage_version": "1", "model_name": "sam",
            "weights_id": "random-init"}
    rows = [dict(base, object_id="ok"), dict(base, object_id="short", boxes=[[0, 0, 2, 2]]),
            dict(base, object_id="unsized", mask_height=None), dict(base, object_id="no-masks", mask_rle=None)]
    ManifestWriter(tmp_path, "objects").write("o", rows)
    issues = _by_check(validate_dataset(tmp_path))
    assert issues["objects", "shape", "boxes"].count == 1
    unsized = issues["objects", "shape", "mask_rle"]
    assert unsized.count == 1 and "no mask_height/mask_width" in unsized.message
    assert len(issues) == 2


def _domain_issues(tmp_path):
    return {i.message.split(" rows where ", 1)[1]: i for i in validate_dataset(tmp_path, check_files=True) if i.check == "domain"}


def test_value_domains(tmp_path):
    ManifestWriter(tmp_path, "videos").write("v", [video_row("v0"), video_row("v1", status="maybe", fps=0.0)])
    clips = [clip_row(0), clip_row(10, end_frame=5), clip_row(20, fps=float("nan")), clip_row(30, start_time_s=-1.0)]
    ManifestWriter(tmp_path, "clips").write("c", clips)
    obj = {"clip_id": clip_row(0)["clip_id"], "track_id": 0, "class_name": "dog", "frame_indices": [0],
           "boxes": [[0, 0, 2, 2]], "mask_height": 2, "mask_width": 2, "stage": "objects", "stage_version": "1",
           "model_name": "sam", "weights_id": "random-init"}
    ManifestWriter(tmp_path, "objects").write("o", [
        dict(obj, object_id="good", confidence=0.5, mask_rle=["04"]),
        dict(obj, object_id="area", confidence=0.5, mask_rle=["05"]),
        dict(obj, object_id="garbage", confidence=0.5, mask_rle=["\x7f"]),
        dict(obj, object_id="sure", confidence=2.0, mask_rle=None),
    ])
    found = _domain_issues(tmp_path)
    assert found["status is not one of ok, rejected"].examples == ("v1",)
    assert found["fps is not positive"].table == "videos"
    assert found["frame range is not 0 <= start_frame < end_frame"].count == 1
    assert found["time range is not 0 <= start_time_s < end_time_s"].count == 1
    assert found["fps is NaN or infinite"].count == 1
    assert found["confidence is outside [0, 1]"].examples == ("sure",)
    assert sorted(found["masks do not decode to mask_height x mask_width"].examples) == ["area", "garbage"]
    assert found["uri names a file that is missing or outside the root"].count == 4  # no clip file exists here


def test_check_files_finds_missing_and_escaping_files(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    root = tmp_path / "data"
    (root / "clips").mkdir(parents=True)
    (root / "clips/real.mp4").write_bytes(b"x")
    (root / "clips/link.mp4").symlink_to(outside / "secret.mp4")
    ManifestWriter(root, "videos").write("v", [video_row("v0")])
    ManifestWriter(root, "clips").write("c", [clip_row(0, uri="clips/real.mp4"), clip_row(1, uri="clips/link.mp4"),
                                               clip_row(2, uri="clips/gone.mp4")])
    assert validate_dataset(root) == []
    issues = [i for i in validate_dataset(root, check_files=True) if i.check == "domain"]
    assert len(issues) == 1 and sorted(issues[0].examples) == ["clips/gone.mp4", "clips/link.mp4"]
