"""Mask-quality predicates on objects rows: stable, big enough, off the border."""

from __future__ import annotations

import numpy as np
import pytest

from filters.masks import MaskThresholds, mask_quality, mask_reasons
from manifests.rle import rle_encode


def _row(masks: list[np.ndarray]) -> dict:
    h, w = masks[0].shape
    return {"object_id": "o", "mask_rle": [rle_encode(m) for m in masks], "mask_height": h, "mask_width": w}


def _square(x: int, y: int, s: int = 10, h: int = 40, w: int = 60) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y : y + s, x : x + s] = True
    return m


def test_stable_inner_track_passes():
    q = mask_quality(_row([_square(20, 10), _square(21, 10), _square(22, 10)]))
    assert q.frames == 3 and q.border_fraction == 0.0
    assert q.temporal_iou == pytest.approx(90 / 110)  # each step shifts 1 of 10 columns
    assert q.mean_area == pytest.approx(100 / 2400)
    assert mask_reasons(q) == []


def test_border_jumpy_tiny_and_one_frame_tracks_fail_with_reasons():
    border = mask_quality(_row([_square(0, 0), _square(50, 30)]))  # touches edges, jumps
    reasons = mask_reasons(border)
    assert any("temporal IoU 0.00" in r for r in reasons) and any("border in 100%" in r for r in reasons)
    tiny = mask_quality(_row([_square(20, 10, s=1), _square(20, 10, s=1)]))
    assert any("mean area" in r for r in mask_reasons(tiny, MaskThresholds(min_area=0.01)))
    one = mask_quality(_row([_square(20, 10)]))
    assert one.temporal_iou is None and mask_reasons(one) == ["1 frame(s) < 2"]
    with pytest.raises(ValueError, match="no inline masks"):
        mask_quality({"object_id": "x", "mask_rle": None})
