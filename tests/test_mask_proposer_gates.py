"""The proposer drops tracks that are not one coherent object (issue 22, item 1), through the pair stage's own
object gates: on clips generated here, a rigid disc is kept; a breathing, a shattered and a frame-spanning
mask are dropped."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _moving_disc import H, T, W, moving_disc_clip

from curation.models.mask_proposer import TRACK_GATES, ProposerConfig, coherent, propose
from curation.models.tracks import Track
from filters import FilterError
from filters.pair_gates import mask_area_cv

CENTRES = [(30 + 4 * t, 48.0) for t in range(T)]


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_the_true_discs_track_is_coherent() -> None:
    frames, truth = moving_disc_clip(CENTRES)
    assert coherent(frames, Track(1, list(range(T)), truth), TRACK_GATES)


def test_a_breathing_mask_is_dropped() -> None:
    frames, _ = moving_disc_clip(CENTRES)
    radii = [6 + 14 * (t % 2) for t in range(T)]  # grows and shrinks from one frame to the next
    breathing = [disc(cx, cy, r) for (cx, cy), r in zip(CENTRES, radii)]
    assert not coherent(frames, Track(1, list(range(T)), breathing), TRACK_GATES)


def test_a_shattered_mask_is_dropped() -> None:
    frames, truth = moving_disc_clip(CENTRES)
    yy, xx = np.mgrid[:H, :W]
    shards = [m & (yy % 8 >= 2) & (xx % 8 >= 2) for m in truth]  # the disc cut into 6x6 tiles by 2 px gaps
    assert not coherent(frames, Track(1, list(range(T)), shards), TRACK_GATES)


def test_a_mask_spanning_most_of_the_frame_is_dropped() -> None:
    frames, _ = moving_disc_clip(CENTRES)
    most = np.zeros((H, W), bool)
    most[4:-4, 4:-4] = True  # 87% of the frame
    assert not coherent(frames, Track(1, list(range(T)), [most] * T), TRACK_GATES)


def test_propose_keeps_the_disc_and_drops_a_pulsing_blob() -> None:
    frames, truth = moving_disc_clip(CENTRES)
    frames = frames.copy()
    for t in range(T):  # a flat patch in the corner that swells and shrinks in place: changes, but is no object
        frames[t][disc(105, 20, 4 + 8 * (t % 2))] = (250, 250, 250)
    loose = propose(frames, replace(ProposerConfig(), gates=None))
    kept = propose(frames)
    assert len(loose) > len(kept) >= 1  # the blob was a track without the gates
    assert all(not (tr.dense(T)[:, 20, 105]).any() for tr in kept)  # none of the kept tracks is the blob
    assert any((tr.dense(T)[t] & truth[t]).sum() > 0.5 * truth[t].sum() for tr in kept for t in tr.frames)


def test_area_cv_leaves_out_frames_cut_by_the_border() -> None:
    leaving = np.stack([disc(96 + 6 * t, 48, 14) for t in range(T)])  # a rigid disc leaving on the right
    assert mask_area_cv(leaving) == 0.0  # its frames inside the picture all have one area
    assert mask_area_cv(leaving[5:]) > 0.5  # only border frames left: their shrinking area is what there is


def test_gate_thresholds_from_a_job_config_are_checked() -> None:
    assert ProposerConfig(gates={"min_connected": 0.8}).gates == replace(TRACK_GATES, min_connected=0.8)
    with pytest.raises(FilterError, match="unknown pair gate"):
        ProposerConfig(gates={"min_conected": 0.8})
