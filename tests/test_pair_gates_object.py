"""The object gates (issue 22, item 2): a local edit's mask must be one object, connected, stable in area, its
outline on image or motion edges. Each value on masks whose answer is known, and the gate verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from filters import FilterError
from filters.pair_gates import (
    PairGateConfig,
    evaluate_pair,
    mask_area_cv,
    mask_boundary_edge,
    mask_connected,
    object_gates,
)

T, H, W = 6, 48, 64


def _square(t: int, x0: int, size: int = 12, y0: int = 16) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0 : y0 + size, x0 : x0 + size] = True
    return m


def moving_square(step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(frames, mask): a red square moving right over flat grey, the mask exactly the square."""
    mask = np.stack([_square(t, 4 + step * t) for t in range(T)])
    frames = np.full((T, H, W, 3), 110, np.uint8)
    frames[mask] = (220, 40, 40)
    return frames, mask


def test_connected_is_the_share_of_the_largest_piece() -> None:
    _, one = moving_square()
    assert mask_connected(one) == 1.0
    two = one | np.stack([_square(t, 50, y0=2) for t in range(T)])  # a second, separate square of the same size
    assert mask_connected(two) == pytest.approx(0.5)
    assert mask_connected(np.zeros((T, H, W), bool)) == 1.0  # nothing visible: nothing to judge


def test_area_cv_sees_a_breathing_mask() -> None:
    _, rigid = moving_square()
    assert mask_area_cv(rigid) == 0.0
    breathing = np.stack([_square(t, 20, size=8 if t % 2 else 16) for t in range(T)])  # 64 and 256 pixels
    assert mask_area_cv(breathing) == pytest.approx(0.6)  # std 96 / mean 160
    hidden = rigid.copy()
    hidden[2] = False  # frames where the object is not visible do not count as area 0
    assert mask_area_cv(hidden) == 0.0


def test_boundary_on_image_and_motion_edges_but_not_on_flat_background() -> None:
    cfg = PairGateConfig()
    frames, mask = moving_square()
    assert mask_boundary_edge(frames, mask, cfg) > 0.95
    blob = np.stack([_square(t, 40, size=10, y0=32) for t in range(T)])  # a mask where the frame is flat grey
    assert mask_boundary_edge(frames, blob, cfg) < 0.1
    same_colour = np.full_like(frames, 110)
    same_colour[mask] = 112  # no image edge (2 grey levels) ...
    moving = np.full_like(frames, 110)
    moving[mask] = (200, 200, 200)
    assert mask_boundary_edge(same_colour, mask, cfg) < 0.1
    # ... while a motion edge alone counts: the square's leading and trailing outlines change between frames
    flat_motion = cfg.__class__(edge_gradient=1e9)  # image edges off: only motion edges remain
    assert mask_boundary_edge(moving, mask, flat_motion) > 0.3


def test_object_gates_pass_an_object_and_fail_a_bad_track() -> None:
    cfg = PairGateConfig()
    frames, mask = moving_square()
    good = object_gates(frames, mask, cfg)
    assert all(g.passed for g in good.values()), good
    shards = np.zeros_like(mask)
    for t in range(T):  # scattered 2x2 specks on flat background, a different count each frame
        for k in range(1 + 2 * t):
            shards[t, 40 - 2 * k : 42 - 2 * k, 5 + 5 * k : 7 + 5 * k] = True
    bad = object_gates(frames, shards, cfg)
    assert not bad["connected"].passed and not bad["area_cv"].passed and not bad["boundary_edge"].passed


def test_evaluate_pair_runs_object_gates_only_for_tracked_masks() -> None:
    frames, mask = moving_square()
    target = frames.copy()
    target[mask] = (40, 40, 220)
    tracked = evaluate_pair(frames, target, mask, "inside", PairGateConfig(), track=(frames, mask))
    assert {"connected", "area_cv", "boundary_edge", "mask_area", "mask_iou"} <= set(tracked)
    drawn = evaluate_pair(frames, target, mask, "inside", PairGateConfig())
    assert not {"connected", "area_cv", "boundary_edge", "mask_area", "mask_iou"} & set(drawn)


@pytest.mark.parametrize("field", ["min_connected", "min_boundary_edge"])
def test_fraction_thresholds_are_checked(field: str) -> None:
    with pytest.raises(FilterError, match=field):
        PairGateConfig(**{field: 1.5})
    with pytest.raises(FilterError, match=">= 0"):
        PairGateConfig(max_area_cv=-1)


def test_a_clip_s_local_edits_use_the_largest_object_passing_every_object_gate() -> None:
    from curation.pair_rows import choose_object

    frames, square = moving_square()
    shards = np.zeros_like(square)
    shards[:, 30:40, 2:12] = True  # two separate 10x10 pieces: larger than the square together, not one object
    shards[:, 30:40, 40:50] = True
    frames[shards] = (40, 200, 40)
    cfg = PairGateConfig()
    assert shards.sum() > square.sum()
    assert choose_object({"shards": shards, "square": square}, cfg) == "shards"  # without frames: area and IoU only
    assert choose_object({"shards": shards, "square": square}, cfg, frames) == "square"
    assert choose_object({"shards": shards}, cfg, frames) is None
