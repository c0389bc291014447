"""SAM 2's video predictor (random-init, small input) behind the masker: masks on every tracked frame from
box prompts on keyframes, and the objects stage's rows that say it made them."""

from __future__ import annotations

import numpy as np
import pytest
from _moving_disc import H, T, W, moving_disc_clip
from test_mask_carry import disc_unit  # noqa: F401  # the module fixture: one moving-disc clip file
from test_models_objects import RANDOM, _check_rows

from curation.models.keyframes import KeyframeConfig
from curation.models.sam import SamConfig, SamMasker
from curation.models.yolo import YoloConfig
from curation.stages.objects import ObjectsConfig, ObjectsStage

SAM2_SMALL = SamConfig(backend="sam2-video", image_size=64, weights=RANDOM, device="cpu")


@pytest.fixture(scope="module")
def sam2() -> SamMasker:
    masker = SamMasker(SAM2_SMALL)
    masker.setup()
    return masker


def test_sam2_masks_every_target_frame_of_each_track(sam2):
    frames, _ = moving_disc_clip([(30 + 4 * t, 48.0) for t in range(5)])
    prompts = [{1: [16.0, 34.0, 44.0, 62.0], 3: [24.0, 34.0, 52.0, 62.0]}, {2: [0.0, 0.0, 40.0, 30.0]}]
    targets = [[0, 1, 2, 3, 4], [2, 3]]
    got = sam2.masks_of_tracks(frames, prompts, targets)
    assert [sorted(m) for m in got] == targets
    for masks in got:
        for m in masks.values():
            assert m.shape == (H, W) and m.dtype == bool
    assert (sam2.name, sam2.model_name, sam2.weights_id) == ("sam2", "sam2.1-hiera_t", "random-init")
    with pytest.raises(RuntimeError, match="use masks_of_tracks"):
        sam2.masks(frames[0], np.array([[0, 0, 10, 10]], np.float32))


def test_objects_stage_with_sam2_video(disc_unit, tmp_path):  # noqa: F811  # the fixture imported above
    tracker = tmp_path / "keep_all.yaml"
    tracker.write_text("tracker_type: bytetrack\ntrack_high_thresh: 0.0\ntrack_low_thresh: 0.0\n"
                       "new_track_thresh: 0.0\ntrack_buffer: 30\nmatch_thresh: 0.8\nfuse_score: False\n")
    config = ObjectsConfig(methods=("yolo-sam",), max_frames=T, keyframes=KeyframeConfig(interval=8),
                           yolo=YoloConfig(weights=RANDOM, imgsz=64, conf=0.0, max_det=1, tracker=str(tracker)),
                           sam=SAM2_SMALL)
    stage = ObjectsStage(config)
    stage.setup()
    rows = _check_rows(stage.process(disc_unit).rows)
    assert rows, "a tracker that keeps every detection must give tracks"
    for r in rows:
        assert r["model_name"] == "none-here+sam2.1-hiera_t" and r["weights_id"] == "random-init"
        assert r["stage_version"] == "1+yolo-3+sam2-2-every-8-sam2-video"
    assert max(len(r["frame_indices"]) for r in rows) > 2  # masks beyond the two keyframes of 16 frames
