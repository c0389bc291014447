"""Binary masks as COCO compressed RLE strings (what pycocotools and most tools read).

pycocotools does the encoding and decoding; we check the counts string ourselves first, because
pycocotools trusts it and would read past a malformed one.
"""

from __future__ import annotations

import warnings
from typing import cast

import numpy as np
from pycocotools import mask as coco_mask

from manifests.errors import ManifestError


def rle_encode(mask: np.ndarray) -> str:
    """COCO compressed RLE counts of a 2-D boolean (or 0/1) mask, column-major as COCO defines it."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ManifestError(f"rle_encode: mask must be 2-D [H, W], got shape {mask.shape}")
    if mask.dtype != np.bool_:
        if not np.isin(mask, (0, 1)).all():
            raise ManifestError(f"rle_encode: mask of dtype {mask.dtype} has values other than 0/1")
    if mask.size == 0:
        return ""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return cast(str, rle["counts"].decode("ascii"))


def rle_decode(counts: str, height: int, width: int) -> np.ndarray:
    """The [height, width] boolean mask of a COCO counts string; exact inverse of rle_encode."""
    if height < 0 or width < 0:
        raise ManifestError(f"rle_decode: negative mask size {height}x{width}")
    runs = run_lengths(counts)
    if sum(runs) != height * width:
        raise ManifestError(f"rle_decode: counts cover {sum(runs)} pixels, mask {height}x{width} has {height * width}")
    if height * width == 0:
        return np.zeros((height, width), dtype=bool)
    with warnings.catch_warnings():  # pycocotools 2.0.11 trips numpy 2's __array__ copy deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = coco_mask.decode({"size": [height, width], "counts": counts.encode("ascii")})
    return cast(np.ndarray, decoded.astype(bool))


def run_lengths(counts: str) -> list[int]:
    """Decode COCO's compressed counts (6-bit chars, delta-coded from the run two back) to run lengths."""
    if not isinstance(counts, str) or not counts.isascii():
        raise ManifestError("rle_decode: counts must be an ASCII string")
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ManifestError("rle_decode: counts string ends inside a number")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ManifestError(f"rle_decode: invalid character {counts[pos]!r} in counts")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ManifestError(f"rle_decode: negative run length at run {len(runs)}")
        runs.append(value)
    return runs
