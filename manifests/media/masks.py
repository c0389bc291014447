"""The mask file an `edit_pairs` row names in `mask_uri`: written by the editors, read by the sheets and the
trainer, one frame at a time.

An `.npz` of COCO compressed RLE strings (the encoding of `object_frames.mask_rle`), one per frame where the
mask is not empty: `shape` (T, H, W) int64, `frames` (N,) int64 and `rle` (N,) str. Why not an mp4 or PNGs:
H.264 would blur a binary mask (4:2:0 chroma, DCT), a PNG sequence is one file per frame; RLE of a blob is
tens of bytes a frame and reads back exactly. A reader that wants a few frames decodes only those.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manifests.errors import ManifestError, first_line
from manifests.media.atomic import atomic_output
from manifests.rle import rle_decode, rle_encode


@dataclass(frozen=True)
class MaskFile:
    path: Path
    shape: tuple[int, int, int]  # (T, H, W)
    rle_of_frame: dict[int, str]  # frame index -> COCO counts, only frames where the mask is not empty

    def frame(self, index: int) -> np.ndarray:
        """The (H, W) bool mask of frame `index` (all False where the file holds none)."""
        _, height, width = self.shape
        counts = self.rle_of_frame.get(index)
        if counts is None:
            return np.zeros((height, width), dtype=bool)
        try:
            return rle_decode(counts, height, width)
        except ManifestError as exc:
            raise ManifestError(f"{self.path}: frame {index}: {exc}") from None

    @property
    def frames(self) -> list[int]:
        """Frame indices where the mask is not empty, ascending."""
        return sorted(self.rle_of_frame)

    def dense(self) -> np.ndarray:
        """The whole (T, H, W) bool mask."""
        out = np.zeros(self.shape, bool)
        for t in self.frames:
            out[t] = self.frame(t)
        return out


def write_mask_file(path: str | os.PathLike[str], mask: np.ndarray) -> Path:
    """Write a (T, H, W) bool mask as a mask file, atomically (see `atomic`)."""
    final = Path(path)
    frames = [t for t in range(len(mask)) if mask[t].any()]
    rle = np.array([rle_encode(mask[t]) for t in frames], dtype=np.str_)
    with atomic_output(final) as temp, open(temp, "wb") as f:
        np.savez_compressed(f, shape=np.array(mask.shape, np.int64), frames=np.array(frames, np.int64), rle=rle)
    return final


def open_mask_file(path: str | os.PathLike[str]) -> MaskFile:
    """Read a mask file's index (no frame decoded yet); a one-line ManifestError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such mask file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ManifestError(f"{path}: a bare .npy array, not an .npz of RLE masks")
        with loaded as z:
            shape = tuple(int(x) for x in z["shape"])
            frames, rle = z["frames"].astype(np.int64), z["rle"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        raise ManifestError(f"{path}: not a mask file ({type(exc).__name__}: {first_line(exc)})") from None
    if len(shape) != 3 or min(shape) < 0:
        raise ManifestError(f"{path}: mask shape {shape} is not (T, H, W)")
    in_range = not len(frames) or (frames.min() >= 0 and frames.max() < shape[0])
    if frames.ndim != 1 or frames.shape != rle.shape or not in_range:
        raise ManifestError(f"{path}: frame indices do not match the {shape[0]}-frame mask")
    return MaskFile(path, shape, {int(t): str(counts) for t, counts in zip(frames, rle)})
