"""Masks for edits: per-frame masks from a track, dilation, and the mask file a pair carries.

The mask file is an `.npz` holding COCO compressed RLE strings (the encoding of the `objects` table's
`mask_rle`), one per frame where the mask is not empty: `shape` (H, W), `frames` (N,) int and `rle`
(N,) str. Why not an mp4 or PNGs: H.264 would blur a binary mask (4:2:0 chroma, DCT), a PNG sequence is
one file per frame; RLE of a blob is tens of bytes a frame and reads back exactly with pycocotools.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from curation.editors.base import MaskFileError
from manifests.errors import ManifestError
from manifests.layout import durable_replace
from manifests.mask_file import open_mask_file
from manifests.rle import rle_encode


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


def write_mask_file(path: str | Path, mask: np.ndarray) -> Path:
    """Write a (T, H, W) bool mask as RLE npz, atomically (temp, fsync, rename)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    frames = [t for t in range(len(mask)) if mask[t].any()]
    rle = np.array([rle_encode(mask[t]) for t in frames], dtype=np.str_)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, shape=np.array(mask.shape, np.int64), frames=np.array(frames, np.int64), rle=rle)
        durable_replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def read_mask_file(path: str | Path) -> np.ndarray:
    """The (T, H, W) bool mask of a file written by write_mask_file; MaskFileError if missing or malformed.
    The one reader of the format is manifests.mask_file (which the sample sheet and the trainer use too)."""
    p = Path(path)
    if not p.is_file():
        raise MaskFileError(f"{p}: no such mask file")
    try:
        masks = open_mask_file(p)
        out = np.zeros(masks.shape, bool)
        for t in masks.frames:
            out[t] = masks.frame(t)
    except ManifestError as exc:
        raise MaskFileError(str(exc)) from None
    return out
