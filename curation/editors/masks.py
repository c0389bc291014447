"""Masks for edits: per-frame masks from a track, dilation, and reading a pair's mask file as an edit input.

The mask file format (RLE npz) is `manifests.media.masks`, which writes and reads it for everyone.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curation.editors.base import MaskFileError
from manifests.errors import ManifestError
from manifests.media.masks import open_mask_file


def dense_mask(frame_indices: np.ndarray, masks: np.ndarray, num_frames: int) -> np.ndarray:
    """A (T, H, W) bool mask from a track's frame indices (N,) and masks (N, H, W); False elsewhere."""
    frame_indices = np.asarray(frame_indices, np.int64)
    if masks.ndim != 3 or len(frame_indices) != len(masks):
        raise MaskFileError(f"track has {len(frame_indices)} frame indices but masks of shape {masks.shape}")
    if len(frame_indices) and (frame_indices.min() < 0 or frame_indices.max() >= num_frames):
        raise MaskFileError(f"track frame indices {frame_indices.min()}..{frame_indices.max()} "
                            f"fall outside a clip of {num_frames} frames")
    out = np.zeros((num_frames, *masks.shape[1:]), bool)
    out[frame_indices] = masks.astype(bool)
    return out


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Each frame of a (T, H, W) bool mask grown by `radius` pixels (elliptical kernel)."""
    if radius <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in mask])


def read_mask_file(path: str | Path) -> np.ndarray:
    """The (T, H, W) bool mask of a mask file; a MaskFileError (the editors' one-line error, whose class name
    an `errors` row records) if it is missing or malformed."""
    try:
        return open_mask_file(path).dense()
    except ManifestError as exc:
        raise MaskFileError(str(exc)) from None
