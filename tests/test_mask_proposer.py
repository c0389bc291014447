"""The weights-free mask proposer on tiny clips made here: a panning camera with a moving disc, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from _moving_disc import H, T, W, moving_disc_clip, texture

from curation.models.mask_proposer import ProposerConfig, propose
from curation.models.tracks import Track, link_tracks, mask_box, mask_iou, matched_iou, temporal_iou
from manifests.rle import rle_decode

def test_finds_the_moving_disc_under_a_panning_camera():
    centres = [(30 + 4 * t, 48.0) for t in range(T)]
    frames, truth = moving_disc_clip(centres)
    tracks = propose(frames)
    assert len(tracks) >= 1
    score = matched_iou({1: dict(enumerate(truth))}, tracks)[1]
    assert score >= 0.7, f"mean IoU {score:.2f}"
    best = max(tracks, key=lambda tr: len(tr.frames))
    assert best.track_id >= 1 and best.stability() is not None and 0.5 < best.stability() <= 1.0
    # RLE strings decode back to the exact masks, at the frame size
    for counts, mask in zip(best.rles(), best.masks):
        assert np.array_equal(rle_decode(counts, H, W), mask)


def test_a_disc_leaving_through_the_border_keeps_a_clipped_box():
    centres = [(70 + 5 * t, 48.0) for t in range(T)]  # ends beyond the right edge
    frames, truth = moving_disc_clip(centres)
    tracks = propose(frames)
    touching = [b for tr in tracks for b in tr.frame_boxes() if b[2] == W]
    assert touching, "a mask touching the right border"
    assert all(0 <= b[0] < b[2] <= W and 0 <= b[1] < b[3] <= H for tr in tracks for b in tr.frame_boxes())


def test_static_camera_and_static_scene_give_no_objects():
    frames = np.repeat(texture(3, H, W, 2)[None], 8, axis=0)
    assert propose(frames) == []


def test_one_frame_clip_has_no_moving_objects_and_bad_input_is_refused():
    frames, _ = moving_disc_clip([(40.0, 48.0)])
    assert propose(frames) == []
    with pytest.raises(ValueError, match="uint8 RGB"):
        propose(frames.astype(np.float32))


def test_link_tracks_and_temporal_iou_on_known_masks():
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b = np.roll(a, 1, axis=1)
    far = np.zeros_like(a)
    far[7:9, 7:9] = True
    tracks = link_tracks([[a, far], [b], [b, far]], min_iou=0.2, min_frames=2)
    assert [tr.frames for tr in tracks] == [[0, 1, 2], [0, 2]]  # the far one survives a one-frame gap
    assert temporal_iou([a, b, b]) == pytest.approx((mask_iou(a, b) + 1.0) / 2)
    assert temporal_iou([a]) is None and mask_box(a) == [2.0, 2.0, 6.0, 6.0]
    assert Track(1, [0], [a]).frame_boxes() == [[2.0, 2.0, 6.0, 6.0]]


def test_proposer_config_is_frozen():
    with pytest.raises(Exception):
        ProposerConfig().threshold = 1.0  # type: ignore[misc]
