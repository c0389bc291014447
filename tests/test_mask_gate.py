"""The mask gate of edit pairs: which object's masks may carry a local edit (curation.pair_rows.usable) and
which object a clip's local edits use (choose_object), on the thresholds of PairGateConfig."""

from __future__ import annotations

import numpy as np
import pytest

from curation.pair_rows import choose_object, usable
from filters.pair_gates import PairGateConfig, mask_area_fraction, mask_temporal_iou

H, W = 40, 60


def _track(*corners: tuple[int, int], size: int = 10) -> np.ndarray:
    """(T, H, W) bool: one size x size square per frame, its top-left corner at each (x, y)."""
    masks = np.zeros((len(corners), H, W), bool)
    for m, (x, y) in zip(masks, corners):
        m[y : y + size, x : x + size] = True
    return masks


def test_a_stable_track_of_fair_size_is_usable():
    mask = _track((20, 10), (21, 10), (22, 10))
    assert mask_temporal_iou(mask) == pytest.approx(90 / 110)  # each step shifts 1 of 10 columns
    assert mask_area_fraction(mask) == pytest.approx(100 / 2400)
    assert usable(mask, PairGateConfig())


def test_jumpy_tiny_huge_and_empty_tracks_are_not_usable():
    cfg = PairGateConfig()
    assert mask_temporal_iou(_track((0, 0), (50, 30))) == 0.0 and not usable(_track((0, 0), (50, 30)), cfg)
    tiny = _track((20, 10), (20, 10), size=1)  # 1 / 2400 of the frame, under min_mask_area
    assert not usable(tiny, cfg) and usable(tiny, PairGateConfig(min_mask_area=0.0001))
    huge = _track((0, 0), (0, 0), size=40)  # two thirds of the frame, over max_mask_area
    assert not usable(huge, cfg) and usable(huge, PairGateConfig(max_mask_area=0.7))
    assert not usable(np.zeros((3, H, W), bool), PairGateConfig(min_mask_area=0.0))


def test_the_temporal_iou_bar_is_the_pair_gates_own():
    drifting = _track((20, 10), (23, 10), (26, 10))  # IoU 70 / 130 per step: over 0.5, under 0.6
    assert PairGateConfig().min_mask_iou == 0.5 and usable(drifting, PairGateConfig())
    assert not usable(drifting, PairGateConfig(min_mask_iou=0.6))


def test_local_edits_use_the_largest_usable_object_ties_to_the_smallest_id():
    small, big = _track((5, 5), (5, 5), size=8), _track((30, 10), (30, 10), size=14)
    jumpy_bigger = _track((0, 0), (40, 20), size=18)
    assert choose_object({"b": small, "c": big, "a": jumpy_bigger}, PairGateConfig()) == "c"
    assert choose_object({"y": big, "x": big.copy()}, PairGateConfig()) == "x"
    assert choose_object({"a": jumpy_bigger}, PairGateConfig()) is None and choose_object({}, PairGateConfig()) is None
