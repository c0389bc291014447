"""How stable an object track's masks are: the IoU of two masks, and the mean IoU of consecutive ones.

Pure functions, no models. The mask methods stamp a track's stability (its `temporal_iou` column) with
these; the gate that decides which object an edit pair may use is `curation.pair_rows.usable`, on the
thresholds of `filters.pair_gates.PairGateConfig`.
"""

from __future__ import annotations

import numpy as np


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of one size; two empty masks count as 0 (nothing to agree on)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def temporal_iou(masks: list[np.ndarray]) -> float | None:
    """Mean IoU of consecutive masks of a track: 1.0 = a perfectly stable mask; None for one mask."""
    if len(masks) < 2:
        return None
    return float(np.mean([mask_iou(a, b) for a, b in zip(masks, masks[1:])]))
