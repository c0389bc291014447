"""Quality of an object track's masks, from its `objects` row: is it stable, big enough, inside the frame?

Pure functions over the row (RLE decoded here), no models. Edit-pair synthesis wants masks that keep
their shape from frame to frame (temporal IoU), cover enough of the frame to matter and do not sit
on the border (an object half out of view cannot be removed or replaced cleanly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from manifests.rle import rle_decode


@dataclass(frozen=True)
class MaskQuality:
    temporal_iou: float | None  # mean IoU of consecutive masks; None for a one-frame track
    mean_area: float  # mean fraction of the frame the mask covers
    border_fraction: float  # fraction of frames whose mask touches the frame's edge
    frames: int


@dataclass(frozen=True)
class MaskThresholds:
    min_temporal_iou: float = 0.6
    min_area: float = 0.005
    max_area: float = 0.6
    max_border_fraction: float = 0.5
    min_frames: int = 2


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of one size; two empty masks count as 0 (nothing to agree on)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def temporal_iou(masks: list[np.ndarray]) -> float | None:
    """Mean IoU of consecutive masks of a track: 1.0 = a perfectly stable mask; None for one mask."""
    if len(masks) < 2:
        return None
    return float(np.mean([mask_iou(a, b) for a, b in zip(masks, masks[1:])]))


def mask_quality(row: dict[str, Any]) -> MaskQuality:
    """The quality numbers of one `objects` row with inline RLE masks."""
    if not row.get("mask_rle"):
        raise ValueError(f"object {row.get('object_id')}: no inline masks to judge")
    h, w = int(row["mask_height"]), int(row["mask_width"])
    masks = [rle_decode(c, h, w) for c in row["mask_rle"]]
    touches = [bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()) for m in masks]
    return MaskQuality(temporal_iou(masks), float(np.mean([m.mean() for m in masks])), float(np.mean(touches)), len(masks))


def mask_reasons(q: MaskQuality, t: MaskThresholds = MaskThresholds()) -> list[str]:
    """Why a track's masks are not good enough for editing; [] when they are."""
    reasons = []
    if q.frames < t.min_frames:
        reasons.append(f"{q.frames} frame(s) < {t.min_frames}")
    if q.temporal_iou is not None and q.temporal_iou < t.min_temporal_iou:
        reasons.append(f"temporal IoU {q.temporal_iou:.2f} < {t.min_temporal_iou}")
    if not t.min_area <= q.mean_area <= t.max_area:
        reasons.append(f"mean area {q.mean_area:.3f} outside [{t.min_area}, {t.max_area}]")
    if q.border_fraction > t.max_border_fraction:
        reasons.append(f"touches the border in {q.border_fraction:.0%} of frames")
    return reasons
