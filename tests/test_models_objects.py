"""The objects stage on tiny clip files: proposer rows, YOLO + SAM rows on random-init weights, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _moving_disc import H, T, W, moving_disc_clip, texture

from curation.models.sam import SamConfig, SamMasker
from curation.models.weights import WeightsConfig, WeightsError
from curation.models.yolo import YoloConfig
from curation.stage import WorkUnit
from curation.stages.objects import ObjectsConfig, ObjectsStage
from manifests import SCHEMAS
from manifests.media.encode import VideoWriter
from manifests.rle import rle_decode

RANDOM = WeightsConfig(weights="none-here.pt", allow_random_init=True)
# ByteTrack with every threshold at 0, so random-init's low-confidence boxes still make tracks
KEEP_ALL = ("tracker_type: bytetrack\ntrack_high_thresh: 0.0\ntrack_low_thresh: 0.0\nnew_track_thresh: 0.0\n"
            "track_buffer: 30\nmatch_thresh: 0.8\nfuse_score: True\n")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> ObjectsConfig:
    tracker = tmp_path_factory.mktemp("tracker") / "keep_all.yaml"
    tracker.write_text(KEEP_ALL)
    return ObjectsConfig(
        methods=("yolo-sam",), max_frames=5,
        yolo=YoloConfig(weights=RANDOM, imgsz=64, conf=0.0, max_det=3, batch=8, tracker=str(tracker)),
        sam=SamConfig(backend="segment-anything", image_size=64, weights=RANDOM),
    )


def _write(path: Path, frames: np.ndarray) -> str:
    with VideoWriter(path, fps=25.0, crf=10) as w:
        for f in frames:
            w.write(f)
    return path.name


@pytest.fixture(scope="module")
def unit(tmp_path_factory) -> WorkUnit:
    root = tmp_path_factory.mktemp("out")
    moving, _ = moving_disc_clip([(30 + 4 * t, 48.0) for t in range(T)])
    leaving, _ = moving_disc_clip([(80 + 6 * t, 48.0) for t in range(T)])
    still = np.repeat(texture(3, H, W, 2)[None], 6, axis=0)
    clips = {"moving": _write(root / "moving.mp4", moving), "leaving": _write(root / "leaving.mp4", leaving),
             "still": _write(root / "still.mp4", still), "one": _write(root / "one.mp4", moving[:1])}
    (root / "broken.mp4").write_bytes(b"not a video")
    clips["broken"] = "broken.mp4"
    rows = [{"clip_id": cid, "status": "ok", "uri": uri} for cid, uri in clips.items()]
    rows.append({"clip_id": "rejected", "status": "rejected", "uri": "moving.mp4"})
    return WorkUnit("b000000", [], str(root), tables={"clips": rows})


def _check_rows(out: dict[str, list[dict]]) -> list[dict]:
    """The objects rows, after checking each against its object_frames rows (one per frame, decodable masks)."""
    rows, frames = out["objects"], out["object_frames"]
    assert len(frames) == sum(len(r["frame_indices"]) for r in rows)
    for row in rows:
        assert set(row) == set(SCHEMAS["objects"].names) and row["mask_rle"] is None
        assert len(row["frame_indices"]) == len(row["boxes"])
        mine = [f for f in frames if f["object_id"] == row["object_id"]]
        assert [f["frame_index"] for f in mine] == row["frame_indices"] and [f["box"] for f in mine] == row["boxes"]
        for f in mine:
            assert set(f) == set(SCHEMAS["object_frames"].names) and f["weights_id"] == row["weights_id"]
            assert rle_decode(f["mask_rle"], f["mask_height"], f["mask_width"]).shape == (H, W)
        assert row["temporal_iou"] is None or 0.0 <= row["temporal_iou"] <= 1.0
    return rows


def test_proposer_rows_and_errors(unit):
    stage = ObjectsStage(ObjectsConfig())
    stage.setup()
    out = stage.process(unit).rows
    rows = _check_rows(out)
    by_clip = {}
    for r in rows:
        by_clip.setdefault(r["clip_id"], []).append(r)
    assert set(by_clip) <= {"moving", "leaving"} and "moving" in by_clip  # still and one-frame clips: no objects
    best = max(by_clip["moving"], key=lambda r: len(r["frame_indices"]))
    assert best["class_name"] == "moving-object" and 0.5 < best["confidence"] <= 1.0
    assert best["temporal_iou"] == pytest.approx(best["confidence"])
    assert (best["model_name"], best["weights_id"]) == ("none", "none")
    assert best["stage"] == "objects" and best["stage_version"] == "1+motion-proposer-4"
    if "leaving" in by_clip:  # a mask touching the right border keeps an in-frame box
        assert all(b[2] <= W for r in by_clip["leaving"] for b in r["boxes"])
    assert [e["input"] for e in out["errors"]] == ["broken"] and "not a readable video" in out["errors"][0]["message"]
    # a re-run makes the same ids
    assert [r["object_id"] for r in stage.process(unit).rows["objects"]] == [r["object_id"] for r in rows]


def test_yolo_sam_rows_say_random_init(unit, tiny_models):
    stage = ObjectsStage(tiny_models)
    stage.setup()
    rows = _check_rows(stage.process(unit).rows)
    model_rows = [r for r in rows if r["model_name"] != "none"]
    assert model_rows, "a tracker that keeps every detection must give random-init rows"
    for r in model_rows:
        assert r["weights_id"] == "random-init" and r["model_name"] == "none-here+sam-vit_b"
        assert r["stage_version"] == "1+yolo-3+sam-2-every-8-motion-3"  # the default: SAM on every 8th frame
        assert all(0 <= b[0] <= b[2] <= W + 1 and 0 <= b[1] <= b[3] <= H + 1 for b in r["boxes"])



def test_model_frames_limits_what_yolo_and_sam_see(unit, tiny_models):
    stage = ObjectsStage(tiny_models.model_copy(update={"model_frames": 2}))
    stage.setup()
    rows = _check_rows(stage.process(unit).rows)
    assert rows and all(len(r["frame_indices"]) <= 2 for r in rows)  # without it, tracks span all 5 frames
    assert {r["frame_indices"][0] for r in rows} == {0}


def test_sam_masks_are_one_per_box_at_frame_size():
    sam = SamMasker(SamConfig(backend="segment-anything", image_size=64, weights=RANDOM))
    sam.setup()
    frame = texture(4, H, W, 1)
    boxes = np.array([[0, 0, 40, 40], [100, 50, 128, 96]], np.float32)  # the second touches two borders
    masks = sam.masks(frame, boxes)
    assert masks.shape == (2, H, W) and masks.dtype == bool
    assert sam.masks(frame, np.zeros((0, 4))).shape == (0, H, W)
    assert sam.weights_id == "random-init"


def test_sam_masks_of_frames_batch_the_encoder_and_match_one_frame_at_a_time():
    sam = SamMasker(SamConfig(backend="segment-anything", image_size=64, weights=RANDOM, batch=2))
    sam.setup()
    frames = np.stack([texture(s, H, W, 1) for s in (4, 5, 6)])
    boxes = [np.array([[0, 0, 40, 40], [60, 20, 128, 96]], np.float32), np.zeros((0, 4), np.float32),
             np.array([[10, 10, 90, 70]], np.float32)]
    batched = sam.masks_of_frames(frames, boxes)
    assert [m.shape for m in batched] == [(2, H, W), (0, H, W), (1, H, W)]
    for frame, frame_boxes, got in zip(frames, boxes, batched):
        alone = sam.masks(frame, frame_boxes)
        assert alone.shape == got.shape  # and equal but for an edge pixel the batch maths may flip
        assert alone.size == 0 or (alone == got).mean() > 0.999


def test_without_weights_or_permission_the_stage_stops_at_setup():
    cfg = ObjectsConfig(methods=("yolo-sam",), yolo=YoloConfig(weights=WeightsConfig(weights="absent.pt", download=False)))
    stage = ObjectsStage(cfg)
    with pytest.raises(WeightsError, match="absent.pt.*LIVEDITOR_WEIGHTS_DIR"):
        stage.setup()
