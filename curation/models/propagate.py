"""Split per-frame motion masks into objects by following each object's own motion through the clip.

Linking connected regions by overlap breaks whenever two objects touch (one region, one track) and
again when they part (a new, short track). Here each object keeps its extent and its own
frame-to-frame motion (features inside it, whole-patch matching or its last motion, whichever
matches best); its extent warped by that motion predicts where it is next, and each foreground pixel
goes to the object whose prediction reaches it and whose warped colours match it best, so touching
and overlapping objects stay apart and the one in front keeps the shared pixels, while the one behind
keeps its hidden part and is found again when it reappears. Foreground no prediction reaches starts
a new object. Tracking starts at the frame where the foreground falls into the most separate regions
and runs from there to both ends of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from curation.models.camera import IDENTITY, channel_max

OUTSIDE_COST = 40.0  # colour error (0-255) a pixel outside an object's predicted mask (but within reach) is charged


@dataclass
class Followed:
    """One object being followed: the frames it was seen on and its masks there, plus its tracking state."""

    frames: list[int] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    mask: np.ndarray | None = None  # whole extent: what is seen plus what another object now hides
    seen: np.ndarray | None = None  # what was seen on the last frame stepped over (None: not seen there)
    motion: np.ndarray = field(default_factory=lambda: IDENTITY.copy())  # last frame-to-frame 3x3 motion


def feature_motion(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """3x3 similarity moving the pixels of `mask` from grey `prev` to grey `cur`; None with too few features."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) * 255
    pts = cv2.goodFeaturesToTrack(prev, maxCorners=200, qualityLevel=0.01, minDistance=3, mask=inner)
    if pts is None or len(pts) < 6:
        return None
    nxt, status, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]  # cv2's stubs reject None for nextPts
        prev, cur, pts, None, winSize=(15, 15), maxLevel=3)
    ok = status.reshape(-1) == 1
    if ok.sum() < 6:
        return None
    m, inliers = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=1.5)
    if m is None or inliers is None or inliers.sum() < 5:
        return None
    return np.vstack([m, [0.0, 0.0, 1.0]])


def template_motion(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, search: int) -> np.ndarray | None:
    """3x3 translation that best matches the masked patch of grey `prev` in `cur`, within `search` pixels.

    Lucas-Kanade windows on a small object straddle its edge and see the background's motion too;
    matching the whole patch (masked, sum of squared differences) does not, but knows no scale.
    """
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = cur.shape
    ry0, ry1, rx0, rx1 = max(0, y0 - search), min(h, y1 + search), max(0, x0 - search), min(w, x1 + search)
    patch = np.ascontiguousarray(prev[y0:y1, x0:x1])
    weight = np.ascontiguousarray(mask[y0:y1, x0:x1]).astype(np.uint8)
    scores = cv2.matchTemplate(np.ascontiguousarray(cur[ry0:ry1, rx0:rx1]), patch, cv2.TM_SQDIFF, mask=weight)
    _, _, (bx, by), _ = cv2.minMaxLoc(scores)
    m = IDENTITY.copy()
    m[0, 2], m[1, 2] = rx0 + bx - x0, ry0 + by - y0
    return m


def match_error(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, motion: np.ndarray) -> float:
    """Mean |cur(motion(x)) - prev(x)| over the pixels x of `mask` (grey levels)."""
    h, w = prev.shape
    back = cv2.warpAffine(cur, motion[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return float(cv2.absdiff(back, prev)[mask].mean())


def object_motion(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The object's frame-to-frame motion: of features, whole-patch matching or its `last` motion, whichever
    matches the grey frames best over `mask`."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return last
    size = max(np.ptp(ys), np.ptp(xs)) + 1
    search = int(max(8, 0.3 * size) + np.abs(last[:2, 2]).max())
    found = [m for m in (feature_motion(prev, cur, mask), template_motion(prev, cur, mask, search)) if m is not None]
    return min(found + [last], key=lambda m: match_error(prev, cur, mask, m))


def warp_mask(mask: np.ndarray, motion: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), motion[:2], (w, h), flags=cv2.INTER_NEAREST).astype(bool)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill what the outer contours enclose: a flat object's interior has no colour change to detect."""
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(m, contours, -1, 1, thickness=cv2.FILLED)
    return m.astype(bool)


def regions(mask: np.ndarray, min_pixels: int) -> list[np.ndarray]:
    """8-connected regions of a bool mask with at least `min_pixels` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_pixels]


def assign(fg: np.ndarray, predicted: list[np.ndarray], errors: list[np.ndarray], reach: int) -> np.ndarray:
    """Label image int32 (H, W): k + 1 where foreground pixel goes to object k, 0 unassigned.

    Object k may take pixels within `reach` of its predicted mask; among those that can, the lowest
    colour error against its warped previous frame wins, pixels outside the prediction paying extra.
    """
    labels = np.zeros(fg.shape, np.int32)
    if not predicted:
        return labels
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    cost = np.full((len(predicted),) + fg.shape, np.inf, np.float32)  # (K, H, W)
    for i, (p, e) in enumerate(zip(predicted, errors)):
        near = cv2.dilate(p.astype(np.uint8), k).astype(bool)
        cost[i][near] = e[near] + OUTSIDE_COST * ~p[near]
    best = cost.argmin(axis=0)
    reached = np.isfinite(cost.min(axis=0)) & fg
    labels[reached] = best[reached] + 1
    return labels


def step(prev_rgb: np.ndarray, cur_rgb: np.ndarray, prev_grey: np.ndarray, cur_grey: np.ndarray, fg: np.ndarray,
         live: list[Followed], t: int, min_pixels: int, reach: int) -> list[Followed]:
    """Move every followed object from the previous frame to frame `t` (in place); return the new ones.

    An object with under half of `min_pixels` on this frame is not recorded here and coasts on its
    prediction; foreground regions of at least `min_pixels` that no object takes start new ones.
    """
    h, w = fg.shape
    predicted, errors = [], []
    for obj in live:
        assert obj.mask is not None, "a followed object starts with its mask (new_object)"
        obj.motion = object_motion(prev_grey, cur_grey, obj.mask if obj.seen is None else obj.seen, obj.motion)
        predicted.append(warp_mask(obj.mask, obj.motion))
        warped = cv2.warpAffine(prev_rgb, obj.motion[:2], (w, h), flags=cv2.INTER_LINEAR)
        diff = channel_max(cv2.absdiff(cur_rgb, warped)).astype(np.float32)
        errors.append(cv2.blur(diff, (5, 5)))
    labels = assign(fg, predicted, errors, reach)
    for i, (obj, pred) in enumerate(zip(live, predicted)):
        mine = fill_holes(labels == i + 1)
        if mine.sum() >= min_pixels // 2:
            obj.frames.append(t)
            obj.masks.append(mine)
            obj.seen = mine
            obj.mask = mine | (pred & (labels > 0) & (labels != i + 1))  # keep the part others hide
        else:
            obj.seen, obj.mask = None, pred  # not seen here: coast on the prediction
    return [start(t, r) for r in regions(fg & (labels == 0), min_pixels)]


def start(t: int, region: np.ndarray) -> Followed:
    """A new object seen first on frame `t` as `region`, not moving yet."""
    filled = fill_holes(region)
    return Followed([t], [filled], filled, filled)


def follow(frames: np.ndarray, grey: list[np.ndarray], fg: list[np.ndarray], order: list[int],
           min_pixels: int, reach: int, max_gap: int) -> list[Followed]:
    """Follow objects over frames in `order`, starting from the foreground regions of its first frame.

    Objects not seen for `max_gap` frames stop being followed. The objects started on the first frame
    come first in the result, in region order, so two passes from the same frame can be joined.
    """
    first = order[0]
    started = [start(first, r) for r in regions(fg[first], min_pixels)]
    live = list(started)
    for a, b in zip(order, order[1:]):
        new = step(frames[a], frames[b], grey[a], grey[b], fg[b], live, b, min_pixels, reach)
        started += new
        live = [obj for obj in live if abs(b - obj.frames[-1]) < max_gap] + new
    return started


def seed_frame(fg: list[np.ndarray], min_pixels: int) -> int:
    """The frame whose foreground falls into the most separate regions (nearest the middle on ties)."""
    counts = [len(regions(m, min_pixels)) for m in fg]
    mid = (len(fg) - 1) / 2
    return max(range(len(fg)), key=lambda t: (counts[t], -abs(t - mid)))


def follow_both_ways(frames: np.ndarray, grey: list[np.ndarray], fg: list[np.ndarray], min_pixels: int,
                     reach: int, max_gap: int) -> list[tuple[list[int], list[np.ndarray]]]:
    """(frames, masks) per object, followed from the seed frame to the clip's end and back to its start."""
    seed = seed_frame(fg, min_pixels)
    n_seeds = len(regions(fg[seed], min_pixels))
    fwd = follow(frames, grey, fg, list(range(seed, len(fg))), min_pixels, reach, max_gap)
    bwd = follow(frames, grey, fg, list(range(seed, -1, -1)), min_pixels, reach, max_gap)
    out = []
    for i in range(n_seeds):  # the seed frame's objects: join the backward half (reversed) to the forward one
        out.append((bwd[i].frames[:0:-1] + fwd[i].frames, bwd[i].masks[:0:-1] + fwd[i].masks))
    for obj in fwd[n_seeds:]:
        out.append((obj.frames, obj.masks))
    for obj in bwd[n_seeds:]:
        out.append((obj.frames[::-1], obj.masks[::-1]))
    return out

