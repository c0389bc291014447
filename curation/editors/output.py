"""Write an EditResult as files: target (and, for additions, source) H.264 mp4 plus the mask file.

Every file appears atomically and durably (`manifests.media.atomic`), so a crash leaves either the whole
file or none. Encoding goes through `manifests.media.encode.VideoWriter` (the project's one encoder).

A local edit promises its kept pixels (outside the edited region) unchanged: >= KEPT_PSNR_DB between the
decoded files. Re-encoding pixels that were already decoded from a lossy clip costs a generation, which
at PAIR_CRF alone can land just under it, so the written side is decoded, measured against the stored
unchanged side, and encoded again at the next lower CRF of CRF_LADDER until it holds. CRF 0 is lossless in
YUV but not in RGB (4:2:0 chroma is resampled again), so on fine colour detail even it can fall short: the
CRF used and the PSNR reached are returned with the paths, for the pair row to record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.editors.base import EditResult
from filters.pair_gates import edit_regions, psnr
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.masks import write_mask_file
from manifests.schema import PSNR_CAP

PAIR_CRF = 12
"""libx264 CRF of written pairs: at 12 the re-encoded unchanged region is usually >= 40 dB from its source
(benchmarks/edit_pairs.py measures it); the corpus's own CRF 20 would lose about 4 dB more."""
KEPT_PSNR_DB = 40.0  # a local edit's kept region, decoded target against decoded source, at least this
CRF_LADDER = (8, 4, 0)  # lower CRFs tried in turn when the kept region falls short at the pair CRF


@dataclass(frozen=True)
class PairFiles:
    """Paths written for one pair; None where the input clip itself is used (source) or nothing applies.
    `crf`: the CRF the edited side was written at; `kept_psnr`: its kept region's PSNR (dB, PSNR_CAP for
    identical pixels) against the unchanged side as decoded (None: a global edit, nothing kept, or no
    unchanged pixels given to measure against)."""

    source: Path | None
    target: Path | None
    mask: Path | None
    crf: int
    kept_psnr: float | None = None


def write_clip(path: str | Path, frames: np.ndarray, fps: float, crf: int = PAIR_CRF) -> Path:
    """Encode (T, H, W, 3) RGB frames as H.264 mp4 atomically."""
    final = Path(path)
    with VideoWriter(final, fps=fps, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return final


def kept_psnr(written: Path, unchanged: np.ndarray, mask: np.ndarray, region: str, margin_px: int) -> float:
    """PSNR (dB) of the written file's decoded pixels against `unchanged` (T, H, W, 3) over the kept region
    (past `margin_px` from the mask, as the psnr_kept gate and benchmarks/pair_yield.py measure it)."""
    decoded = read_frames(written)
    n = min(len(decoded), len(unchanged), len(mask))
    _, kept = edit_regions(mask[:n], region, mask[:n].shape, margin_px)
    return psnr(decoded[:n], unchanged[:n], kept)


def write_pair(result: EditResult, out_dir: str | Path, pair_id: str, fps: float, crf: int = PAIR_CRF,
               unchanged: np.ndarray | None = None, margin_px: int = 4) -> PairFiles:
    """Write `<pair_id>.target.mp4`, `<pair_id>.source.mp4` (only when the source is not the input clip)
    and `<pair_id>.mask.npz` (local edits) under out_dir; return their paths and the CRF used.

    `unchanged`: the other side's pixels as they are stored (the input clip decoded); with it a local
    edit's written side is re-encoded at lower CRFs until its kept region is >= KEPT_PSNR_DB from them."""
    out = Path(out_dir)
    side = "source" if result.source is not None else "target"
    frames = result.source if result.source is not None else result.target
    assert frames is not None, "EditResult guarantees exactly one side is the input clip"
    path = out / f"{pair_id}.{side}.mp4"
    write_clip(path, frames, fps, crf)
    measured = None
    if unchanged is not None and result.mask is not None and result.region != "global":
        measured = kept_psnr(path, unchanged, result.mask, result.region, margin_px)
        for lower in (c for c in CRF_LADDER if c < crf):
            if math.isnan(measured) or measured >= KEPT_PSNR_DB:  # nan: nothing kept to measure
                break
            crf = lower
            write_clip(path, frames, fps, crf)
            measured = kept_psnr(path, unchanged, result.mask, result.region, margin_px)
    mask = None if result.mask is None else write_mask_file(out / f"{pair_id}.mask.npz", result.mask)
    kept = None if measured is None or math.isnan(measured) else round(min(measured, PSNR_CAP), 2)
    return PairFiles(path if side == "source" else None, path if side == "target" else None, mask, crf, kept)
