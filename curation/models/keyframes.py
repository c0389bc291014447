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

With `motion`, each step's motion is estimated once, on the way from the keyframe before (on the object's
neighbourhood in a shared pyramid of grey frames), and every frame's mask is one warp: warping is linear,
so blending the keyframe before moved by its motions since with the keyframe after moved back is the
warp of one blend of the two keyframe masks, both in the earlier keyframe's coordinates. No mask is
resampled step after step (docs/PERFORMANCE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.camera import IDENTITY
from curation.models.propagate import object_motion

VERSION = "3"  # of the carrying, in the stage version of rows it carried; 2: the way back reuses the way there
# (motion); 3: one warp a frame from the keyframes, motions estimated on a pyramid (motion)
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

    def moved(self, motion: np.ndarray, on_frame: bool = True) -> Patch:
        """This mask moved by the (3, 3) similarity `motion` (frame coordinates), as a whole-frame
        `warpAffine` would move it, on the window its values land in: cut to the frame, or with
        `on_frame` False reaching up to a frame's size past its edges (a keyframe's mask moved back to an
        earlier frame's coordinates, where part of the object may not be in view yet)."""
        if not self.values.size:
            return Patch.empty(self.frame)
        ph, pw = self.values.shape
        corners = np.array([[-1, -1, 1], [pw, -1, 1], [-1, ph, 1], [pw, ph, 1]], np.float64)
        to_frame = np.array([[1, 0, self.x0], [0, 1, self.y0], [0, 0, 1]], np.float64)  # (3, 3) patch -> frame
        landed = corners @ (motion @ to_frame)[:2].T  # (4, 2) where the window's corners land
        h, w = self.frame
        lo_x, lo_y, hi_x, hi_y = (0, 0, w, h) if on_frame else (-w, -h, 2 * w, 2 * h)
        x0, y0 = max(lo_x, int(np.floor(landed[:, 0].min())) - 1), max(lo_y, int(np.floor(landed[:, 1].min())) - 1)
        x1, y1 = min(hi_x, int(np.ceil(landed[:, 0].max())) + 2), min(hi_y, int(np.ceil(landed[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return Patch.empty(self.frame)
        to_window = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)  # (3, 3) frame -> new window
        affine = (to_window @ motion @ to_frame)[:2]
        return Patch(cv2.warpAffine(self.values, affine, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR), x0, y0,
                     self.frame)


class Blend:
    """(1 - w) * a + w * b of two soft patches of one frame, for any w, on the window covering both."""

    def __init__(self, a: Patch, b: Patch) -> None:
        boxes = [p.box for p in (a, b) if p.values.size]
        self.frame = a.frame
        self.x0, self.y0 = (min(bx[0] for bx in boxes), min(bx[1] for bx in boxes)) if boxes else (0, 0)
        x1, y1 = (max(bx[2] for bx in boxes), max(bx[3] for bx in boxes)) if boxes else (0, 0)
        self._a = self._placed(a, (y1 - self.y0, x1 - self.x0))  # (h, w) float32
        self._diff = self._placed(b, self._a.shape) - self._a  # b - a on the window

    def _placed(self, p: Patch, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, np.float32)
        if p.values.size:
            px0, py0, px1, py1 = p.box
            out[py0 - self.y0 : py1 - self.y0, px0 - self.x0 : px1 - self.x0] = p.values
        return out

    def at(self, weight_b: float) -> Patch:
        if not self._a.size:  # neither has a mask
            return Patch.empty(self.frame)
        return Patch(cv2.scaleAdd(self._diff, float(weight_b), self._a), self.x0, self.y0, self.frame)


class Pyramid:
    """A clip's grey frames at 1/2, 1/4, ... of their size (INTER_AREA), each made when first asked for.

    Level k covers the frame's top-left (H // 2^k * 2^k, W // 2^k * 2^k) pixels, so a crop of level k at
    (x0 / 2^k, y0 / 2^k) is exactly the full-size crop at (x0, y0) shrunk, for x0 and y0 multiples of 2^k.
    """

    def __init__(self, grey: list[np.ndarray]) -> None:
        self.grey = grey
        self._levels: dict[tuple[int, int], np.ndarray] = {}

    def shape(self, k: int) -> tuple[int, int]:
        h, w = self.grey[0].shape
        return h >> k, w >> k

    def frame(self, k: int, t: int) -> np.ndarray:
        if k == 0:
            return self.grey[t]
        if (k, t) not in self._levels:
            h, w = self.shape(k)
            self._levels[(k, t)] = cv2.resize(self.grey[t][: h << k, : w << k], (w, h), interpolation=cv2.INTER_AREA)
        return self._levels[(k, t)]


class Carrier:
    """Carries one object's masks from some frames of a clip to others.

    What every object of the clip can share is made once: the optical flow between neighbouring frames
    (`flow`), the pyramid of grey frames (`motion`).
    """

    def __init__(self, frames: np.ndarray, method: CarryMethod = "flow") -> None:
        self.grey = grey(frames)
        self.method = method
        self.pyramid = Pyramid(self.grey)
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self._dis: cv2.DISOpticalFlow | None = None

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
            out.update(self._one_sided(known[keys[0]], keys[0], before))
        if after:
            out.update(self._one_sided(known[keys[-1]], keys[-1], after))
        for a, b in zip(keys, keys[1:]):
            inside = [t for t in todo if a < t < b]
            if inside:
                out.update(self._between(known[a], a, known[b], b, inside))
        return {t: out[t] for t in targets}

    def _one_sided(self, mask: np.ndarray, key: int, targets: list[int]) -> dict[int, np.ndarray]:
        """Masks on `targets`, all before or all after frame `key`, carried from its mask alone."""
        far = targets[0] if targets[0] < key else targets[-1]
        if self.method == "flow":
            walked = self._flow_walk(mask, key, far)
            return {t: walked[t].hard() for t in targets}
        moves, start = self._motions(mask, key, far), Patch.of(mask)
        return {t: start.moved(moves[t]).hard() for t in targets}

    def _between(self, mask_a: np.ndarray, a: int, mask_b: np.ndarray, b: int, inside: list[int]
                 ) -> dict[int, np.ndarray]:
        """Masks on frames `inside` (a, b): the carries from both keyframes, weighted by nearness."""
        if self.method == "flow":
            fwd, bwd = self._flow_walk(mask_a, a, inside[-1]), self._flow_walk(mask_b, b, inside[0])
            return {t: Blend(fwd[t], bwd[t]).at((t - a) / (b - a)).hard() for t in inside}
        moves = self._motions(mask_a, a, b)  # {t: motion from frame a to t}
        # the mask of b moved back to a's coordinates, so that each frame's blend is one warp from there
        both = Blend(Patch.of(mask_a), Patch.of(mask_b).moved(np.linalg.inv(moves[b]), on_frame=False))
        return {t: both.at((t - a) / (b - a)).moved(moves[t]).hard() for t in inside}

    @cached_property
    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) float32 x and y of every pixel, which the flow is added to: made once a clip."""
        h, w = self.grey[0].shape
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return xs, ys

    def _flow(self, dst: int, src: int) -> np.ndarray:
        """(H, W, 2) flow such that frame dst at x looks like frame src at x + flow(x)."""
        if (dst, src) not in self._flows:
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            self._flows[(dst, src)] = self._dis.calc(  # type: ignore[call-overload]  # stubs reject None for flow
                self.grey[dst], self.grey[src], None)
        return self._flows[(dst, src)]

    def _flow_walk(self, mask: np.ndarray, start: int, stop: int) -> dict[int, Patch]:
        """Soft masks on the frames after `start` up to and including `stop` (either direction), each the
        one before moved pixel by pixel by the optical flow."""
        xs, ys = self._grid
        out: dict[int, Patch] = {}
        soft = Patch.of(mask)
        way = 1 if stop > start else -1
        for t in range(start, stop, way):
            flow = self._flow(t + way, t)
            soft = Patch.of(cv2.remap(soft.full(), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT))
            out[t + way] = soft
        return out

    def _motions(self, mask: np.ndarray, start: int, stop: int) -> dict[int, np.ndarray]:
        """{t: the object's (3, 3) motion from frame `start` to t} for t from start to `stop` (either way), each
        step estimated once on the start mask moved by the motion so far."""
        key = Patch.of(mask)
        hard = (key.values >= 0.5).view(np.uint8)
        moves, last = {start: IDENTITY.copy()}, IDENTITY.copy()
        way = 1 if stop > start else -1
        for t in range(start, stop, way):
            last = self._step_motion(key, hard, moves[t], t, t + way, last)
            moves[t + way] = last @ moves[t]
        return moves

    def _step_motion(self, key: Patch, hard: np.ndarray, moved: np.ndarray, src: int, dst: int, last: np.ndarray
                     ) -> np.ndarray:
        """`object_motion` from frame src to dst of the keyframe mask `key` (`hard`: its pixels >= 0.5, uint8)
        once `moved` (3, 3) to frame src, worked out on the object's neighbourhood only (its box widened by
        the farthest it can have moved, plus room for the feature windows), on the pyramid level where the
        object spans at most 2 * MOTION_SIZE pixels, and returned in whole-frame coordinates. Corner
        detection and optical-flow pyramids over whole frames cost 15 ms a step at 640x360 whatever the
        object's size, and whole-patch matching grows with the fourth power of its size."""
        if not key.values.size:
            return last
        h, w = key.frame
        ph, pw = key.values.shape
        place = moved @ np.array([[1, 0, key.x0], [0, 1, key.y0], [0, 0, 1]], np.float64)  # (3, 3) patch -> frame src
        landed = np.array([[0, 0, 1], [pw, 0, 1], [0, ph, 1], [pw, ph, 1]], np.float64) @ place[:2].T  # (4, 2)
        bx0, by0 = max(0, int(np.floor(landed[:, 0].min()))), max(0, int(np.floor(landed[:, 1].min())))
        bx1, by1 = min(w, int(np.ceil(landed[:, 0].max()))), min(h, int(np.ceil(landed[:, 1].max())))
        if bx1 <= bx0 or by1 <= by0:  # out of view here
            return last
        size = max(by1 - by0, bx1 - bx0)
        k = max(0, int(np.log2(size / MOTION_SIZE)))
        reach = int(max(8, 0.3 * size) + np.abs(last[:2, 2]).max()) + NEIGHBOURHOOD_MARGIN
        lh, lw = self.pyramid.shape(k)
        x0, y0 = max(0, bx0 - reach) >> k, max(0, by0 - reach) >> k  # the neighbourhood, in level-k pixels
        x1, y1 = min(lw, -(-(bx1 + reach) >> k)), min(lh, -(-(by1 + reach) >> k))
        if x1 <= x0 or y1 <= y0:
            return last
        to_small = np.array([[2.0**-k, 0, -x0], [0, 2.0**-k, -y0], [0, 0, 1]])  # (3, 3) frame -> level-k crop
        from_small = np.linalg.inv(to_small)
        mask = cv2.warpAffine(hard, (to_small @ place)[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST) > 0
        prev, cur = (self.pyramid.frame(k, t)[y0:y1, x0:x1] for t in (src, dst))
        motion = object_motion(prev, cur, mask, to_small @ last @ from_small)
        return from_small @ motion @ to_small
