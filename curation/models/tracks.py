"""Object tracks: per-frame masks linked across a clip, their boxes, RLE and temporal mask IoU.

Shared by every mask method (the motion proposer, YOLO + SAM), so each writes the same `objects` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from filters.masks import mask_iou, temporal_iou
from manifests.rle import rle_encode


def mask_box(mask: np.ndarray) -> list[float]:
    """xyxy box of a bool mask in pixels, x2/y2 exclusive (as the corpus truth writes them)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


@dataclass
class Track:
    """One object through a clip: clip-relative frame indices and a bool (H, W) mask per frame."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    class_name: str = "object"
    confidence: float = 1.0
    boxes: list[list[float]] | None = None  # detector boxes; mask boxes when None

    def frame_boxes(self) -> list[list[float]]:
        return self.boxes if self.boxes is not None else [mask_box(m) for m in self.masks]

    def rles(self) -> list[str]:
        return [rle_encode(m) for m in self.masks]

    def dense(self, num_frames: int) -> np.ndarray:
        """(num_frames, H, W) bool: the track's mask on the frames it was seen, empty on the others."""
        out = np.zeros((num_frames, *(self.masks[0].shape if self.masks else (0, 0))), bool)
        for f, m in zip(self.frames, self.masks):
            out[f] = m
        return out

    def stability(self) -> float | None:
        return temporal_iou(self.masks)


def matched_iou(truth: dict[int, dict[int, np.ndarray]], tracks: list[Track]) -> dict[int, float]:
    """Per true object, its mean per-frame mask IoU with the track matched to it (0 on frames it misses).

    `truth` is {object id: {frame: bool mask}}; objects and tracks are matched one to one (Hungarian)
    on the summed IoU, so one track cannot score for two objects.
    """
    ids = sorted(truth)
    if not ids:
        return {}
    by_frame = [dict(zip(tr.frames, tr.masks)) for tr in tracks]
    gain = np.zeros((len(ids), len(tracks)))  # (objects, tracks): summed IoU over the object's frames
    for i, oid in enumerate(ids):
        for j, pred in enumerate(by_frame):
            gain[i, j] = sum(mask_iou(m, pred[f]) for f, m in truth[oid].items() if f in pred)
    rows, cols = linear_sum_assignment(-gain) if tracks else (np.array([], int), np.array([], int))
    out = dict.fromkeys(ids, 0.0)
    for i, j in zip(rows, cols):
        out[ids[i]] = float(gain[i, j] / len(truth[ids[i]]))
    return out
