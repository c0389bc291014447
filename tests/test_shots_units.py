"""Pure parts of shot detection: result type, clip ranges, scoring, TransNetV2 post-processing, fast decisions."""

from __future__ import annotations

import numpy as np
import pytest

from curation.shots import ShotDetection, ShotError, clip_ranges, get_detector
from curation.shots.fast import FastConfig, adaptive_ratio, detect_from_signals
from curation.shots.features import N_BINS, THUMB_H, THUMB_W, FrameSignals
from curation.shots.metrics import Score, match, score
from curation.shots.transnet import predictions_to_detection, sliding_windows


def test_shots_tile_video_with_transitions_split_in_the_middle():
    det = ShotDetection(fps=25.0, frames=100, cuts=[30], transitions=[(60, 70)])
    assert det.shots() == [(0, 30), (30, 65), (65, 100)]
    assert ShotDetection(fps=25.0, frames=10).shots() == [(0, 10)]
    with pytest.raises(ValueError):
        ShotDetection(fps=25.0, frames=10, cuts=[10])
    with pytest.raises(ValueError):
        ShotDetection(fps=25.0, frames=10, transitions=[(5, 5)])


def test_clip_ranges_drops_trims_and_removes_transitions():
    det = ShotDetection(fps=10.0, frames=100, cuts=[30, 35], transitions=[(60, 70)])
    # segments: [0,30) [30,35) [35,60) [70,100); trim 2; min 1 s = 10 frames drops [32,33)
    assert clip_ranges(det, min_len_s=1.0, max_len_s=10.0, trim_frames=2) == [(2, 28), (37, 58), (72, 98)]
    assert clip_ranges(det, min_len_s=3.0, max_len_s=10.0, trim_frames=0) == [(0, 30), (70, 100)]


def test_clip_ranges_splits_long_shots_into_near_equal_pieces():
    det = ShotDetection(fps=10.0, frames=95)
    pieces = clip_ranges(det, min_len_s=0.0, max_len_s=3.0, trim_frames=0)
    assert pieces == [(0, 24), (24, 48), (48, 71), (71, 95)]
    assert all(b - a <= 30 for a, b in pieces)
    assert clip_ranges(det, 0.0, 9.5, 0) == [(0, 95)]
    with pytest.raises(ValueError):
        clip_ranges(det, min_len_s=2.0, max_len_s=1.0, trim_frames=0)
    with pytest.raises(ValueError):
        clip_ranges(det, min_len_s=0.0, max_len_s=1.0, trim_frames=-1)


def test_match_is_one_to_one_within_tolerance():
    ref = [(10, 10), (50, 60)]
    assert match([(12, 12)], ref, tol=2) == [(0, 0)]
    assert match([(13, 13)], ref, tol=2) == []
    assert match([(9, 9), (11, 11)], ref, tol=2) == [(0, 0)]  # the second is a false positive
    assert match([(62, 62)], ref, tol=2) == [(0, 1)]  # a cut reported at the end of a dissolve
    s = score([(9, 9), (11, 11), (55, 55)], ref)
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert Score(2, 1, 0).f1 == pytest.approx(0.8)


def test_transnet_predictions_to_detection():
    pred = np.zeros(100, np.float32)
    pred[29] = 0.9  # hard cut: last frame of the old shot fires, new shot starts at 30
    pred[60:66] = 0.8  # a gradual transition
    pred[99] = 0.7  # at the very end: no new shot after it
    det = predictions_to_detection(pred, fps=25.0, threshold=0.5, max_cut_run=2)
    assert det.cuts == [30] and det.transitions == [(60, 67)]


def test_sliding_windows_match_the_wheel_padding():
    frames = np.arange(130, dtype=np.uint8)[:, None, None, None] * np.ones((1, 27, 48, 3), np.uint8)
    windows = list(sliding_windows([frames[:40], frames[40:41], frames[41:]]))
    # the wheel pads 25 copies of frame 0 and enough copies of the last frame; windows step by 50
    assert len(windows) == 3 and all(w.shape == (100, 27, 48, 3) for w in windows)
    assert windows[0][:26, 0, 0, 0].tolist() == [0] * 26 and windows[0][26, 0, 0, 0] == 1
    assert windows[1][0, 0, 0, 0] == 25 and windows[2][-1, 0, 0, 0] == 129


def _signals(frames: np.ndarray) -> FrameSignals:
    from curation.shots.features import batch_signals

    return batch_signals(frames)


def test_fast_decisions_on_constructed_frames():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 120, (36, 64, 3), dtype=np.uint8)
    b = rng.integers(120, 255, (36, 64, 3), dtype=np.uint8)

    def noise(img: np.ndarray) -> np.ndarray:
        return np.clip(img.astype(int) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)

    frames = [noise(a) for _ in range(40)] + [noise(b) for _ in range(40)]  # hard cut at 40
    alphas = np.linspace(0, 1, 14)[1:-1]  # then a 12-frame dissolve back to a at 80..92
    frames += [noise((b * (1 - t) + a * t).astype(np.uint8)) for t in alphas] + [noise(a) for _ in range(40)]
    det = detect_from_signals(_signals(np.stack(frames)), fps=25.0, cfg=FastConfig())
    assert det.cuts == [40]
    assert len(det.transitions) == 1 and det.transitions[0][0] <= 82 and det.transitions[0][1] >= 90


def test_adaptive_ratio_is_high_only_at_isolated_spikes():
    change = np.full(50, 0.05)
    change[25] = 0.5
    r = adaptive_ratio(change, k=5)
    assert r[25] > 5 and r[np.arange(50) != 25].max() < 1.2


def test_config_validation_and_registry():
    with pytest.raises(ValueError):
        FastConfig(cut_ratio=0)
    with pytest.raises(ShotError, match="unknown shot detector"):
        get_detector("nope")
    fast = get_detector("fast")
    assert (fast.name, fast.weights_id) == ("fast", "none")
    assert len(FrameSignals(np.zeros((2, N_BINS)), np.zeros((2, THUMB_H * THUMB_W)), np.zeros(2), np.zeros(2))) == 2
