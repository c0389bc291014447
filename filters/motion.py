"""Temporal signals: how much a clip moves, and whether it is static or a slideshow of stills.

``motion`` (dense optical flow) is the signal thresholds act on; ``frame_diff`` is a cheaper proxy
kept for inspection and benchmarking (no threshold uses it).
"""

from __future__ import annotations

import cv2
import numpy as np

from filters.base import Sampling, Signal, register, to_grey


def flow_magnitude(prev: np.ndarray, nxt: np.ndarray) -> float:
    """Mean Farneback optical-flow magnitude (pixels) between two float32 grey frames."""
    flow = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]  # cv2's stubs reject None for flow
        prev.round().astype(np.uint8), nxt.round().astype(np.uint8), None,
        pyr_scale=0.5, levels=3, winsize=21, iterations=3, poly_n=5, poly_sigma=1.2, flags=0,
    )
    return float(np.hypot(flow[..., 0], flow[..., 1]).mean())


class _PairSignal(Signal):
    """Shared sampling of ``motion`` and ``frame_diff``: 8 consecutive-frame pairs spread over the clip,
    compared in grey at a short side of ``work_short_side`` pixels."""

    version = "1"
    sampling = Sampling(count=8, pairs=True)
    min_frames = 2

    def __init__(self, work_short_side: int = 128) -> None:
        super().__init__()
        self.work_short_side = work_short_side


@register
class Motion(_PairSignal):
    """Mean optical-flow speed in percent of the frame diagonal per frame (0 = still).

    Each consecutive pair is converted to grey at the work size, Farneback flow is computed, and the
    mean magnitude is divided by that frame's diagonal. A pan of s source pixels per frame on a W x H
    source therefore reads about 100 * s / hypot(W, H), whatever the decode size (about 5% low on a
    pan over a photo: flow in flat regions is pulled towards 0).
    """

    name = "motion"

    def _compute(self, frames: np.ndarray, fps: float) -> float:
        grey = to_grey(frames, self.work_short_side)
        diagonal = float(np.hypot(grey.shape[1], grey.shape[2]))
        speeds = [flow_magnitude(grey[i], grey[i + 1]) for i in range(0, len(grey), 2)]
        return 100.0 * float(np.mean(speeds)) / diagonal


@register
class FrameDiff(_PairSignal):
    """Mean absolute grey difference between the frames of each consecutive pair, percent of 255.

    A cheap motion proxy (about 50x cheaper to compute than ``motion``): it rises with motion but also
    with flicker and depends on texture, so it is informational; ``motion`` is what thresholds use.
    """

    name = "frame_diff"

    def _compute(self, frames: np.ndarray, fps: float) -> float:
        grey = to_grey(frames, self.work_short_side)
        return 100.0 * float(np.abs(grey[0::2] - grey[1::2]).mean()) / 255.0


def successive_diffs(frames: np.ndarray, short_side: int = 64) -> np.ndarray:
    """Mean absolute grey difference (0-255) between each sampled frame and the next, at a small size.

    The small size averages away sensor and compression noise, so a still shot reads near 0.
    """
    grey = to_grey(frames, short_side)
    return np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))


class _StillnessSignal(Signal):
    """Shared sampling and parameters of ``static`` and ``slideshow``: evenly spaced frames over the clip.

    A step between successive samples is *still* when its mean grey difference is below
    ``still_threshold`` and a *jump* when above ``jump_threshold`` (both 0-255 grey levels at a short
    side of 64 pixels).
    """

    version = "1"
    sampling = Sampling(count=16)
    min_frames = 2

    def __init__(self, still_threshold: float = 1.5, jump_threshold: float = 12.0) -> None:
        super().__init__()
        self.still_threshold = still_threshold
        self.jump_threshold = jump_threshold


@register
class Static(_StillnessSignal):
    """Fraction (0-1) of steps between successive sampled frames that are still; 1 = a frozen clip."""

    name = "static"

    def _compute(self, frames: np.ndarray, fps: float) -> float:
        return float((successive_diffs(frames) < self.still_threshold).mean())


@register
class Slideshow(_StillnessSignal):
    """Slideshow score (0-1): piecewise-constant content separated by jumps.

    The fraction of still steps when the clip has at least one jump, else 0: a frozen clip is
    ``static`` but not a slideshow, and a moving clip has few still steps.
    """

    name = "slideshow"

    def _compute(self, frames: np.ndarray, fps: float) -> float:
        diffs = successive_diffs(frames)
        if not (diffs > self.jump_threshold).any():
            return 0.0
        return float((diffs < self.still_threshold).mean())
