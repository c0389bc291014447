"""Our fast shot detector: colour histograms + thumbnails on 64x36 frames, adaptive thresholds.

Hard cuts: a frame whose change from the previous one (histogram distance + thumbnail distance)
stands out against the mean change of its neighbours (like PySceneDetect's AdaptiveDetector, but on
two complementary signals, so same-palette cuts and fast pans are both handled).
Gradual transitions, two tests, either suffices: over a short window [t-w, t+w] the content changes
a lot, yet the middle frame is close to the average of the two ends (a dissolve or fade of still shots is
a linear blend); or, over a longer window, the content changes, spread over many frames, while the
structure energy dips in the middle (a blend of two unrelated pictures has about half their edge energy,
also when both shots pan or zoom, which breaks the linearity of the first test; camera motion keeps it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.shots.base import ShotDetection, ShotDetector, ShotError
from curation.shots.decode import NoTimestamps, open_small, plan_sparse
from curation.shots.features import (
    DECODE_H,
    DECODE_W,
    THUMB_H,
    THUMB_W,
    FrameSignals,
    batch_signals,
    by_centre_chunks,
    by_row_chunks,
    concat_signals,
    hist_distance,
    thumb_distance,
)
from curation.shots.sparse import gap_scale, merge_ranges, on_all_frames, on_every_frame, seen_rate, to_seen_frames
from manifests.media.probe import VideoError


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
    dip_half_s: float = 0.3  # half-window of the structure-dip test (dissolves between moving shots)
    dip_ratio: float = 0.65  # structure energy at the centre / mean of the window's ends at most this
    dip_min_ratio: float = 0.8  # ... and / the lower end at most this (a cut to a flatter shot is a step, no dip)
    dip_min_change: float = 0.3  # histogram + thumbnail change across the dip's window at least this
    dip_max_step: float = 0.35  # largest one-frame change / summed change across the window (a cut is one step)
    dip_max_residual: float = 0.6  # the linearity residual of gradual_candidates, on an 8x6 grid, at most this
    batch_size: int = 64
    skip_nonref: bool = False  # decode reference pictures only, detect on them (curation.shots.sparse)
    sparse_cut_ratio: float = 2.75  # cut_ratio there, against gap-weighed neighbours (sparse.gap_scale)

    def __post_init__(self) -> None:
        positive = ("cut_ratio", "sparse_cut_ratio", "cut_min_score", "window_s", "grad_half_s", "grad_min_change",
                    "grad_max_residual", "dip_half_s", "dip_ratio", "dip_min_ratio", "dip_min_change", "dip_max_step",
                    "dip_max_residual")
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


def adaptive_ratio(change: np.ndarray, k: int, scale: np.ndarray | None = None) -> np.ndarray:
    """change[t] / mean of change over [t-k, t+k] without t (edges use the neighbours that exist). With
    `scale`, the neighbours' changes are divided by their scale and the mean multiplied by t's: changes
    across gaps of different length (curation.shots.sparse.gap_scale) compared at one measure."""
    per = change if scale is None else change / scale
    idx = np.arange(len(change))
    csum = np.concatenate([[0.0], np.cumsum(per, dtype=np.float64)])
    lo, hi = np.clip(idx - k, 1, len(change)), np.clip(idx + k + 1, 1, len(change))  # change[0] is no neighbour
    inside = (idx >= lo) & (idx < hi)
    total = csum[hi] - csum[lo] - np.where(inside, per, 0)
    mean = total / np.maximum(hi - lo - inside, 1)
    return change / ((mean if scale is None else scale * mean) + 1e-3)


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
    a, b = sig.thumb[: n - 2 * w], sig.thumb[2 * w :]
    span = by_row_chunks(lambda p, q: np.abs(q - p).mean(axis=1), a, b)
    residual = blend_residual(sig.thumb, w)
    change = hist_distance(sig.hist[2 * w :], sig.hist[: n - 2 * w])
    dark = np.minimum(sig.luma[: n - 2 * w], sig.luma[2 * w :]) < cfg.black_luma  # fade ramps: one end black
    content_change = (change >= cfg.grad_min_change) | (dark & (span > cfg.fade_min_span))
    out[w : n - w] = (residual <= cfg.grad_max_residual) & content_change
    return out


def dip_candidates(sig: FrameSignals, change: np.ndarray, w: int, cfg: FastConfig) -> np.ndarray:
    """Boolean per frame: across [t-w, t+w] the colours change a lot, spread over many frames (no cut), and
    the structure energy at t dips well under its ends'. Two unrelated pictures blended half and half keep
    about half their edge energy while camera motion keeps it, so this holds for dissolves between moving
    shots, where the pixel-linearity test fails."""
    n = len(sig)
    out = np.zeros(n, bool)
    if n <= 2 * w:
        return out
    e = sig.edge.astype(np.float64)
    ea, em, eb = e[: n - 2 * w], e[w : n - w], e[2 * w :]
    dip = (em <= cfg.dip_ratio * 0.5 * (ea + eb)) & (em <= cfg.dip_min_ratio * np.minimum(ea, eb))
    moved = hist_distance(sig.hist[2 * w :], sig.hist[: n - 2 * w]) + cfg.thumb_weight * thumb_distance(
        sig.thumb[2 * w :], sig.thumb[: n - 2 * w]) >= cfg.dip_min_change
    steps = np.lib.stride_tricks.sliding_window_view(change[1:], 2 * w)  # changes into frames t-w+1 .. t+w
    spread = steps.max(axis=1) <= cfg.dip_max_step * (steps.sum(axis=1) + 1e-6)
    coarse = sig.thumb.reshape(n, 6, THUMB_H // 6, 8, THUMB_W // 8).mean(axis=(2, 4)).reshape(n, -1)
    out[w : n - w] = dip & moved & spread & (blend_residual(coarse, w) <= cfg.dip_max_residual)
    return out


def blend_residual(x: np.ndarray, w: int) -> np.ndarray:
    """|x[t] - mean(x[t-w], x[t+w])| / (|x[t+w] - x[t-w]| + 1) per centre t in [w, n-w), rows averaged
    (in chunks of centres: the temporaries stay small on long videos)."""

    def residual(part: np.ndarray) -> np.ndarray:
        a, m, b = part[: len(part) - 2 * w], part[w : len(part) - w], part[2 * w :]
        return np.abs(m - 0.5 * (a + b)).mean(axis=1) / (np.abs(b - a).mean(axis=1) + 1.0)

    return by_centre_chunks(residual, x, w)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


@dataclass(frozen=True)
class Marks:
    """What the decision keeps of each frame once the local tests ran (curation.shots.window): the change from
    the frame before, the three candidate masks and histogram rows only where a transition may start after or end,
    a few bytes a frame instead of the signals' 3.3 KB."""

    change: np.ndarray  # (N,) float32, frame_changes
    blend: np.ndarray  # (N,) bool, gradual_candidates
    dip: np.ndarray  # (N,) bool, dip_candidates
    dark: np.ndarray  # (N,) bool, mean grey under black_luma
    rows: dict[int, np.ndarray]  # frame -> histogram row, for _changes_across

    def __len__(self) -> int:
        return len(self.change)


def marks_of(sig: FrameSignals, w: int, wd: int, cfg: FastConfig, blend: bool = True) -> Marks:
    """The local tests on `sig` (half-windows w and wd; the blend test left out when not `blend`). Frames whose
    tests see past either end of `sig` hold what the ends make of them, as at the ends of a video."""
    n = len(sig)
    change = frame_changes(sig, cfg.thumb_weight)
    blends = gradual_candidates(sig, w, cfg) if blend else np.zeros(n, bool)
    dips = dip_candidates(sig, change, wd, cfg)
    dark = sig.luma < cfg.black_luma
    # a span starts after or ends at most wd + 1 frames from a blend or dip candidate, next to a dark frame
    found = np.concatenate([[0], np.cumsum(blends | dips)])
    idx = np.arange(n)
    near = found[np.minimum(idx + wd + 2, n)] > found[np.maximum(idx - wd - 1, 0)]
    edge = np.zeros(n, bool)
    edge[:-1] |= dark[:-1] != dark[1:]
    edge[1:] |= dark[:-1] != dark[1:]
    keep = np.flatnonzero(near | edge)
    keep = np.union1d(keep, [0, n - 1]) if n else keep
    return Marks(change, blends, dips, dark, {int(t): sig.hist[t].copy() for t in keep})


def blend_spans(m: Marks, w: int, cfg: FastConfig) -> list[tuple[int, int]]:
    """Runs of blend candidates (half-window w) widened by w, plus runs of black frames."""
    spans = [(a - w, b + w) for a, b in runs(m.blend) if b - a >= cfg.grad_min_frames]
    return spans + [(a, b) for a, b in runs(m.dark)]


def dip_spans(m: Marks, wd: int, cfg: FastConfig) -> list[tuple[int, int]]:
    """Runs of structure dips (half-window wd) widened by wd."""
    return [(a - wd, b + wd) for a, b in runs(m.dip) if b - a >= cfg.grad_min_frames]


def gradual_transitions(m: Marks, spans: list[tuple[int, int]], w: int, cfg: FastConfig,
                        min_gap: int) -> list[tuple[int, int]]:
    """Candidate spans (blend_spans, dip_spans) merged when closer than min_gap."""
    spans = [(max(0, a), min(len(m), b)) for a, b in sorted(spans)]
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a - merged[-1][1] < min_gap:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    # it must contain a real change of content or a black frame: blends of two views of one shot do not count
    return [(a, b) for a, b in merged if b - a > 2 * w and _changes_across(m, a, b, cfg)]


def _changes_across(m: Marks, a: int, b: int, cfg: FastConfig) -> bool:
    before, after = max(0, a - 1), min(len(m) - 1, b)
    return bool(m.dark[a:b].any()) or float(hist_distance(m.rows[before], m.rows[after])) >= cfg.grad_min_change


def half_windows(cfg: FastConfig, fps: float) -> tuple[int, int]:
    """(w, wd) in frames at `fps`: the half-windows of the blend test and of the structure-dip test."""
    w = max(1, round(cfg.grad_half_s * fps))
    return w, max(w + 1, round(cfg.dip_half_s * fps))


def detect_from_signals(sig: FrameSignals, fps: float, cfg: FastConfig) -> ShotDetection:
    """The pure decision part of the fast detector (testable without decoding), on the whole video at once."""
    return decide(marks_of(sig, *half_windows(cfg, fps), cfg), fps, cfg)


def decide(m: Marks, fps: float, cfg: FastConfig) -> ShotDetection:
    """The decision of the fast detector from the marks of every frame of a video."""
    n = len(m)
    min_gap = max(1, round(cfg.min_shot_s * fps))
    cuts = hard_cuts(m.change, adaptive_ratio(m.change, max(1, round(cfg.window_s * fps))), cfg, min_gap)
    w, wd = half_windows(cfg, fps)
    transitions = gradual_transitions(m, blend_spans(m, w, cfg) + dip_spans(m, wd, cfg), w, cfg, min_gap)
    # a cut inside (or touching) a gradual transition is its steepest frame, not a second boundary
    cuts = [c for c in cuts if not any(a - 1 <= c <= b + 1 for a, b in transitions)]
    # a transition running into the first or last frame (opening fade-in, closing fade-out) starts no shot
    transitions = [(a, b) for a, b in transitions if 0 < a and b < n]
    return ShotDetection(fps=fps, frames=n, cuts=cuts, transitions=transitions)


def detect_sparse(sig: FrameSignals, positions: np.ndarray, frames: int, fps: float, cfg: FastConfig) -> ShotDetection:
    """The decision on decoded frames only (decoded frame k is frame positions[k] of `frames`), as boundaries
    of the whole video, on the whole video at once (curation.shots.sparse says why each test looks where it
    does): the cut, blend and structure-dip tests on the decoded frames at their mean rate, cuts weighed by the
    gaps they span; the structure-dip test once more on the signals put back on every frame."""
    if len(sig) >= frames:
        return detect_from_signals(sig, fps, cfg)
    every = marks_of(on_every_frame(sig, positions, frames), *half_windows(cfg, fps), cfg, blend=False)
    seen = marks_of(sig, *half_windows(cfg, seen_rate(fps, len(sig), frames)), cfg)
    return decide_sparse(seen, every, positions, fps, cfg)


def decide_sparse(seen: Marks, every: Marks, positions: np.ndarray, fps: float, cfg: FastConfig) -> ShotDetection:
    """detect_sparse's decision from the marks of the decoded frames (`seen`) and of the signals put back on
    every frame (`every`, whose blend test is not used): the structure-dip test on every frame, its ranges
    widened to the decoded frames around them; the cut, blend and dip tests on the decoded frames."""
    frames = len(every)
    w, wd = half_windows(cfg, fps)
    dips = to_seen_frames(gradual_transitions(every, dip_spans(every, wd, cfg), w, cfg,
                                              max(1, round(cfg.min_shot_s * fps))), positions, frames)
    rate = seen_rate(fps, len(seen), frames)
    seen_cfg = sparse_config(cfg, len(seen), frames)
    min_gap = max(1, round(cfg.min_shot_s * rate))
    cuts = hard_cuts(seen.change, adaptive_ratio(seen.change, max(1, round(cfg.window_s * rate)), gap_scale(positions)),
                     seen_cfg, min_gap)
    w, wd = half_windows(cfg, rate)
    spans = blend_spans(seen, w, seen_cfg) + dip_spans(seen, wd, seen_cfg)
    gradual = gradual_transitions(seen, spans, w, seen_cfg, min_gap)
    # a cut inside or touching a gradual transition is no second boundary (as in detect_from_signals); a cut
    # at decoded frame c may lie anywhere after the decoded frame before it
    cuts = [c for c in cuts if not any(a - 1 <= c <= b + 1 for a, b in gradual)
            and not any(a - 1 <= positions[c] and positions[c - 1] + 1 <= b + 1 for a, b in dips)]
    seen_det = on_all_frames(ShotDetection(rate, len(seen), cuts, gradual), positions, frames, fps)
    transitions = merge_ranges(seen_det.transitions + dips)
    cuts = [c for c in seen_det.cuts if not any(a <= c <= b for a, b in transitions)]
    return ShotDetection(fps, frames, cuts, [(a, b) for a, b in transitions if 0 < a and b < frames])


def sparse_config(cfg: FastConfig, decoded: int, frames: int) -> FastConfig:
    """The thresholds for `decoded` of `frames` frames: the sparse cut ratio, and the consecutive candidate
    centres a gradual transition needs counted at the decoded rate, as the windows are (2 of 30 frames a
    second span 0.07 s; at the 18 a second left by skipping, 2 would need 0.11 s)."""
    if decoded >= frames:
        return cfg
    return dataclasses.replace(cfg, cut_ratio=cfg.sparse_cut_ratio,
                               grad_min_frames=max(1, round(cfg.grad_min_frames * decoded / frames)))


class FastDetector(ShotDetector):
    name = "fast"
    version = "1.1"
    config: FastConfig

    def __init__(self, config: FastConfig) -> None:
        super().__init__(config)
        self.model_name = "histogram-adaptive" + ("+skip-nonref" if config.skip_nonref else "")
        if config.skip_nonref:
            # 1.2: grad_min_frames counted at the decoded rate; 1.3: cuts weighed by gap, dips on every frame
            self.version = "1.3"

    def signals(self, video_path: str | Path) -> tuple[float, FrameSignals, np.ndarray, int]:
        """(fps, signals of the decoded frames, their display indices, frames in the video), decoded at 64x36
        in streamed batches; about 3.3 KB a frame is kept. A stream whose skipped pictures cannot be placed
        is decoded whole."""
        try:
            try:
                return self._signals(video_path, self.config.skip_nonref)
            except NoTimestamps:
                return self._signals(video_path, False)
        except VideoError as exc:
            raise ShotError(str(exc)) from None

    def _signals(self, video_path: str | Path, skip_nonref: bool) -> tuple[float, FrameSignals, np.ndarray, int]:
        with open_small(video_path, DECODE_W, DECODE_H, self.config.batch_size, skip_nonref) as video:
            sig = concat_signals(batch_signals(b) for b in video.batches)
            positions, frames = video.positions()
        if len(sig) == 0:
            raise ShotError(f"{video_path}: no frames decoded")
        return video.fps, sig, positions, frames

    def detect(self, video_path: str | Path) -> ShotDetection:
        """Decided window by window (curation.shots.window), so memory does not grow with the video; the
        boundaries are those of deciding on all its signals at once (detect_sparse on `signals()`), which is
        what runs when the decoder's pictures are not those its packets announced, or for sparse decoding of
        codecs other than H.264."""
        from curation.shots.window import PlanMismatch  # window builds on this module

        try:
            try:
                return self._detect(video_path, self.config.skip_nonref)
            except NoTimestamps:
                return self._detect(video_path, False)
        except PlanMismatch:
            fps, sig, positions, frames = self.signals(video_path)
            return detect_sparse(sig, positions, frames, fps, self.config)
        except VideoError as exc:
            raise ShotError(str(exc)) from None

    def _detect(self, video_path: str | Path, skip_nonref: bool) -> ShotDetection:
        from curation.shots.window import detect_streaming

        plan = plan_sparse(video_path) if skip_nonref else None
        if skip_nonref and plan is None:
            fps, sig, positions, frames = self._signals(video_path, True)
            return detect_sparse(sig, positions, frames, fps, self.config)
        with open_small(video_path, DECODE_W, DECODE_H, self.config.batch_size, skip_nonref) as video:
            det = detect_streaming(video, self.config, plan)
        if det.frames == 0:
            raise ShotError(f"{video_path}: no frames decoded")
        return det
