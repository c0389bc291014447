"""Masks carried from keyframes: the pure carrying on a moving square, and the objects stage running SAM
(random-init) on keyframes only with a carried mask on every other tracked frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from _moving_disc import H, T, W, moving_disc_clip, texture
from test_models_objects import RANDOM, _check_rows, _write

from curation.models.keyframes import Blend, Carrier, KeyframeConfig, Patch, Pyramid, keyframes
from curation.models.sam import SamConfig
from curation.models.yolo import YoloConfig
from curation.stage import WorkUnit
from curation.stages.objects import ObjectsConfig, ObjectsStage
from filters.masks import mask_iou
from manifests.media.decode import read_frames


def moving_square(n: int = 20, side: int = 24) -> tuple[np.ndarray, list[np.ndarray]]:
    """A textured square moving 3 px right and 1 px down a frame over a still textured background."""
    background = texture(7, H, W, 2)
    skin = texture(8, H, W, 1)
    frames, masks = [], []
    for t in range(n):
        x, y = 10 + 3 * t, 20 + t
        mask = np.zeros((H, W), bool)
        mask[y : y + side, x : x + side] = True
        frame = background.copy()
        frame[mask] = np.roll(skin, (t, 3 * t), (0, 1))[mask]  # the skin moves with the square
        frames.append(frame)
        masks.append(mask)
    return np.stack(frames), masks


@pytest.mark.parametrize("seed", range(6))
def test_patch_moves_as_a_whole_frame_warp(seed):
    """Carrying on the object's window equals warping the whole frame (what the carrier did before): the same
    soft values to float rounding, the same pixels over 0.5, also for a mask pushed partly out of the frame."""
    rng = np.random.default_rng(seed)
    h, w = 90, 160
    soft = np.zeros((h, w), np.float32)
    cv2.circle(soft, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(3, 40)), 1.0, -1)
    soft = cv2.GaussianBlur(soft, (0, 0), 1.5)
    angle, scale = rng.normal(0, 0.1), 1 + rng.normal(0, 0.05)
    motion = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.normal(0, 15)],
                       [scale * np.sin(angle), scale * np.cos(angle), rng.normal(0, 15)], [0, 0, 1]])
    whole = cv2.warpAffine(soft, motion[:2], (w, h), flags=cv2.INTER_LINEAR)
    moved = Patch.of(soft).moved(motion)
    assert moved.frame == (h, w)
    np.testing.assert_allclose(moved.full(), whole, atol=1e-3)
    assert np.array_equal(moved.hard(), whole >= 0.5)


def test_patch_moved_off_the_frame_keeps_what_is_not_in_view():
    """A mask moved back to an earlier frame where the object was partly out of view keeps that part
    (`on_frame` False), so moving it forward again restores the whole mask; cut to the frame, it is lost."""
    mask = np.zeros((60, 80), bool)
    mask[20:40, 5:30] = True
    back = np.array([[1, 0, -20.0], [0, 1, 0], [0, 0, 1]])  # 20 px left: 15 columns leave the frame
    there = np.linalg.inv(back)
    kept = Patch.of(mask).moved(back, on_frame=False)
    assert kept.x0 < 0 and np.array_equal(kept.moved(there).hard(), mask)
    cut = Patch.of(mask).moved(back)
    assert cut.x0 >= 0 and cut.moved(there).hard().sum() < mask.sum()


def test_blend_weighs_two_windows_by_distance():
    a, b = np.zeros((40, 60), np.float32), np.zeros((40, 60), np.float32)
    a[5:15, 5:15], b[20:30, 30:50] = 1.0, 0.8
    both = Blend(Patch.of(a), Patch.of(b))
    assert np.array_equal(both.at(0.25).hard(), a >= 0.5)  # 0.75 a + 0.25 b: a's square only
    assert np.array_equal(both.at(0.7).hard(), b >= 0.5)  # 0.3 a + 0.56 b: b's rectangle only
    np.testing.assert_allclose(both.at(0.4).full(), 0.6 * a + 0.4 * b, atol=1e-6)
    assert not Blend(Patch.of(np.zeros_like(a)), Patch.of(np.zeros_like(b))).at(0.5).hard().any()


def test_pyramid_crop_equals_the_shrunk_crop():
    """A crop of pyramid level k at a multiple of 2^k is the full-size crop shrunk by INTER_AREA: the
    motion estimate sees the same pixels as if its neighbourhood had been cut out first and then shrunk."""
    rng = np.random.default_rng(3)
    frame = (rng.random((90, 131)) * 255).astype(np.uint8)
    pyramid = Pyramid([frame])
    for k in (1, 2, 3):
        f = 2**k
        x0, y0, x1, y1 = 2 * f, f, 12 * f, 9 * f
        crop = frame[y0:y1, x0:x1]
        shrunk = cv2.resize(crop, ((x1 - x0) // f, (y1 - y0) // f), interpolation=cv2.INTER_AREA)
        assert np.array_equal(pyramid.frame(k, 0)[y0 // f : y1 // f, x0 // f : x1 // f], shrunk)
        assert pyramid.shape(k) == (90 // f, 131 // f)


def test_motion_carry_estimates_each_step_once():
    """Between two keyframes the motion carrier estimates each step once, on the way from the earlier
    keyframe; the later keyframe's mask is moved back by those motions, so a square that moves rigidly lands
    where its truth is from both sides."""
    frames, masks = moving_square(n=17)
    carrier = Carrier(frames, "motion")
    estimated = []
    step = carrier._step_motion
    carrier._step_motion = lambda *args: estimated.append(args[3:5]) or step(*args)  # (src, dst) of each estimate
    got = carrier.carry({0: masks[0], 8: masks[8], 16: masks[16]}, list(range(17)))
    assert sorted(estimated) == [(t, t + 1) for t in range(16)]  # forward only, one estimate per step
    assert min(mask_iou(got[t], masks[t]) for t in range(17)) > 0.9


def test_keyframes_are_every_kth_frame_centred():
    assert keyframes(16, 4) == [1, 5, 9, 13]  # 3 frames left over: 1 before the first, 2 after the last
    assert keyframes(17, 4) == [0, 4, 8, 12, 16]
    assert keyframes(5, 1) == [0, 1, 2, 3, 4]
    assert keyframes(3, 8) == [1] and keyframes(0, 4) == []


@pytest.mark.parametrize("method", ["flow", "motion"])
def test_carry_follows_a_moving_square(method):
    frames, truth = moving_square()
    keys = keyframes(len(frames), 6)  # [0, 6, 12, 18]: both sides between, one side after the last
    carried = Carrier(frames, method).carry({k: truth[k] for k in keys}, list(range(len(frames))))
    assert sorted(carried) == list(range(len(frames)))
    for t, m in carried.items():
        assert m.shape == (H, W) and m.dtype == bool
        if t in keys:
            assert (m == truth[t]).all()  # a keyframe keeps SAM's mask
        else:
            assert mask_iou(m, truth[t]) > 0.8, (t, mask_iou(m, truth[t]))
    # standing still would not do: the square moves off most of its keyframe position between keyframes
    assert mask_iou(truth[0], truth[3]) < 0.7


def test_motion_carry_of_a_large_object_is_estimated_small_and_placed_right():
    """An object spanning 200 px is matched at a quarter of its size in its own neighbourhood; the motion
    comes back in whole-frame pixels: a zoom and a pan followed to within a pixel or two at the edge."""
    import cv2

    rng = np.random.default_rng(0)
    world = cv2.GaussianBlur((rng.random((400, 600, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
    moves = [np.array([[1 + 0.01 * t, 0, -3.0 * t], [0, 1 + 0.01 * t, -1.0 * t]], np.float32) for t in range(9)]
    frames = np.stack([cv2.warpAffine(world, m, (400, 300)) for m in moves])
    start = np.zeros((300, 400), np.uint8)
    cv2.ellipse(start, (200, 150), (100, 70), 0, 0, 360, 1, -1)
    truth = [cv2.warpAffine(start, m, (400, 300), flags=cv2.INTER_NEAREST).astype(bool) for m in moves]
    carried = Carrier(frames, "motion").carry({0: truth[0], 8: truth[8]}, list(range(9)))
    assert min(mask_iou(carried[t], truth[t]) for t in range(1, 8)) > 0.97
    assert mask_iou(truth[0], truth[4]) < 0.97  # it did move that much


def test_carry_needs_a_known_mask():
    frames, _ = moving_square(4)
    with pytest.raises(ValueError, match="at least one known mask"):
        Carrier(frames).carry({}, [0, 1])


@pytest.fixture(scope="module")
def disc_unit(tmp_path_factory) -> WorkUnit:
    root = tmp_path_factory.mktemp("out")
    moving, _ = moving_disc_clip([(30 + 4 * t, 48.0) for t in range(T)])
    rows = [{"clip_id": "moving", "status": "ok", "uri": _write(root / "moving.mp4", moving)}]
    return WorkUnit("b000000", [], str(root), tables={"clips": rows})


def test_objects_stage_runs_sam_on_keyframes_only(disc_unit, tmp_path):
    tracker = tmp_path / "keep_all.yaml"
    tracker.write_text("tracker_type: bytetrack\ntrack_high_thresh: 0.0\ntrack_low_thresh: 0.0\n"
                       "new_track_thresh: 0.0\ntrack_buffer: 30\nmatch_thresh: 0.8\nfuse_score: False\n")
    config = ObjectsConfig(methods=("yolo-sam",), max_frames=T, keyframes=KeyframeConfig(interval=4, carry="flow"),
                           yolo=YoloConfig(weights=RANDOM, imgsz=64, conf=0.0, max_det=3, tracker=str(tracker)),
                           sam=SamConfig(image_size=64, weights=RANDOM))
    stage = ObjectsStage(config)
    stage.setup()
    assert stage.sam is not None
    seen: list[np.ndarray] = []
    real = stage.sam.masks_of_frames

    def recording(frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        seen.extend(frames)
        return real(frames, boxes)

    stage.sam.masks_of_frames = recording  # type: ignore[method-assign]  # a spy: the real SAM still runs
    rows = _check_rows(stage.process(disc_unit).rows)
    assert rows, "a tracker that keeps every detection must give tracks"
    decoded = read_frames(Path(disc_unit.out_root) / "moving.mp4", list(range(T)))
    sam_frames = sorted({t for f in seen for t in range(T) if np.array_equal(f, decoded[t])})
    keys = set(keyframes(T, 4))
    expected = set()
    for r in rows:
        on_keys = [f for f in r["frame_indices"] if f in keys]
        expected |= set(on_keys) if on_keys else {r["frame_indices"][len(r["frame_indices"]) // 2]}
    assert len(seen) == len(sam_frames) and sam_frames == sorted(expected)
    assert len(sam_frames) <= len(keys) + len(rows) < T
    for r in rows:  # a mask on every tracked frame, not only on SAM's
        assert r["stage_version"] == "1+yolo-3+sam-2-every-4-flow-3"
        assert len(r["frame_indices"]) > len(set(r["frame_indices"]) & keys)
