"""Write an EditResult as files: target (and, for additions, source) H.264 mp4 plus the mask file.

Every file appears atomically and durably (`manifests.media.atomic`), so a crash leaves either the whole
file or none. Encoding goes through `manifests.media.encode.VideoWriter` (the project's one encoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.editors.base import EditResult
from manifests.media.encode import VideoWriter
from manifests.media.masks import write_mask_file

PAIR_CRF = 12
"""libx264 CRF of written pairs: at 12 the re-encoded unchanged region stays >= 40 dB from its source
(benchmarks/edit_pairs.py measures it); the corpus's own CRF 20 would lose about 4 dB more."""


@dataclass(frozen=True)
class PairFiles:
    """Paths written for one pair; None where the input clip itself is used (source) or nothing applies."""

    source: Path | None
    target: Path | None
    mask: Path | None


def write_clip(path: str | Path, frames: np.ndarray, fps: float, crf: int = PAIR_CRF) -> Path:
    """Encode (T, H, W, 3) RGB frames as H.264 mp4 atomically."""
    final = Path(path)
    with VideoWriter(final, fps=fps, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return final


def write_pair(result: EditResult, out_dir: str | Path, pair_id: str, fps: float, crf: int = PAIR_CRF) -> PairFiles:
    """Write `<pair_id>.target.mp4`, `<pair_id>.source.mp4` (only when the source is not the input clip)
    and `<pair_id>.mask.npz` (local edits) under out_dir; return their paths."""
    out = Path(out_dir)
    source = None if result.source is None else write_clip(out / f"{pair_id}.source.mp4", result.source, fps, crf)
    target = None if result.target is None else write_clip(out / f"{pair_id}.target.mp4", result.target, fps, crf)
    mask = None if result.mask is None else write_mask_file(out / f"{pair_id}.mask.npz", result.mask)
    return PairFiles(source, target, mask)
