"""Camera-motion compensation for motion segmentation: register frames, rebuild the clip's background.

Consecutive frames are registered with a similarity transform (rotation, uniform scale,
translation: what pans and zooms do) fitted by RANSAC to Lucas-Kanade tracks of corner features,
so independently moving objects are outliers. Chaining the transforms puts every frame in the
coordinates of the first; the background of frame t is then made of frames spread over the whole
clip, warped into frame t: per pixel the densest group of their values or their median, which an
object moving across the clip does not survive.
"""

from __future__ import annotations

import cv2
import numpy as np

from filters.base import evenly_spaced

IDENTITY = np.eye(3, dtype=np.float64)


def to_grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


GRID = 6  # cells per side over which features are picked and the spread of a fit's inliers counted


def spread_corners(grey: np.ndarray, per_cell: int = 20) -> np.ndarray | None:
    """Corner features picked cell by cell over a GRID x GRID grid, float32 (N, 1, 2), or None if there are none.

    goodFeaturesToTrack's quality level is relative to the strongest corner, so a richly textured object
    on a smooth background (a face on a retina) takes nearly every feature and RANSAC then fits the
    object's motion; picking per cell keeps the background's share of features near its share of area.
    """
    h, w = grey.shape
    found = []
    for gy in range(GRID):
        for gx in range(GRID):
            y0, y1, x0, x1 = gy * h // GRID, (gy + 1) * h // GRID, gx * w // GRID, (gx + 1) * w // GRID
            pts = cv2.goodFeaturesToTrack(np.ascontiguousarray(grey[y0:y1, x0:x1]), maxCorners=per_cell,
                                          qualityLevel=0.01, minDistance=5)
            if pts is not None:
                found.append(pts + np.array([x0, y0], np.float32))
    return np.concatenate(found) if found else None


def cells_covered(pts: np.ndarray, height: int, width: int) -> int:
    """How many GRID x GRID cells of the frame hold at least one of the points (N, 2)."""
    gx = np.clip((pts[:, 0] * GRID / width).astype(int), 0, GRID - 1)
    gy = np.clip((pts[:, 1] * GRID / height).astype(int), 0, GRID - 1)
    return len(set((gy * GRID + gx).tolist()))


def register_pair(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """3x3 similarity mapping pixel coordinates of grey frame `prev` to those of `cur` (identity if unsure).

    Two motions are fitted in turn (RANSAC on all feature tracks, then on the first fit's outliers) and
    the one whose inliers spread over more of the frame is the camera's: on a smooth background a
    textured object can still hold most features, but only over its own few cells.
    """
    pts = spread_corners(prev)
    if pts is None or len(pts) < 8:
        return IDENTITY.copy()
    nxt, status, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]  # cv2's stubs reject None for nextPts
        prev, cur, pts, None, winSize=(21, 21), maxLevel=3)
    ok = status.reshape(-1) == 1
    src, dst = pts[ok].reshape(-1, 2), nxt[ok].reshape(-1, 2)
    best, best_cells = IDENTITY.copy(), 0
    for _ in range(2):
        if len(src) < 8:
            break
        m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0,
                                                 maxIters=2000, confidence=0.995)
        if m is None or inliers is None or inliers.sum() < 6:
            break
        inliers = inliers.reshape(-1).astype(bool)
        cells = cells_covered(src[inliers], *prev.shape)
        if cells > best_cells:
            best, best_cells = np.vstack([m, [0.0, 0.0, 1.0]]), cells
        src, dst = src[~inliers], dst[~inliers]
    return best


def residual_flow(prev: np.ndarray, cur: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Per pixel of grey `prev`, how far it moves to `cur` beyond the camera's motion (pixels, (H, W)).

    Dense Farneback flow minus the flow the 3x3 camera transform `camera` (prev -> cur) predicts.
    """
    h, w = prev.shape
    flow = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]  # cv2's stubs reject None for flow
        prev, cur, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)  # (H, W, 2)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    m = camera.astype(np.float32)
    cam_x = m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - xs
    cam_y = m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - ys
    return np.hypot(flow[..., 0] - cam_x, flow[..., 1] - cam_y)


def chain_to_first(pair_transforms: list[np.ndarray]) -> list[np.ndarray]:
    """Per frame, the 3x3 transform from its coordinates to frame 0's, given frame i -> i+1 transforms."""
    to_first = [IDENTITY.copy()]
    for m in pair_transforms:
        to_first.append(to_first[-1] @ np.linalg.inv(m))
    return to_first


def background_samples(n_frames: int, count: int) -> list[int]:
    """Frames spread over the whole clip whose median is the background (all of them when few)."""
    return evenly_spaced(n_frames, count)


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (lower middle for even counts); NaN where all are NaN.

    np.nanmedian does the same through masked arrays, many times slower on (S, H, W, 3) stacks.
    """
    ordered = np.sort(stack, axis=0)  # NaNs sort last
    valid = (~np.isnan(stack)).sum(axis=0)
    middle = np.maximum(valid - 1, 0) // 2
    return np.take_along_axis(ordered, middle[None], axis=0)[0]


def channel_max(img: np.ndarray) -> np.ndarray:
    """Max over the last axis of an (H, W, 3) array, channel by channel (numpy's axis=2 reduction is slow)."""
    return np.maximum(np.maximum(img[..., 0], img[..., 1]), img[..., 2])


def densest(stack: np.ndarray, tolerance: float) -> np.ndarray:
    """Per pixel, the mean of the largest group of samples within `tolerance` grey levels of one of them.

    stack: (S, H, W, 3) float32 with NaN where a sample does not reach. The background is what stays put:
    a moving object's texture slides past a pixel, so its values scatter while the background's repeat,
    which keeps an object that covers a place for most of the clip out of the background, where the
    median takes it in. NaN where no sample reaches.
    """
    grey = (stack[..., 0] + stack[..., 1] + stack[..., 2]) / 3.0  # (S, H, W), NaN where not reached
    valid = ~np.isnan(grey)
    grey = np.where(valid, grey, 0.0).astype(np.float32)
    support = np.zeros(grey.shape, np.uint16)  # (S, H, W): samples agreeing with sample i
    for i in range(len(grey)):
        for j in range(len(grey)):
            support[i] += (cv2.absdiff(grey[i], grey[j]) <= tolerance) & valid[j]
        support[i] *= valid[i]
    best = np.take_along_axis(grey, support.argmax(axis=0)[None], axis=0)[0]  # (H, W)
    total = np.zeros(stack.shape[1:], np.float32)  # (H, W, 3)
    count = np.zeros(grey.shape[1:], np.float32)  # (H, W)
    for j in range(len(grey)):
        near = (cv2.absdiff(grey[j], best) <= tolerance) & valid[j]
        total += np.where(near[..., None], stack[j], 0.0)
        count += near
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[..., None] > 0, total / count[..., None], np.nan).astype(np.float32)


def _scale(m: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))


def to_canvas(to_first: list[np.ndarray], height: int, width: int, max_area: float = 4.0
              ) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Per frame, the 3x3 transform into a mosaic canvas holding every frame, and the canvas (H, W).

    The canvas keeps the resolution of the most zoomed-in frame (so no frame is blurred by it), unless
    that makes it over `max_area` frames' worth of pixels.
    """
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float64).T  # (3, 4)
    pts = np.concatenate([(m @ corners)[:2] for m in to_first], axis=1)  # (2, 4T) in frame-0 pixels
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    s = 1.0 / min(_scale(m) for m in to_first)
    area = (hi - lo).prod() * s * s
    if area > max_area * height * width:
        s *= float(np.sqrt(max_area * height * width / area))
    size = (int(np.ceil((hi[1] - lo[1]) * s)) + 1, int(np.ceil((hi[0] - lo[0]) * s)) + 1)
    c = np.array([[s, 0.0, -s * lo[0]], [0.0, s, -s * lo[1]], [0.0, 0.0, 1.0]])
    return [c @ m for m in to_first], size


def background_mosaic(frames: np.ndarray, into: list[np.ndarray], size: tuple[int, int], samples: list[int],
                      moving: list[np.ndarray] | None = None, tolerance: float = 0.0) -> np.ndarray:
    """Median of the sample frames warped onto the canvas, float32 (Hc, Wc, 3), NaN where none reaches.

    `moving` (bool (H, W) per frame) marks pixels already known to be moving objects: they are left
    out, so an object that sits on a place for most of the clip still leaves the background there.
    """
    hc, wc = size
    stack = np.empty((len(samples), hc, wc, 3), np.float32)  # (S, Hc, Wc, 3)
    for k, j in enumerate(samples):
        src = frames[j].astype(np.float32)
        if moving is not None:
            src[moving[j]] = np.nan
        stack[k] = cv2.warpAffine(src, into[j][:2], (wc, hc), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(np.nan, np.nan, np.nan))
    return densest(stack, tolerance) if tolerance > 0 else nan_median(stack)


def background_at(mosaic: np.ndarray, frame: np.ndarray, into: np.ndarray) -> np.ndarray:
    """The mosaic seen from one frame (float32 (H, W, 3)); where it has no value, the frame itself."""
    h, w = frame.shape[:2]
    bg = cv2.warpAffine(mosaic, into[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(np.nan, np.nan, np.nan))
    holes = np.isnan(bg)
    bg[holes] = frame.astype(np.float32)[holes]
    return bg
