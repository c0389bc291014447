"""YOLO's letterbox and normalise as tensor ops (curation/models/yolo.py) against ultralytics' own per-frame numpy
LetterBox, and the tracker fed that way against ultralytics fed numpy frames as before (random-init weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models_objects import KEEP_ALL, RANDOM

from curation.models.ultralytics_env import import_ultralytics
from curation.models.yolo import YoloConfig, YoloTracker, letterbox


def ultralytics_letterbox(frame: np.ndarray, imgsz: int, stride: int = 32) -> np.ndarray:
    """ultralytics' LetterBox as its predictor builds it for same-shaped frames of a .pt model (auto=True)."""
    import_ultralytics()
    from ultralytics.data.augment import LetterBox

    return LetterBox(imgsz, auto=True, stride=stride)(image=frame)


@pytest.mark.parametrize("height,width,imgsz", [(72, 128, 128), (360, 640, 640), (90, 160, 160), (128, 72, 128)])
def test_letterbox_equals_ultralytics_without_resize(height, width, imgsz):
    """At the model's width (the objects stage's 640x360 frames at imgsz 640) only padding differs: exact."""
    frames = np.random.default_rng(height).integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    boxed, scale, top, left = letterbox(torch.from_numpy(frames), imgsz, 32)
    want = np.stack([ultralytics_letterbox(f, imgsz) for f in frames])  # (B, h, w, 3)
    assert scale == 1.0
    assert boxed.shape == (3, 3, *want.shape[1:3])
    np.testing.assert_array_equal((boxed * 255).round().byte().permute(0, 2, 3, 1).numpy(), want)
    assert (want[:, :top] == 114).all() and (want[:, :, :left] == 114).all()


@pytest.mark.parametrize("height,width,imgsz", [(90, 120, 128), (200, 300, 160), (45, 80, 96)])
def test_letterbox_resized_matches_ultralytics_geometry(height, width, imgsz):
    """Scaled frames: the same shape, pads and scale; pixels within the two bilinear roundings of each other."""
    rng = np.random.default_rng(width)
    smooth = np.kron(rng.integers(0, 256, (1, height // 5 + 1, width // 5 + 1, 3)), np.ones((1, 5, 5, 1)))
    frames = smooth[:, :height, :width].astype(np.uint8)
    boxed, scale, top, left = letterbox(torch.from_numpy(frames), imgsz, 32)
    want = ultralytics_letterbox(frames[0], imgsz)
    assert boxed.shape[2:] == want.shape[:2]
    assert scale == pytest.approx(min(imgsz / height, imgsz / width))
    got = (boxed[0] * 255).round().byte().permute(1, 2, 0).numpy().astype(int)
    diff = np.abs(got - want.astype(int))
    assert diff.max() <= 48 and diff.mean() < 2.0  # bilinear at block edges; flat blocks agree
    assert (got[:top] == 114).all() and (got[:, :left] == 114).all()


def test_tracker_boxes_equal_ultralytics_on_numpy_frames(tmp_path):
    """The same random-init model and ByteTrack: boxes in frame pixels equal to ultralytics' own path, which
    letterboxes each BGR frame in numpy and maps boxes back itself (frames at the model's width: no resize)."""
    tracker_yaml = tmp_path / "keep_all.yaml"
    tracker_yaml.write_text(KEEP_ALL)
    config = YoloConfig(weights=RANDOM, imgsz=128, conf=0.0, max_det=4, batch=4, tracker=str(tracker_yaml),
                        device="cpu")
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 256, (1, 9, 16, 3)), np.ones((1, 8, 8, 1))).astype(np.uint8)
    frames = np.concatenate([np.roll(base, 2 * t, axis=2) for t in range(10)])  # (10, 72, 128, 3) panning
    ours = YoloTracker(config)
    ours.setup()
    tracks = ours.track(frames)
    assert tracks, "random-init YOLO at conf 0 with a keep-all tracker makes tracks"
    theirs = YoloTracker(config)
    theirs.setup()
    boxes: dict[int, list[list[float]]] = {}
    for first in range(0, len(frames), config.batch):
        chunk = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames[first : first + config.batch]]  # BGR
        results = theirs.model.track(chunk, persist=first > 0, tracker=config.tracker, imgsz=config.imgsz,
                                     conf=config.conf, iou=config.iou, max_det=config.max_det, device="cpu",
                                     verbose=False)
        for k, r in enumerate(results):
            if r.boxes is not None and r.boxes.id is not None:
                boxes[first + k] = sorted(r.boxes.xyxy.tolist())
    ours_boxes: dict[int, list[list[float]]] = {}
    for tr in tracks:  # ours renumbers track ids by first appearance: compare each frame's boxes
        for f, box in zip(tr.frames, tr.boxes or []):
            ours_boxes.setdefault(f, []).append(box)
    assert sorted(ours_boxes) == sorted(boxes)
    for f, want in boxes.items():
        np.testing.assert_allclose(sorted(ours_boxes[f]), want, atol=1e-3)
