"""Background change: everything outside the object's mask is blurred, made grey or replaced by a
photo; the object's pixels are kept exactly.

The blur is a normalised (masked) convolution of the background alone, so the object's colours do
not bleed into the blurred background around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curation.corpus.photos import load_photo
from curation.editors.base import EditError, EditInput, Editor, EditResult, pick

MODES = ("blur", "desaturate", "replace")
BACKDROPS: dict[str, str] = {  # bundled photo -> how an instruction names it
    "brick": "a brick wall", "grass": "a lawn of grass", "moon": "the surface of the moon",
    "hubble_deep_field": "a starry night sky", "rocket": "a rocket launch pad",
}


@dataclass(frozen=True)
class BackgroundConfig:
    mode: str | None = None  # None: chosen by the input's seed
    backdrop: str | None = None  # replace mode: a key of BACKDROPS; None: chosen by seed
    blur_sigma: float = 8.0  # pixels at a 360-pixel short side, scaled with the frame

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise EditError(f"unknown background mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.backdrop is not None and self.backdrop not in BACKDROPS:
            raise EditError(f"unknown backdrop {self.backdrop!r}; known: {', '.join(BACKDROPS)}")
        if self.blur_sigma <= 0:
            raise EditError(f"blur_sigma must be > 0, got {self.blur_sigma}")


def masked_blur(frame: np.ndarray, keep: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the pixels where `keep` (H, W) is True, renormalised by the blurred weights."""
    weight = keep.astype(np.float32)
    num = cv2.GaussianBlur(frame.astype(np.float32) * weight[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    blurred = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), sigma)  # where no background is near
    out = np.where(den > 1e-3, num / np.maximum(den, 1e-3), blurred)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def backdrop_frame(name: str, height: int, width: int) -> np.ndarray:
    """Photo `name` centre-cropped to the frame's aspect and resized to (height, width)."""
    photo = load_photo(name)
    ph, pw = photo.shape[:2]
    scale = max(width / pw, height / ph)
    cw, ch = min(pw, round(width / scale)), min(ph, round(height / scale))
    x0, y0 = (pw - cw) // 2, (ph - ch) // 2
    return cv2.resize(photo[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_AREA)


def change_background(frames: np.ndarray, mask: np.ndarray, mode: str, backdrop: str | None, sigma: float) -> np.ndarray:
    """Frames with the outside of `mask` (T, H, W) changed by `mode`; inside kept exactly."""
    t_count, h, w = mask.shape
    plate = backdrop_frame(backdrop, h, w) if mode == "replace" and backdrop else None
    out = frames.copy()
    for t in range(t_count):
        if mode == "blur":
            new = masked_blur(frames[t], ~mask[t], sigma * min(h, w) / 360)
        elif mode == "desaturate":
            new = np.repeat(cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        else:
            assert plate is not None, "replace mode comes with its backdrop"
            new = plate
        out[t][~mask[t]] = new[~mask[t]]
    return out


class BackgroundChange(Editor):
    name = "background"
    local = True
    config: BackgroundConfig

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        assert mask is not None
        mode = self.config.mode or pick(MODES, inp.seed, "background")
        backdrop = (self.config.backdrop or pick(tuple(BACKDROPS), inp.seed, "backdrop")) if mode == "replace" else None
        target = change_background(inp.frames, mask, mode, backdrop, self.config.blur_sigma)
        params: dict = {"mode": mode, "backdrop": backdrop, "blur_sigma": self.config.blur_sigma}
        slots = {"object": inp.object_class or "object", "mode": mode}
        if backdrop:
            slots["background"] = BACKDROPS[backdrop]
        return self._result(inp, source=None, target=target, mask=mask.copy(), region="outside", params=params,
                            slots=slots)
