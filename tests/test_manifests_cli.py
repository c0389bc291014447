"""The inspection CLI, run as users run it (`python -m manifests` in a subprocess)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from _manifests_helpers import assert_one_line_error, commit_raw, files_under, run_cli, run_json, small_dataset

from manifests import SCHEMA_VERSION, SCHEMAS, ManifestWriter, commit_unit_tables
from manifests.synthetic import synthetic_object_frames, synthetic_objects, write_clip_files


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    tables = small_dataset(root, n_clips=60, n_objects=0)
    objects = synthetic_objects(tables["clips"], 4, mask_hw=(36, 64))
    commit_unit_tables(root, "masks", {"objects": objects, "object_frames": synthetic_object_frames(objects)})
    write_clip_files(root, tables["clips"], 4)
    return root


def test_summary_json_counts_rows_shards_and_status(dataset):
    out = run_json("summary", dataset)
    rows = {t["table"]: t["rows"] for t in out["tables"]}
    assert rows == {"videos": 10, "clips": 60, "objects": 4, "object_frames": 7, "scores": 180, "edit_pairs": 0,
                    "clip_embeddings": 60, "captions": 60, "errors": 3}
    clips = next(t for t in out["tables"] if t["table"] == "clips")
    assert clips["shards"] == 3 and sum(clips["counts"]["status"].values()) == 60
    fps = next(c for c in clips["columns"] if c["name"] == "fps")
    assert 23 < fps["min"] <= fps["max"] <= 60 and fps["nulls"] == 0


def test_summary_of_one_table_shows_columns_and_per_signal_values(dataset):
    done = run_cli("summary", dataset, "scores")
    assert done.returncode == 0 and "value by signal" in done.stdout and "luminance" in done.stdout
    groups = run_json("summary", dataset, "scores")["tables"][0]["groups"]["value by signal"]
    assert set(groups) == {"blur", "luminance", "motion"} and groups["blur"]["rows"] == 60


def test_summary_of_empty_or_missing_table_is_zero_rows(dataset, tmp_path):
    assert run_json("summary", dataset, "edit_pairs")["tables"][0]["rows"] == 0
    ManifestWriter(tmp_path, "errors").write("empty", [])
    done = run_cli("summary", tmp_path)
    assert done.returncode == 0 and re.search(r"^clips +0 ", done.stdout, re.M)


def test_schema(dataset):
    out = run_json("schema", dataset, "clips")
    assert [c["name"] for c in out["columns"]] == SCHEMAS["clips"].names
    assert out["file_versions"] == {SCHEMA_VERSION: 3}
    assert next(c for c in out["columns"] if c["name"] == "video_id")["references"] == "videos.video_id"
    assert "primary key" in run_cli("schema", dataset, "clips").stdout


def test_head_and_filter(dataset):
    head = run_json("head", dataset, "clips", "-n", "3", "--columns", "clip_id,fps")
    assert len(head["rows"]) == 3 and set(head["rows"][0]) == {"clip_id", "fps"}
    found = run_json("filter", dataset, "scores", 'signal == "blur" and value > 100', "--columns", "signal,value",
                     "--limit", "1000")
    assert found["rows"] and all(r["signal"] == "blur" and r["value"] > 100 for r in found["rows"])
    count = run_json("filter", dataset, "scores", 'signal == "blur" and value > 100', "--count")["count"]
    assert count == len(found["rows"])
    text = run_cli("filter", dataset, "clips", 'status == "ok"', "--limit", "2").stdout
    assert "(2 rows)" in text


def test_stats_writes_pngs(dataset, tmp_path):
    out = run_json("stats", dataset, "scores", "value", "signal", "--where", 'signal != "motion"', "--out", tmp_path)
    assert [Path(p).name for p in out["files"]] == ["scores.value.png", "scores.signal.png"]
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in out["files"])


def test_validate_ok_then_issues(dataset, tmp_path):
    assert run_json("validate", dataset)["ok"] is True
    small_dataset(tmp_path, n_clips=12, n_objects=0)
    bad = pa.Table.from_pylist([{**run_json("head", dataset, "clips", "-n", "1")["rows"][0], "uri": "../../x.mp4"}],
                               schema=SCHEMAS["clips"])
    commit_raw(tmp_path, "clips", "zz", bad)
    done = run_cli("validate", tmp_path, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and not report["ok"]
    assert {i["check"] for i in report["issues"]} == {"uri", "primary_key"}  # same seed: same clip ids
    human = run_cli("validate", tmp_path)
    assert human.returncode == 1 and "escape the dataset root" in human.stdout


def test_sample_contact_sheet_with_masks(dataset, tmp_path):
    out = run_json("sample", dataset, "--out", tmp_path / "sheet.png", "-n", "6")
    assert len(out["clips"]) == 4 and out["masks"] == 4  # only 4 clip files exist; each has an object mask
    assert (tmp_path / "sheet.png").read_bytes()[:4] == b"\x89PNG"


def test_sample_without_clip_files_is_a_clear_error(tmp_path):
    small_dataset(tmp_path, n_clips=6, n_objects=0)
    assert_one_line_error(run_cli("sample", tmp_path, "--out", tmp_path / "s.png"), 2, "none of the 6 clip files exist")


@pytest.mark.parametrize(
    "args, text",
    [
        (("summary", "{root}/nope"), "not a dataset root"),
        (("summary", "{root}", "clip"), "unknown table 'clip'"),
        (("head", "{root}", "clips", "--columns", "nope"), "clips.nope: unknown column"),
        (("filter", "{root}", "scores", "open('x')"), "Call"),
        (("filter", "{root}", "scores", "colour > 1"), "unknown column 'colour'"),
        (("stats", "{root}", "objects", "boxes", "--out", "{root}/charts"), "has no histogram"),
        (("frobnicate",), "invalid choice"),
        (("filter", "{root}", "scores", "value > 1" + "0" * 4000), "outside the 64-bit range"),
        (("filter", "{root}", "scores", "value > 1" + "0" * 5000), "longer than 4096"),
        (("filter", "{root}", "scores", "(" * 300 + "value > 1" + ")" * 300), "too many nested parentheses"),
        (("filter", "{root}", "scores", "not " * 1000 + "passed"), "nested deeper than 50 levels"),
        (("filter", "{root}", "scores", "value > 1e999"), "not finite"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(dataset, args, text):
    assert_one_line_error(run_cli(*(a.format(root=dataset) for a in args)), 2, text)


def test_corrupt_part_is_one_error_line(tmp_path):
    small_dataset(tmp_path, n_clips=6, n_objects=0)
    part = next((tmp_path / "manifests/videos").glob("unit-000000.*-00000.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    assert_one_line_error(run_cli("summary", tmp_path, "videos"), 2, "not a readable Parquet file")
    done = run_cli("validate", tmp_path, "--json")
    assert done.returncode == 1 and "not a readable Parquet file" in done.stdout
    assert str(part.relative_to(tmp_path)) in files_under(tmp_path)  # validation never deletes


def test_progress_bars_go_to_stderr_only_when_asked(dataset, tmp_path):
    quiet = run_cli("validate", dataset)
    assert quiet.returncode == 0 and quiet.stderr == ""  # stderr is not a TTY here
    loud = run_cli("validate", dataset, "--progress")
    assert loud.returncode == 0 and "validate clips" in loud.stderr and "validate clips" not in loud.stdout
    charts = run_cli("stats", dataset, "clips", "fps", "--out", tmp_path, "--progress")
    assert charts.returncode == 0 and "fps range" in charts.stderr
