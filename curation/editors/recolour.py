"""Object recolour: inside the object's mask, hue set to a named colour and saturation raised to a
floor (so grey objects take the colour too); brightness kept, pixels outside the mask untouched."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from curation.editors.base import EditError, EditInput, Editor, EditResult, pick

COLOURS: dict[str, int] = {  # name -> hue in degrees
    "red": 0, "orange": 30, "yellow": 58, "green": 120, "cyan": 180, "blue": 225, "purple": 275, "pink": 325,
}
MIN_HUE_DISTANCE = 60
"""A colour chosen by seed is at least this many degrees of hue from the object's own (when it has one)."""


@dataclass(frozen=True)
class RecolourConfig:
    colour: str | None = None  # None: chosen by the input's seed
    min_saturation: int = 150  # 0-255: saturation floor inside the mask

    def __post_init__(self) -> None:
        if self.colour is not None and self.colour not in COLOURS:
            raise EditError(f"unknown colour {self.colour!r}; known: {', '.join(COLOURS)}")
        if not 0 <= self.min_saturation <= 255:
            raise EditError(f"min_saturation must be in 0..255, got {self.min_saturation}")


def object_hue(frames: np.ndarray, mask: np.ndarray) -> float | None:
    """Circular mean hue (degrees) of the object's saturated pixels, None for a grey object."""
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV_FULL) for f in frames])[mask]  # (N, 3), hue 0-255
    hsv = hsv[hsv[:, 1] > 60]
    if len(hsv) < 16:
        return None
    angle = hsv[:, 0].astype(np.float64) * (2 * np.pi / 256)
    return float(np.degrees(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360)


def choose_colour(hue: float | None, seed: int) -> str:
    """A named colour, by seed, far enough in hue from the object's own to be a visible change."""
    names = [n for n, h in COLOURS.items() if hue is None or min(abs(h - hue), 360 - abs(h - hue)) >= MIN_HUE_DISTANCE]
    return pick(names, seed, "recolour")


def recolour(frames: np.ndarray, mask: np.ndarray, hue_deg: int, min_saturation: int) -> np.ndarray:
    """Frames with hue set to `hue_deg` and saturation >= min_saturation inside `mask` (T, H, W)."""
    out = frames.copy()
    hue8 = round(hue_deg * 256 / 360) % 256
    for t in np.flatnonzero(mask.any(axis=(1, 2))):
        hsv = cv2.cvtColor(frames[t], cv2.COLOR_RGB2HSV_FULL)
        hsv[..., 0] = hue8
        hsv[..., 1] = np.maximum(hsv[..., 1], min_saturation)
        out[t][mask[t]] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)[mask[t]]
    return out


class ObjectRecolour(Editor):
    name = "recolour"
    local = True
    config: RecolourConfig

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        assert mask is not None
        colour = self.config.colour or choose_colour(object_hue(inp.frames, mask), inp.seed)
        target = recolour(inp.frames, mask, COLOURS[colour], self.config.min_saturation)
        params = {"colour": colour, "hue_deg": COLOURS[colour], "min_saturation": self.config.min_saturation}
        return self._result(inp, source=None, target=target, mask=mask.copy(), region="inside", params=params,
                            slots={"object": inp.object_class or "object", "colour": colour})
