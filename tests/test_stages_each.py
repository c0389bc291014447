"""Each curation stage on its own, in-process, on a quick corpus: what it emits and how it fails per input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from curation.corpus import build_corpus
from curation.inputs import plan_inputs
from curation.job_config import parse_config
from curation.stage import WorkUnit
from curation.stages import ExtractStage, IngestStage, ShotsStage, SignalsStage
from manifests import SCHEMAS
from manifests.media.probe import probe

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=2, quick=True, videos=2, with_bad_inputs=True, with_real=False)
    return root


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    data = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    return parse_config({**data, "input": ".", "output": str(tmp_path_factory.mktemp("out"))})


@pytest.fixture(scope="module")
def stages(config):
    built = [cls.from_job(config) for cls in (IngestStage, ShotsStage, ExtractStage, SignalsStage)]
    for stage in built:
        stage.setup()
    return built


def _videos(corpus: Path) -> list[str]:
    return [str(p) for p in sorted((corpus / "synthetic").glob("*.mp4"))]


def _check_schema(unit: WorkUnit) -> None:
    for table, rows in unit.tables.items():
        for row in rows:
            assert set(row) == set(SCHEMAS[table].names), f"{table} row has {sorted(set(row) ^ set(SCHEMAS[table].names))}"


def test_ingest_rows_for_videos_errors_for_bad_inputs(corpus, stages, config, tmp_path):
    bad = sorted(str(p) for p in (corpus / "bad").iterdir())
    good = _videos(corpus)
    copy = tmp_path / "zz_copy.mp4"  # byte-identical to good[0], later in plan order
    shutil.copyfile(good[0], copy)
    inputs = good + bad + [str(copy)]
    planned = plan_inputs([Path(p) for p in inputs], corpus, allow_outside=False)
    unit = stages[0].run(WorkUnit("b000000", inputs, config.output,
                                  planned={p: planned[p].to_json() for p in inputs}))
    _check_schema(unit)
    videos = {Path(v["uri"]).name: v for v in unit.rows("videos")}
    for path in good:
        row, info = videos[Path(path).name], probe(path)
        assert (row["status"], row["frames"], row["width"], row["height"]) == ("ok", info.frames, info.width, info.height)
        assert len(row["sha256"]) == 64 and row["video_id"] == row["sha256"][:16]
    assert videos["huge_7680x4320.mp4"]["status"] == "rejected"
    errors = {Path(e["input"]).name: e["message"] for e in unit.rows("errors")}
    assert "empty file" in errors["empty.mp4"]
    assert "still image" in errors["image_png.mp4"]
    assert "not a readable video" in errors["text.mp4"] and "truncated.mp4" in errors
    # a byte-identical copy is one video and one error naming the first, not a duplicate key
    assert len(unit.rows("errors")) == 5 and f"same content as {good[0]}" in errors["zz_copy.mp4"]


def test_shots_make_clip_rows_within_the_length_limits_with_detector_provenance(corpus, stages, config):
    unit = stages[1].run(stages[0].run(WorkUnit("b000000", _videos(corpus), config.output)))
    _check_schema(unit)
    clips = unit.rows("clips")
    assert clips, "the quick corpus has shots of 0.8-1.5 s: some must pass min_clip_s 0.5"
    for clip in clips:
        seconds = (clip["end_frame"] - clip["start_frame"]) / clip["fps"]
        assert config.shots.min_clip_s <= seconds <= config.shots.max_clip_s
        assert clip["uri"] is None and clip["shot_method"] == "fast"
        assert clip["stage"] == "shots" and clip["stage_version"].startswith(f"{ShotsStage.version}+fast-")
        assert clip["clip_id"] == f"{clip['video_id']}-{clip['start_frame']:07d}-{clip['end_frame']:07d}"


def test_extract_writes_bucketed_clip_files_and_a_bad_range_is_an_errors_row(corpus, stages, config):
    unit = stages[1].run(stages[0].run(WorkUnit("b000001", _videos(corpus), config.output)))
    victim = unit.rows("clips")[0]
    broken = {**victim, "clip_id": victim["clip_id"] + "x", "end_frame": 10**6}  # past the video's end
    unit.tables["clips"] = unit.rows("clips") + [broken]
    out = stages[2].run(unit)
    _check_schema(out)
    clips = {c["clip_id"]: c for c in out.rows("clips")}
    assert clips[broken["clip_id"]]["status"] == "rejected" and "extract failed" in clips[broken["clip_id"]]["reject_reason"]
    (err,) = out.rows("errors")
    assert err["input"] == broken["clip_id"] and err["stage"] == "extract"
    for clip in clips.values():
        if clip["clip_id"] == broken["clip_id"]:
            continue
        info = probe(Path(config.output) / clip["uri"])
        assert info.frames == clip["end_frame"] - clip["start_frame"]
        assert (info.width, info.height) == (clip["width"], clip["height"])
        assert info.width % 2 == 0 and info.height % 2 == 0


def test_signals_score_every_clip_and_reject_with_reasons(corpus, stages, config):
    unit = WorkUnit("b000002", _videos(corpus), config.output)
    for stage in stages:
        unit = stage.run(unit)
    _check_schema(unit)
    names = set(config.signals.names) | {"width", "height", "duration"}
    ok_clips = [c for c in unit.rows("clips") if c["uri"]]
    by_clip: dict[str, dict[str, dict]] = {}
    for row in unit.rows("scores"):
        by_clip.setdefault(row["clip_id"], {})[row["signal"]] = row
    assert set(by_clip) == {c["clip_id"] for c in ok_clips}
    for clip in ok_clips:
        scores = by_clip[clip["clip_id"]]
        assert set(scores) == names
        failed = [s for s in scores.values() if s["passed"] is False]
        assert (clip["status"] == "rejected") == bool(failed)
        for s in failed:
            assert s["signal"] in clip["reject_reason"]


def test_signals_stage_turns_an_unreadable_source_into_an_errors_row(corpus, stages, config):
    unit = WorkUnit("b000003", _videos(corpus)[:1], config.output)
    for stage in stages[:3]:
        unit = stage.run(unit)
    gone = dict(unit.rows("videos")[0], uri=str(corpus / "bad" / "text.mp4"))  # the source vanished/changed
    unit.tables["videos"] = [gone]
    out = stages[3].run(unit)
    assert out.rows("scores") == []
    assert {e["input"] for e in out.rows("errors")} == {c["clip_id"] for c in unit.rows("clips")}
    assert all(c["status"] == "rejected" for c in out.rows("clips"))
