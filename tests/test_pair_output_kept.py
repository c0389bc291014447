"""A local edit's kept pixels stay >= 40 dB from its source in the written files (issue 22, item 6): the writer
decodes what it wrote, measures the kept region against the stored unchanged side and lowers the CRF until
it holds, and says which CRF it used and what it reached. Clips are encoded and decoded here for real."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from curation.editors import EditResult, write_pair
from curation.editors.output import KEPT_PSNR_DB, PAIR_CRF, write_clip
from filters.pair_gates import edit_regions, psnr
from manifests.media.decode import read_frames

T, H, W = 8, 64, 96


def stored_clip(tmp: Path, blur: float) -> np.ndarray:
    """A clip as the pairs stage sees it: fine colour detail encoded at the extraction's CRF 20, then decoded."""
    noise = np.random.default_rng(0).integers(0, 256, (T, H, W, 3)).astype(np.uint8)
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), blur) for f in noise]) if blur else noise
    frames = cv2.normalize(frames.reshape(-1, W, 3), None, 0, 255, cv2.NORM_MINMAX).reshape(frames.shape)
    return read_frames(write_clip(tmp / "clip.mp4", frames, 25.0, crf=20))


def recolour(clip: np.ndarray) -> EditResult:
    mask = np.zeros((T, H, W), bool)
    mask[:, 20:44, 30:60] = True
    target = clip.copy()
    target[mask] = (240, 30, 30)
    return EditResult("recolour", None, target, mask, "inside", {}, {})


def file_kept_psnr(path: Path, clip: np.ndarray, mask: np.ndarray) -> float:
    _, kept = edit_regions(mask, "inside", mask.shape, 4)
    return psnr(read_frames(path), clip, kept)


def test_the_crf_is_lowered_until_the_kept_region_holds(tmp_path: Path) -> None:
    clip = stored_clip(tmp_path, blur=2.0)
    result = recolour(clip)
    plain = write_pair(result, tmp_path / "plain", "p", 25.0)  # not measured: the pair CRF as before
    assert plain.crf == PAIR_CRF and plain.kept_psnr is None
    assert plain.target is not None and file_kept_psnr(plain.target, clip, result.mask) < KEPT_PSNR_DB
    files = write_pair(result, tmp_path / "held", "p", 25.0, unchanged=clip)
    assert files.target is not None and files.source is None and files.mask is not None
    assert files.crf < PAIR_CRF
    measured = file_kept_psnr(files.target, clip, result.mask)
    assert measured >= KEPT_PSNR_DB and files.kept_psnr == round(measured, 2)
    assert not any(p.name.startswith(".") or p.suffix == ".tmp" for p in (tmp_path / "held").iterdir())


def test_smooth_content_keeps_the_pair_crf(tmp_path: Path) -> None:
    clip = stored_clip(tmp_path, blur=8.0)
    files = write_pair(recolour(clip), tmp_path, "p", 25.0, unchanged=clip)
    assert files.crf == PAIR_CRF and files.kept_psnr is not None and files.kept_psnr >= KEPT_PSNR_DB


def test_what_even_the_last_rung_misses_is_recorded(tmp_path: Path) -> None:
    # unblurred noise: 4:2:0 chroma resampled again costs more than 40 dB allows, even at CRF 0
    clip = stored_clip(tmp_path, blur=0.0)
    files = write_pair(recolour(clip), tmp_path, "p", 25.0, unchanged=clip)
    assert files.crf == 0 and files.kept_psnr is not None and files.kept_psnr < KEPT_PSNR_DB


def test_a_global_edit_is_not_measured(tmp_path: Path) -> None:
    clip = stored_clip(tmp_path, blur=2.0)
    result = EditResult("style", None, 255 - clip, None, "global", {}, {})
    files = write_pair(result, tmp_path, "p", 25.0, unchanged=clip)
    assert files.crf == PAIR_CRF and files.kept_psnr is None and files.mask is None
