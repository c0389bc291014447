"""Our fast shot detector: colour histograms + thumbnails on 64x36 frames, adaptive thresholds.

Hard cuts: a frame whose change from the previous one (histogram distance + thumbnail distance)
stands out against the mean change of its neighbours (like PySceneDetect's AdaptiveDetector, but on
two complementary signals, so same-palette cuts and fast pans are both handled).
Gradual transitions: over a short window [t-w, t+w] the content changes a lot, yet the middle frame
is close to the average of the two ends (a dissolve or fade is a linear blend; camera motion is not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.shots.base import ShotDetection, ShotDetector, ShotError
from curation.shots.features import (
    DECODE_H,
    DECODE_W,
    FrameSignals,
    batch_signals,
    concat_signals,
    hist_distance,
    thumb_distance,
)
from manifests.media.decode import iter_frame_batches
from manifests.media.probe import VideoError, probe


@dataclass(frozen=True)
class FastConfig:
    cut_ratio: float = 3.0  # frame change / mean change of its neighbours needed for a hard cut
    cut_min_score: float = 0.12  # absolute floor of the combined change for a hard cut
    thumb_weight: float = 1.0  # weight of the thumbnail distance in the combined change
    window_s: float = 0.3  # neighbourhood (each side) for the adaptive mean
    min_shot_s: float = 0.25  # no two boundaries closer than this
    grad_half_s: float = 0.12  # half-window w of the linearity test
    grad_min_change: float = 0.25  # histogram change across [t-w, t+w] needed for a gradual transition
    grad_max_residual: float = 0.3  # |mid - mean(ends)| / |end - start| at most this for a blend
    grad_min_frames: int = 2  # consecutive candidate centres needed
    black_luma: float = 12.0  # mean grey (0-255) under which a frame counts as black
    fade_min_span: float = 8.0  # grey change across the window for a blend with a black end (a fade ramp)
    batch_size: int = 64

    def __post_init__(self) -> None:
        positive = ("cut_ratio", "cut_min_score", "window_s", "grad_half_s", "grad_min_change", "grad_max_residual")
        bad = [n for n in positive if getattr(self, n) <= 0]
        if bad or self.min_shot_s < 0 or self.grad_min_frames < 1 or not 0 < self.batch_size <= 512:
            raise ValueError(f"invalid FastConfig values: {bad or self}")


def frame_changes(sig: FrameSignals, thumb_weight: float) -> np.ndarray:
    """Combined change from frame t-1 to t (index 0 is 0)."""
    out = np.zeros(len(sig), np.float32)
    if len(sig) > 1:
        hist = hist_distance(sig.hist[1:], sig.hist[:-1])
        out[1:] = hist + thumb_weight * thumb_distance(sig.thumb[1:], sig.thumb[:-1])
    return out


def adaptive_ratio(change: np.ndarray, k: int) -> np.ndarray:
    """change[t] / mean of change over [t-k, t+k] without t (edges use the neighbours that exist)."""
    idx = np.arange(len(change))
    csum = np.concatenate([[0.0], np.cumsum(change, dtype=np.float64)])
    lo, hi = np.clip(idx - k, 1, len(change)), np.clip(idx + k + 1, 1, len(change))  # change[0] is no neighbour
    inside = (idx >= lo) & (idx < hi)
    total = csum[hi] - csum[lo] - np.where(inside, change, 0)
    count = np.maximum(hi - lo - inside, 1)
    return change / (total / count + 1e-3)


def hard_cuts(change: np.ndarray, ratio: np.ndarray, cfg: FastConfig, min_gap: int) -> list[int]:
    """Frames passing both thresholds, strongest first, none within min_gap of a stronger one."""
    cand = np.flatnonzero((ratio >= cfg.cut_ratio) & (change >= cfg.cut_min_score))
    kept: list[int] = []
    for t in sorted(cand[cand > 0], key=lambda i: -change[i]):
        if all(abs(t - k) >= min_gap for k in kept):
            kept.append(int(t))
    return sorted(kept)


def gradual_candidates(sig: FrameSignals, w: int, cfg: FastConfig) -> np.ndarray:
    """Boolean per frame: the window [t-w, t+w] looks like a linear blend with a large content change."""
    n = len(sig)
    out = np.zeros(n, bool)
    if n <= 2 * w:
        return out
    a, m, b = sig.thumb[: n - 2 * w], sig.thumb[w : n - w], sig.thumb[2 * w :]
    span = np.abs(b - a).mean(axis=1)
    residual = np.abs(m - 0.5 * (a + b)).mean(axis=1) / (span + 1.0)
    change = hist_distance(sig.hist[2 * w :], sig.hist[: n - 2 * w])
    dark = np.minimum(sig.luma[: n - 2 * w], sig.luma[2 * w :]) < cfg.black_luma  # fade ramps: one end black
    content_change = (change >= cfg.grad_min_change) | (dark & (span > cfg.fade_min_span))
    out[w : n - w] = (residual <= cfg.grad_max_residual) & content_change
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def gradual_transitions(sig: FrameSignals, w: int, cfg: FastConfig, min_gap: int) -> list[tuple[int, int]]:
    """Runs of blend candidates (plus black frames) widened by w, merged when closer than min_gap."""
    cand = gradual_candidates(sig, w, cfg)
    spans = [(a - w, b + w) for a, b in runs(cand) if b - a >= cfg.grad_min_frames]
    spans += [(a, b) for a, b in runs(sig.luma < cfg.black_luma)]
    spans = [(max(0, a), min(len(sig), b)) for a, b in sorted(spans)]
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < min_gap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    # it must contain a real change of content or a black frame: blends of two views of one shot do not count
    return [(a, b) for a, b in merged if b - a > 2 * w and _changes_across(sig, a, b, cfg)]


def _changes_across(sig: FrameSignals, a: int, b: int, cfg: FastConfig) -> bool:
    before, after = max(0, a - 1), min(len(sig) - 1, b)
    dark = min(sig.luma[a:b].min(), 255) < cfg.black_luma
    return dark or float(hist_distance(sig.hist[before], sig.hist[after])) >= cfg.grad_min_change


def detect_from_signals(sig: FrameSignals, fps: float, cfg: FastConfig) -> ShotDetection:
    """The pure decision part of the fast detector (testable without decoding)."""
    n = len(sig)
    min_gap = max(1, round(cfg.min_shot_s * fps))
    change = frame_changes(sig, cfg.thumb_weight)
    ratio = adaptive_ratio(change, max(1, round(cfg.window_s * fps)))
    cuts = hard_cuts(change, ratio, cfg, min_gap)
    w = max(1, round(cfg.grad_half_s * fps))
    transitions = gradual_transitions(sig, w, cfg, min_gap)
    # a cut inside (or touching) a gradual transition is its steepest frame, not a second boundary
    cuts = [c for c in cuts if not any(a - 1 <= c <= b + 1 for a, b in transitions)]
    # a transition running into the first or last frame (opening fade-in, closing fade-out) starts no shot
    transitions = [(a, b) for a, b in transitions if 0 < a and b < n]
    return ShotDetection(fps=fps, frames=n, cuts=cuts, transitions=transitions)


class FastDetector(ShotDetector):
    name = "fast"
    version = "1.0"
    config: FastConfig

    def __init__(self, config: FastConfig) -> None:
        super().__init__(config)
        self.model_name = "histogram-adaptive"

    def signals(self, video_path: str | Path) -> tuple[float, FrameSignals]:
        """(fps, per-frame signals), decoded at 64x36 in streamed batches; about 3.3 KB a frame is kept."""
        try:
            fps = probe(video_path).fps
            batches = iter_frame_batches(video_path, self.config.batch_size, width=DECODE_W, height=DECODE_H)
            sig = concat_signals(batch_signals(b) for _, b in batches)
        except VideoError as exc:
            raise ShotError(str(exc)) from None
        if len(sig) == 0:
            raise ShotError(f"{video_path}: no frames decoded")
        return fps, sig

    def detect(self, video_path: str | Path) -> ShotDetection:
        fps, sig = self.signals(video_path)
        return detect_from_signals(sig, fps, self.config)
