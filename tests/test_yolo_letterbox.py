"""YOLO's letterbox and normalise as tensor ops (curation/models/yolo.py) against ultralytics' own per-frame numpy
LetterBox, the batched NMS against its frame-by-frame one, and the tracker against its detector and ByteTrack run
frame by frame (random-init weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models_objects import KEEP_ALL, RANDOM

from curation.models.detections import Detections, batched_nms
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


def realistic_preds(frames: int, anchors: int, classes: int, seed: int) -> torch.Tensor:
    """YOLO-shaped raw output (B, 4 + classes, anchors): xywh boxes inside a 640x384 input, clustered so that
    NMS has work, and sparse class scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(40, 600, (frames, 6, 2))[:, rng.integers(0, 6, anchors)]  # (B, A, 2) around 6 objects
    xy = centres + rng.normal(0, 6, (frames, anchors, 2))
    wh = rng.uniform(20, 120, (frames, anchors, 2))
    scores = rng.uniform(0, 1, (frames, anchors, classes)) ** 8  # most near 0, a few high
    return torch.from_numpy(np.concatenate([xy, wh, scores], axis=-1).transpose(0, 2, 1).astype(np.float32))


@pytest.mark.parametrize("conf,max_det,max_candidates", [(0.25, 50, 300), (0.05, 5, 300), (0.0, 10, 2000)])
def test_batched_nms_equals_ultralytics_frame_by_frame(conf, max_det, max_candidates):
    """Where the candidate cap does not bind, one batched call keeps the boxes ultralytics keeps in each frame."""
    import_ultralytics()
    from ultralytics.utils.nms import non_max_suppression

    preds = realistic_preds(frames=5, anchors=1500, classes=6, seed=int(conf * 100) + max_det)
    got = batched_nms(preds, conf, 0.5, max_det, max_candidates)
    want = non_max_suppression(preds, conf, 0.5, max_det=max_det)
    assert len(got) == len(want) == 5
    for ours, theirs in zip(got, want):
        theirs = theirs.numpy()
        assert ours.shape == theirs.shape and len(ours) > 0
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)


def test_batched_nms_keeps_frames_and_classes_apart():
    """Two equal boxes in two frames, and two equal boxes of two classes in one frame, all survive."""
    preds = torch.zeros(2, 4 + 2, 3)
    preds[:, :4] = torch.tensor([100.0, 100.0, 50.0, 50.0])[None, :, None]  # every anchor the same box
    preds[0, 4, 0], preds[0, 5, 1], preds[1, 4, 2] = 0.9, 0.8, 0.7  # frame 0: class 0 and 1; frame 1: class 0
    got = batched_nms(preds, 0.25, 0.5, 10, 300)
    assert [len(g) for g in got] == [2, 1]
    assert got[0][:, 5].tolist() == [0.0, 1.0] and got[0][:, 4].tolist() == pytest.approx([0.9, 0.8])
    assert got[1][0, :4].tolist() == [75.0, 75.0, 125.0, 125.0]


def test_detections_read_as_ultralytics_boxes():
    import_ultralytics()
    from ultralytics.engine.results import Boxes

    rows = np.array([[10, 20, 50, 80, 0.9, 2], [0, 0, 8, 4, 0.3, 0]], np.float32)
    ours = Detections(rows[:, :4], rows[:, 4], rows[:, 5])
    theirs = Boxes(torch.from_numpy(rows), (100, 100)).cpu().numpy()
    np.testing.assert_allclose(ours.xywh, theirs.xywh)
    picked = ours[np.array([False, True])]
    assert len(picked) == 1 and picked.conf.tolist() == pytest.approx([0.3]) and picked.xyxy.shape == (1, 4)


def test_one_tracker_follows_the_clip_through_every_chunk(tmp_path):
    """The tracker's boxes equal ultralytics' detector and ByteTrack run frame by frame with one tracker for the
    whole clip (ultralytics' own track mode on a list of frames resets its tracker at each new frame 'path', so
    every frame of a clip's first chunk started fresh tracks: that mode is not the reference)."""
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
    reference = YoloTracker(config)
    reference.setup()
    tracker = reference._tracker()
    want: dict[int, list[list[float]]] = {}
    for f, frame in enumerate(frames):
        result = reference.model.predict(np.ascontiguousarray(frame[:, :, ::-1]), imgsz=config.imgsz, conf=config.conf,
                                         iou=config.iou, max_det=config.max_det, device="cpu", verbose=False)[0]
        found = tracker.update(result.boxes.cpu().numpy(), None)
        if len(found):
            want[f] = sorted(np.clip(found[:, :4], 0, [128, 72, 128, 72]).tolist())
    got: dict[int, list[list[float]]] = {}
    for tr in tracks:  # ours renumbers track ids by first appearance: compare each frame's boxes
        for f, box in zip(tr.frames, tr.boxes or []):
            got.setdefault(f, []).append(box)
    assert want, "random-init YOLO at conf 0 with a keep-all tracker makes tracks"
    assert sorted(got) == sorted(want)
    for f, boxes in want.items():
        np.testing.assert_allclose(sorted(got[f]), boxes, atol=1e-3)
