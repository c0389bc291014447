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
one rigid move per object. benchmarks/mask_carry.py chose the method and the interval. With `motion`,
each step's motion is estimated once, on the way from the keyframe before, and the carry back from the
keyframe after undoes it: 36% less CPU for 0.002-0.006 lower mean IoU on the corpus (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.camera import IDENTITY
from curation.models.propagate import object_motion

VERSION = "2"  # of the carrying, in the stage version of rows it carried; 2: the way back reuses the way there (motion)
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


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), ends exclusive, of a bool mask's set pixels; None when it has none."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return None if w == 0 else (x, y, x + w, y + h)


@dataclass(frozen=True)
class Patch:
    """A soft mask (float32, 0-1) that is zero outside a window of its frame: `values` at (x0, y0).

    Carrying works on the window around the object, not the frame: a whole-frame warp and scan per
    frame and object cost more than estimating the object's motion (docs/PERFORMANCE.md).
    """

    values: np.ndarray  # (h, w) float32
    x0: int
    y0: int
    frame: tuple[int, int]  # (H, W) of the whole frame

    @classmethod
    def of(cls, mask: np.ndarray) -> Patch:
        """The patch of a whole-frame mask (bool or soft), cut to its support."""
        box = bounding_box(mask > 0)
        x0, y0, x1, y1 = box or (0, 0, 0, 0)
        return cls(np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.float32), x0, y0, mask.shape[:2])

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.values.shape
        return self.x0, self.y0, self.x0 + w, self.y0 + h

    @classmethod
    def empty(cls, frame: tuple[int, int]) -> Patch:
        """No mask at all on a frame of size `frame` (H, W)."""
        return cls(np.zeros((0, 0), np.float32), 0, 0, frame)

    def hard(self) -> np.ndarray:
        """The whole-frame bool mask (H, W): where the soft mask is >= 0.5."""
        out = np.zeros(self.frame, bool)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.values >= 0.5
        return out

    def full(self) -> np.ndarray:
        """The whole-frame soft mask (H, W)."""
        out = np.zeros(self.frame, np.float32)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.values
        return out

    def moved(self, motion: np.ndarray) -> Patch:
        """This mask moved by the (3, 3) similarity `motion` (frame coordinates), as a whole-frame
        `warpAffine` would move it, on the window its support lands in."""
        support = bounding_box(self.values > 0)
        if support is None:
            return Patch.empty(self.frame)
        sx0, sy0, sx1, sy1 = support
        corners = np.array([[sx0 - 1, sy0 - 1, 1], [sx1, sy0 - 1, 1], [sx0 - 1, sy1, 1], [sx1, sy1, 1]], np.float64)
        to_frame = np.array([[1, 0, self.x0], [0, 1, self.y0], [0, 0, 1]], np.float64)  # (3, 3) patch -> frame
        landed = corners @ (motion @ to_frame)[:2].T  # (4, 2) where the support's corners land
        h, w = self.frame
        x0, y0 = (max(0, int(np.floor(v)) - 1) for v in landed.min(axis=0))
        x1, y1 = min(w, int(np.ceil(landed[:, 0].max())) + 2), min(h, int(np.ceil(landed[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return Patch.empty(self.frame)
        to_window = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)  # (3, 3) frame -> new window
        affine = (to_window @ motion @ to_frame)[:2]
        return Patch(cv2.warpAffine(self.values, affine, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR), x0, y0,
                     self.frame)


def blend(a: Patch, b: Patch, weight_b: float) -> np.ndarray:
    """The bool whole-frame mask where (1 - weight_b) * a + weight_b * b >= 0.5."""
    out = np.zeros(a.frame, bool)
    boxes = [p.box for p in (a, b) if p.values.size]
    if not boxes:
        return out
    x0, y0 = min(bx[0] for bx in boxes), min(bx[1] for bx in boxes)
    x1, y1 = max(bx[2] for bx in boxes), max(bx[3] for bx in boxes)
    acc = np.zeros((y1 - y0, x1 - x0), np.float32)
    for p, weight in ((a, 1.0 - weight_b), (b, weight_b)):
        if p.values.size:
            px0, py0, px1, py1 = p.box
            acc[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] += np.float32(weight) * p.values
    out[y0:y1, x0:x1] = acc >= 0.5
    return out


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

    def _step(self, soft: Patch, src: int, dst: int, last: np.ndarray) -> tuple[Patch, np.ndarray]:
        """The soft mask moved from frame src to its neighbour dst, and the motion used."""
        if self.method == "flow":
            flow = self._flow(dst, src)
            moved = cv2.remap(soft.full(), self._xs + flow[..., 0], self._ys + flow[..., 1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
            return Patch.of(moved), last
        hard = soft.values >= 0.5
        box = bounding_box(hard)
        if box is None:
            return soft.moved(last), last
        motion = self._object_motion(src, dst, soft, hard, box, last)
        return soft.moved(motion), motion

    def _object_motion(self, src: int, dst: int, soft: Patch, hard: np.ndarray, box: tuple[int, int, int, int],
                       last: np.ndarray) -> np.ndarray:
        """`object_motion` of the mask from frame src to dst, worked out on the object's neighbourhood only
        (its box widened by the farthest it can have moved, plus room for the feature windows), scaled down
        by a power of two until the object spans at most 2 * MOTION_SIZE pixels, and returned in
        whole-frame coordinates. Corner detection and optical-flow pyramids over whole frames cost 15 ms a
        step at 640x360 whatever the object's size, and whole-patch matching grows with the fourth power
        of its size (patch area times search area): 24 ms a step on the GPU benchmark's large masks."""
        bx0, by0, bx1, by1 = box  # of `hard`, the patch's pixels >= 0.5, in patch coordinates
        size = max(by1 - by0, bx1 - bx0)
        reach = int(max(8, 0.3 * size) + np.abs(last[:2, 2]).max()) + NEIGHBOURHOOD_MARGIN
        h, w = soft.frame
        y0, x0 = max(0, soft.y0 + by0 - reach), max(0, soft.x0 + bx0 - reach)
        y1, x1 = min(h, soft.y0 + by1 + reach), min(w, soft.x0 + bx1 + reach)
        whole = np.zeros((y1 - y0, x1 - x0), bool)  # the object's hard mask on the neighbourhood
        whole[soft.y0 + by0 - y0 : soft.y0 + by1 - y0, soft.x0 + bx0 - x0 : soft.x0 + bx1 - x0] = hard[by0:by1, bx0:bx1]
        scale = 1.0 / 2 ** max(0, int(np.log2(size / MOTION_SIZE)))
        to_small = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale], [0, 0, 1]])  # (3, 3) frame -> crop
        from_small = np.linalg.inv(to_small)
        prev, cur, mask = self.grey[src][y0:y1, x0:x1], self.grey[dst][y0:y1, x0:x1], whole
        if scale < 1:
            size_small = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            prev, cur = (cv2.resize(g, size_small, interpolation=cv2.INTER_AREA) for g in (prev, cur))
            mask = cv2.resize(mask.astype(np.uint8), size_small, interpolation=cv2.INTER_NEAREST).astype(bool)
        motion = object_motion(prev, cur, mask, to_small @ last @ from_small)
        return from_small @ motion @ to_small

    def _walk(self, mask: np.ndarray, start: int, stop: int, given: dict[int, np.ndarray] | None = None
              ) -> tuple[dict[int, Patch], dict[int, np.ndarray]]:
        """Soft masks on the frames after `start` up to and including `stop` (either direction), and the motion
        of each step ({t: motion from t to its neighbour}); `given` motions are used instead of estimating."""
        out: dict[int, Patch] = {}
        used: dict[int, np.ndarray] = {}
        soft, motion = Patch.of(mask), IDENTITY.copy()
        way = 1 if stop > start else -1
        for t in range(start, stop, way):
            if given is not None and t in given:
                motion = given[t]
                soft = soft.moved(motion)
            else:
                soft, motion = self._step(soft, t, t + way, motion)
            out[t + way], used[t] = soft, motion
        return out, used

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
            back, _ = self._walk(known[keys[0]], keys[0], before[0])
            out.update({t: back[t].hard() for t in before})
        if after:
            ahead, _ = self._walk(known[keys[-1]], keys[-1], after[-1])
            out.update({t: ahead[t].hard() for t in after})
        for a, b in zip(keys, keys[1:]):
            inside = [t for t in todo if a < t < b]
            if not inside:
                continue
            if self.method == "motion":  # one estimate per step: the way back undoes the way there
                fwd, there = self._walk(known[a], a, b)
                undo = {t + 1: np.linalg.inv(m) for t, m in there.items()}
                bwd, _ = self._walk(known[b], b, inside[0], undo)
            else:
                fwd, _ = self._walk(known[a], a, inside[-1])
                bwd, _ = self._walk(known[b], b, inside[0])
            for t in inside:
                out[t] = blend(fwd[t], bwd[t], (t - a) / (b - a))
        return {t: out[t] for t in targets}
