"""Camera motion between the frames of a clip, so pixels of one frame can be carried into another.

Consecutive frames are aligned with OpenCV's ECC (enhanced correlation coefficient) under an affine
model, on downscaled grey frames with the object regions masked out; the per-step transforms are
chained into one path per frame. Affine covers pans and zooms (the corpus's camera moves); ECC is
sub-pixel and needs no features, so it also works on the small frames of tests.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SHORT_SIDE = 180
"""ECC runs at this short side (pixels) at most: the alignment error it adds is far below a pixel."""


def _to_work(frames: np.ndarray, holes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    h, w = frames.shape[1:3]
    scale = min(1.0, WORK_SHORT_SIDE / min(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
                     for f in frames]).astype(np.float32)  # (T, h', w')
    keep = np.stack([cv2.resize((~m).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) for m in holes])
    return grey, keep, size[0] / w


def _ecc_step(template: np.ndarray, moving: np.ndarray, keep: np.ndarray) -> np.ndarray | None:
    """Affine 2x3 mapping template coordinates to `moving` coordinates, or None if ECC fails."""
    warp: np.ndarray = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-5)
    try:
        _, warp = cv2.findTransformECC(template, moving, warp, cv2.MOTION_AFFINE, criteria, keep, 5)
    except cv2.error:  # no convergence (flat frames, too little overlap)
        return None
    return warp


def camera_paths(frames: np.ndarray, holes: np.ndarray) -> tuple[np.ndarray, int]:
    """(paths (T, 3, 3), failed steps): paths[t] maps frame-0 pixel coordinates to frame t's.

    `holes` (T, H, W) bool marks moving objects, left out of the alignment. A step ECC cannot solve
    counts as no motion (identity) and is counted in `failed steps`.
    """
    grey, keep, scale = _to_work(frames, holes)
    s = np.diag([scale, scale, 1.0])
    s_inv = np.diag([1 / scale, 1 / scale, 1.0])
    paths = [np.eye(3)]
    failed = 0
    for t in range(1, len(frames)):
        both = (keep[t - 1] & keep[t]).astype(np.uint8)  # objects of either frame excluded
        warp = _ecc_step(grey[t - 1], grey[t], both)
        step = np.eye(3)
        if warp is None:
            failed += 1
        else:
            step[:2] = warp  # work coords of t-1 -> work coords of t
        paths.append(s_inv @ step @ s @ paths[-1])  # (3, 3), full-resolution coordinates
    return np.stack(paths), failed


def transfer(paths: np.ndarray, src: int, dst: int) -> np.ndarray:
    """3x3 mapping pixel coordinates of frame `src` to those of frame `dst`."""
    return paths[dst] @ np.linalg.inv(paths[src])
