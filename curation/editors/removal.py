"""Object removal: dilate the object's mask, fill it from other frames where the background shows
(camera motion compensated), then inpaint what no frame ever showed.

The fill is exact where the background is seen in some frame (pixels are copied, not invented), so
the target is a plausible video whose truth the synthetic corpus knows; the spatial inpainting
(OpenCV Telea) only covers regions the object hides in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curation.editors.base import EditInput, Editor, EditResult
from curation.editors.masks import dilate
from curation.editors.motion import camera_paths, transfer


@dataclass(frozen=True)
class RemovalConfig:
    dilate_px: int = 4  # covers the object's soft, codec-smeared edge
    max_sources: int = 48  # frames tried per target frame, nearest in time first
    inpaint_radius: int = 5

    def __post_init__(self) -> None:
        if self.dilate_px < 0 or self.max_sources < 1 or self.inpaint_radius < 1:
            raise ValueError(f"need dilate_px >= 0, max_sources >= 1, inpaint_radius >= 1; got {self}")


def _warp_box(image: np.ndarray, m: np.ndarray, box: tuple[int, int, int, int], flags: int) -> np.ndarray:
    """`image` warped by the 3x3 `m`, computed only for the output box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    shifted = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ m
    return cv2.warpPerspective(image, shifted, (x1 - x0, y1 - y0), flags=flags,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def fill_from_frames(frames: np.ndarray, holes: np.ndarray, unusable: np.ndarray, paths: np.ndarray,
                     max_sources: int) -> tuple[np.ndarray, np.ndarray]:
    """(filled frames, still-missing (T, H, W) bool): each hole pixel of frame t takes the pixel of the
    nearest-in-time frame s that shows background there (not `unusable` in s: the object itself and
    every other moving object), after mapping s onto t with `paths`."""
    t_count = len(frames)
    out = frames.copy()
    missing = holes.copy()
    visible = (~unusable).astype(np.float32)  # (T, H, W): 1 where a frame shows background
    for t in range(t_count):
        order = sorted((s for s in range(t_count) if s != t), key=lambda s: (abs(s - t), s))[:max_sources]
        for s in order:
            if not missing[t].any():
                break
            box = _box(missing[t])
            x0, y0, x1, y1 = box
            m = transfer(paths, s, t)
            # bilinear warp of the visibility: 1 only where all source pixels used are background
            ok = _warp_box(visible[s], m, box, cv2.INTER_LINEAR) > 0.999
            take = missing[t, y0:y1, x0:x1] & ok
            if take.any():
                out[t, y0:y1, x0:x1][take] = _warp_box(frames[s], m, box, cv2.INTER_LINEAR)[take]
                missing[t, y0:y1, x0:x1] &= ~take
    return out, missing


def remove_object(frames: np.ndarray, mask: np.ndarray, others: np.ndarray | None, cfg: RemovalConfig
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(frames without the object, the dilated mask used, fill statistics) for a (T, H, W) bool mask;
    `others` (T, H, W) bool marks the clip's other objects: never copied into the hole, never painted over."""
    holes = dilate(mask, cfg.dilate_px)
    if others is not None:
        holes &= ~others
    unusable = holes if others is None else holes | dilate(others, cfg.dilate_px)
    paths, failed = camera_paths(frames, unusable)
    filled, missing = fill_from_frames(frames, holes, unusable, paths, cfg.max_sources)
    for t in np.flatnonzero(missing.any(axis=(1, 2))):
        filled[t] = cv2.inpaint(filled[t], missing[t].astype(np.uint8), cfg.inpaint_radius, cv2.INPAINT_TELEA)
    hole_px = int(holes.sum())
    stats = {"temporal_fill_fraction": round(1.0 - float(missing.sum()) / max(1, hole_px), 4),
             "motion_model": "ecc-affine", "motion_failed_steps": failed}
    return filled, holes, stats


class ObjectRemoval(Editor):
    """Source: the clip; target: the clip without the object; mask: the dilated object mask."""

    name = "removal"
    local = True
    config: RemovalConfig

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        assert mask is not None
        target, holes, stats = remove_object(inp.frames, mask, inp.others, self.config)
        params = {"dilate_px": self.config.dilate_px, "inpaint": "telea", **stats}
        return self._result(inp, source=None, target=target, mask=holes, region="inside", params=params,
                            slots={"object": inp.object_class or "object"})
