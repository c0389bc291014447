"""Weights-free masks of moving objects: camera-compensated background subtraction, object following, GrabCut.

So that real object masks exist where no detector weights can be had; the rows name this proposer
and its version, no model. Per clip:
1. register consecutive frames (camera.py) and rebuild the background on a mosaic of the whole
   clip from frames spread over it: per place the densest group of values (what stays put), or
   their median;
2. foreground = colour distance to that background, seen from each frame, above a threshold
   (optionally a weaker one where dense flow beyond the camera's agrees), cleaned by morphology;
3. the foreground split into objects, each followed by its own motion (propagate.py), short
   tracks dropped, each mask optionally refined by GrabCut;
4. tracks that are not one coherent object dropped: the pair stage's object gates (filters.pair_gates:
   size, consecutive-frame IoU, one connected piece, no breathing, outline on image or motion edges),
   run here on the proposer's own frames, so a fragment or a background blob never becomes an object row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from curation.models.camera import (
    background_at,
    background_mosaic,
    background_samples,
    chain_to_first,
    channel_max,
    register_pair,
    residual_flow,
    to_canvas,
    to_grey,
)
from curation.models.propagate import fill_holes, follow_both_ways
from curation.models.tracks import Track, mask_box
from filters.pair_gates import PairGateConfig, object_gates

NAME = "motion-proposer"
VERSION = "4"  # 4: incoherent tracks dropped by the object gates, tracks seen on half the clip; 3: GrabCut reseeded
CLASS_NAME = "moving-object"
GRABCUT_SEED = 0  # OpenCV RNG seed before every GrabCut, so a mask does not depend on earlier clips (resume)
TRACK_GATES = PairGateConfig(min_mask_area=0.003, min_mask_iou=0.3)
"""The object gates' thresholds for the proposer's tracks: the pair stage's, except two that see fewer frames
here (the proposer's evenly spread sample, where a moving object overlaps itself less from one to the next,
and a track's unseen frames count as empty): tuned on corpus seeds 0-2 (benchmarks/pair_yield.py)."""


@dataclass(frozen=True)
class ProposerConfig:
    """Knobs of the proposer; defaults measured on the synthetic corpus (benchmarks/mask_proposer.py)."""

    background_samples: int = 20  # frames spread over the clip the background is made of
    mode_tolerance: float = 6.0  # background: densest group of samples within this many grey levels; 0: their median
    passes: int = 1  # background rebuilds; each later one leaves out the previous foreground
    blur: float = 0.7  # Gaussian sigma (pixels) on frame and background before their distance; 0: none
    threshold: float = 13.0  # colour distance (0-255, max over RGB) to the background that counts as moving
    weak_threshold: float = 13.0  # below `threshold`: a weaker distance that counts where dense flow says moving
    flow_threshold: float = 1.0  # pixels per frame of motion beyond the camera's
    min_area: float = 0.001  # smallest region kept, as a fraction of the frame
    grabcut: bool = True
    grabcut_iters: int = 3
    min_track_frames: int = 3  # and at least `min_track_share` of the clip
    min_track_share: float = 0.5  # share of the clip's frames a track must be seen on (fragments flicker in and out)
    reach: float = 0.02  # how far (fraction of the frame diagonal) an object may take pixels beyond its predicted mask
    max_gap: int = 5  # frames an object may go unseen and still be followed
    gates: PairGateConfig | None = TRACK_GATES  # a track failing any object gate is dropped; None: keep all

    def __post_init__(self) -> None:
        if isinstance(self.gates, Mapping):  # from a job config: thresholds by name over TRACK_GATES, unknown refused
            object.__setattr__(self, "gates", PairGateConfig.from_dict({**asdict(TRACK_GATES), **self.gates}))
        counts = ("background_samples", "passes", "grabcut_iters", "min_track_frames", "max_gap")
        bad = [n for n in counts if getattr(self, n) < 1]
        distances = ("mode_tolerance", "blur", "threshold", "weak_threshold", "flow_threshold", "reach")
        bad += [n for n in distances if getattr(self, n) < 0]
        bad += [] if 0 < self.min_area < 1 else ["min_area"]
        bad += [] if 0 <= self.min_track_share <= 1 else ["min_track_share"]
        if bad:
            raise ValueError(f"ProposerConfig: out of range: {', '.join(bad)} "
                             "(counts >= 1, distances >= 0, 0 < min_area < 1, 0 <= min_track_share <= 1)")


def colour_distance(frame: np.ndarray, background: np.ndarray, blur: float = 0.0) -> np.ndarray:
    """Per-pixel max over RGB of |frame - background|, lightly blurred, float32 (H, W).

    `blur` > 0 smooths both first (Gaussian sigma in pixels): fine detail seen at another zoom is
    resampled and aliased differently in the frame and in the background, and would read as motion.
    """
    f: np.ndarray = frame.astype(np.float32)
    if blur > 0:
        f, background = cv2.GaussianBlur(f, (0, 0), blur), cv2.GaussianBlur(background, (0, 0), blur)
    diff = channel_max(np.abs(f - background))
    return cv2.GaussianBlur(diff, (5, 5), 0)


def clean(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Open then close, fill holes, drop regions under `min_pixels`: bool (H, W)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, k)
    m = fill_holes(cv2.morphologyEx(m, cv2.MORPH_CLOSE, k, iterations=2))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False
    return keep[labels]


def grabcut_refine(frame: np.ndarray, region: np.ndarray, iters: int) -> np.ndarray:
    """GrabCut in a box around `region`: its eroded core is sure foreground, far pixels sure background."""
    h, w = region.shape
    ys, xs = np.nonzero(region)
    pad = max(8, int(0.25 * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)
    sub = region[y0:y1, x0:x1].astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    near = cv2.dilate(sub, k, iterations=2)
    core = cv2.erode(sub, k)
    gc = np.full(sub.shape, cv2.GC_BGD, np.uint8)
    gc[near > 0] = cv2.GC_PR_BGD
    gc[sub > 0] = cv2.GC_PR_FGD
    gc[core > 0] = cv2.GC_FGD
    if not (gc == cv2.GC_FGD).any() or (gc == cv2.GC_BGD).sum() < 16:
        return region
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    crop = np.ascontiguousarray(cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2BGR))
    cv2.setRNGSeed(GRABCUT_SEED)  # GrabCut's k-means draws from OpenCV's global RNG
    try:
        cv2.grabCut(  # type: ignore[call-overload]  # cv2's stubs reject None for rect (unused with GC_INIT_WITH_MASK)
            crop, gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a degenerate colour model (e.g. a flat crop): keep the motion mask
        return region
    out = np.zeros_like(region)
    out[y0:y1, x0:x1] = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    return out


def foreground(frames: np.ndarray, grey: list[np.ndarray], config: ProposerConfig) -> list[np.ndarray]:
    """Per frame, a bool (H, W) mask of pixels that move against the compensated camera."""
    pairs = [register_pair(grey[i], grey[i + 1]) for i in range(len(grey) - 1)]
    into, size = to_canvas(chain_to_first(pairs), *frames.shape[1:3])
    samples = background_samples(len(frames), config.background_samples)
    if config.weak_threshold < config.threshold:  # dense flow only when it can add pixels
        flow_moving = [residual_flow(grey[t], grey[t + 1], pairs[t]) > config.flow_threshold for t in range(len(pairs))]
        flow_moving.append(flow_moving[-1])  # the last frame moves as the one before it
    moving: list[np.ndarray] | None = None
    for _ in range(config.passes):
        mosaic = background_mosaic(frames, into, size, samples, moving, config.mode_tolerance)
        dist = [colour_distance(frames[t], background_at(mosaic, frames[t], into[t]), config.blur)
                for t in range(len(frames))]
        masks = [d > config.threshold for d in dist]
        if config.weak_threshold < config.threshold:
            masks = [m | ((d > config.weak_threshold) & f) for m, d, f in zip(masks, dist, flow_moving)]
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        moving = [cv2.dilate(m.astype(np.uint8), k).astype(bool) for m in masks]
    return masks


def coherent(frames: np.ndarray, track: Track, gates: PairGateConfig) -> bool:
    """Whether `track` passes every object gate on the clip's `frames` (the masks as the pair stage will see
    them, empty where the track is unseen): one implementation of "is this one object" for both stages."""
    return all(g.passed for g in object_gates(frames, track.dense(len(frames)), gates).values())


def propose(frames: np.ndarray, config: ProposerConfig = ProposerConfig()) -> list[Track]:
    """Tracks of moving objects in RGB frames (T, H, W, 3) of one shot; [] for fewer than 2 frames."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"propose: expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(frames) < 2:
        return []  # motion needs two frames; a one-frame clip has no moving objects to show
    h, w = frames.shape[1:3]
    min_pixels = max(16, int(config.min_area * h * w))
    grey = [to_grey(f) for f in frames]
    fg = [clean(m, min_pixels) for m in foreground(frames, grey, config)]
    reach = max(3, int(config.reach * np.hypot(h, w)))
    followed = follow_both_ways(frames, grey, fg, min_pixels, reach, config.max_gap)
    min_frames = max(config.min_track_frames, math.ceil(config.min_track_share * len(frames)))
    tracks = []
    for f_idx, masks in followed:
        if len(f_idx) < min_frames:
            continue
        if config.grabcut:
            masks = [grabcut_refine(frames[t], m, config.grabcut_iters) for t, m in zip(f_idx, masks)]
        track = Track(0, list(f_idx), list(masks))
        if config.gates is None or coherent(frames, track, config.gates):
            tracks.append(track)
    tracks.sort(key=lambda tr: (tr.frames[0], mask_box(tr.masks[0])))
    for i, tr in enumerate(tracks, start=1):
        tr.track_id = i
    return tracks
