"""Masks on every frame from masks on keyframes: SAM segments every `interval`-th frame, the frames
between get those masks carried to them by the clip's motion.

SAM's image encoder is most of the objects stage's GPU time (docs/PERFORMANCE.md), and a mask moves
little from one frame to the next. Each frame between two keyframes gets the mask of the keyframe
before it carried forward and the one after it carried backward, step by step over consecutive
frames; the two are blended by how near each keyframe is, so neither carry runs more than `interval`
steps and errors do not pile up past a keyframe. Before the first and after the last keyframe only
one side exists. Two ways to carry: `flow`, dense optical flow (OpenCV's DIS) that moves every pixel
of the mask on its own (objects that turn, scale or bend), and `motion`, the motion proposer's
per-object similarity motion (features, patch matching or its last motion; curation/models/propagate.py),
one rigid move per object. benchmarks/mask_carry.py chose the method and the interval.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.camera import IDENTITY
from curation.models.propagate import object_motion

VERSION = "1"  # of the carrying: joins the stage version of every row whose masks it carried
CarryMethod = Literal["flow", "motion"]
NEIGHBOURHOOD_MARGIN = 32  # pixels past an object's reach that its motion is estimated on (LK windows, edges)
MOTION_SIZE = 64  # an object's motion is estimated at a power-of-two scale where it spans MOTION_SIZE-2x that


class KeyframeConfig(BaseModel):
    """Which frames SAM sees (`interval` 1: all of them) and how masks reach the frames between."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Defaults from benchmarks/mask_carry.py (docs/PERFORMANCE.md, "Masks carried from keyframes"): the
    # largest interval whose mean IoU on the tuning seeds stays 0.05 above the 0.85 bar, by the
    # better carrier there (motion; flow is 0.10 lower on the corpus's rigid objects at the same interval).
    interval: int = Field(default=8, ge=1)  # SAM on every interval-th frame
    carry: CarryMethod = "motion"


def keyframes(n: int, interval: int) -> list[int]:
    """Every `interval`-th of `n` frames, centred so the frames before the first and after the last split
    the remainder (one-sided carrying is the weakest)."""
    if n <= 0:
        return []
    return list(range(((n - 1) % interval) // 2, n, interval))


def grey(frames: np.ndarray) -> list[np.ndarray]:
    """Grey uint8 frames from RGB (T, H, W, 3), as both carriers read them."""
    return [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]


class Carrier:
    """Carries one object's masks from some frames of a clip to others.

    Optical flow between neighbouring frames is computed once per clip and shared by every object.
    """

    def __init__(self, frames: np.ndarray, method: CarryMethod = "flow") -> None:
        self.grey = grey(frames)
        self.method = method
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self._dis: cv2.DISOpticalFlow | None = None
        h, w = self.grey[0].shape if self.grey else (0, 0)
        self._xs, self._ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def _flow(self, dst: int, src: int) -> np.ndarray:
        """(H, W, 2) flow such that frame dst at x looks like frame src at x + flow(x)."""
        if (dst, src) not in self._flows:
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            self._flows[(dst, src)] = self._dis.calc(  # type: ignore[call-overload]  # stubs reject None for flow
                self.grey[dst], self.grey[src], None)
        return self._flows[(dst, src)]

    def _step(self, soft: np.ndarray, src: int, dst: int, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The soft mask (float32 0-1) moved from frame src to its neighbour dst, and the motion used."""
        if self.method == "flow":
            flow = self._flow(dst, src)
            moved = cv2.remap(soft, self._xs + flow[..., 0], self._ys + flow[..., 1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
            return moved, last
        hard = soft >= 0.5
        motion = self._object_motion(src, dst, hard, last) if hard.any() else last
        h, w = soft.shape
        return cv2.warpAffine(soft, motion[:2], (w, h), flags=cv2.INTER_LINEAR), motion

    def _object_motion(self, src: int, dst: int, hard: np.ndarray, last: np.ndarray) -> np.ndarray:
        """`object_motion` of the mask from frame src to dst, worked out on the object's neighbourhood only
        (its box widened by the farthest it can have moved, plus room for the feature windows), scaled down
        by a power of two until the object spans at most 2 * MOTION_SIZE pixels, and returned in
        whole-frame coordinates. Corner detection and optical-flow pyramids over whole frames cost 15 ms a
        step at 640x360 whatever the object's size, and whole-patch matching grows with the fourth power
        of its size (patch area times search area): 24 ms a step on the GPU benchmark's large masks."""
        ys, xs = np.nonzero(hard)
        size = max(np.ptp(ys), np.ptp(xs)) + 1
        reach = int(max(8, 0.3 * size) + np.abs(last[:2, 2]).max()) + NEIGHBOURHOOD_MARGIN
        h, w = hard.shape
        y0, x0 = max(0, int(ys.min()) - reach), max(0, int(xs.min()) - reach)
        y1, x1 = min(h, int(ys.max()) + 1 + reach), min(w, int(xs.max()) + 1 + reach)
        scale = 1.0 / 2 ** max(0, int(np.log2(size / MOTION_SIZE)))
        to_small = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale], [0, 0, 1]])  # (3, 3) frame -> crop
        from_small = np.linalg.inv(to_small)
        prev, cur, mask = self.grey[src][y0:y1, x0:x1], self.grey[dst][y0:y1, x0:x1], hard[y0:y1, x0:x1]
        if scale < 1:
            size_small = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            prev, cur = (cv2.resize(g, size_small, interpolation=cv2.INTER_AREA) for g in (prev, cur))
            mask = cv2.resize(mask.astype(np.uint8), size_small, interpolation=cv2.INTER_NEAREST).astype(bool)
        motion = object_motion(prev, cur, mask, to_small @ last @ from_small)
        return from_small @ motion @ to_small

    def _walk(self, mask: np.ndarray, start: int, stop: int) -> dict[int, np.ndarray]:
        """Soft masks on the frames after `start` up to and including `stop` (either direction)."""
        out: dict[int, np.ndarray] = {}
        soft, motion = mask.astype(np.float32), IDENTITY.copy()
        way = 1 if stop > start else -1
        for t in range(start, stop, way):
            soft, motion = self._step(soft, t, t + way, motion)
            out[t + way] = soft
        return out

    def carry(self, known: dict[int, np.ndarray], targets: list[int]) -> dict[int, np.ndarray]:
        """Bool masks on `targets` (frame indices of the clip) from the bool masks on `known` frames.

        A target between two known frames blends both carries by distance; one outside them gets the
        nearest known frame's carry; a target that is itself known keeps its mask.
        """
        if not known:
            raise ValueError("carry needs at least one known mask")
        keys = sorted(known)
        out: dict[int, np.ndarray] = {t: known[t] for t in targets if t in known}
        todo = sorted(t for t in targets if t not in known)
        before = [t for t in todo if t < keys[0]]
        after = [t for t in todo if t > keys[-1]]
        if before:
            back = self._walk(known[keys[0]], keys[0], before[0])
            out.update({t: back[t] >= 0.5 for t in before})
        if after:
            ahead = self._walk(known[keys[-1]], keys[-1], after[-1])
            out.update({t: ahead[t] >= 0.5 for t in after})
        for a, b in zip(keys, keys[1:]):
            inside = [t for t in todo if a < t < b]
            if not inside:
                continue
            fwd = self._walk(known[a], a, inside[-1])
            bwd = self._walk(known[b], b, inside[0])
            for t in inside:
                out[t] = ((b - t) * fwd[t] + (t - a) * bwd[t]) / (b - a) >= 0.5
        return {t: out[t] for t in targets}
