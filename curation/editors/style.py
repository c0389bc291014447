"""Global style: OpenCV's non-photorealistic filters (stylisation, pencil sketch, cartoon) and
colour grades (sepia, warm, cool, black and white), applied to every frame alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from curation.editors.base import EditError, EditInput, Editor, EditResult, pick


def _matrix(frame: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A 3x3 colour matrix applied to RGB, clipped to uint8."""
    return np.clip(frame.astype(np.float32) @ m.T + 0.5, 0, 255).astype(np.uint8)


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
_WARM = np.diag([1.12, 1.0, 0.82]).astype(np.float32)
_COOL = np.diag([0.82, 0.97, 1.15]).astype(np.float32)


def _grey(frame: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def _cartoon(frame: np.ndarray) -> np.ndarray:
    """Flattened colours (bilateral filter) with dark edges from an adaptive threshold of the grey."""
    colour = cv2.bilateralFilter(frame, 7, 60, 7)
    grey = cv2.medianBlur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return cv2.bitwise_and(colour, colour, mask=edges)


def _pencil(frame: np.ndarray) -> np.ndarray:
    grey, _ = cv2.pencilSketch(frame, sigma_s=40, sigma_r=0.08, shade_factor=0.05)
    return np.repeat(grey[..., None], 3, axis=2)


STYLES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "painting": lambda f: cv2.stylization(f, sigma_s=40, sigma_r=0.45),
    "pencil": _pencil,
    "cartoon": _cartoon,
    "sepia": lambda f: _matrix(f, _SEPIA),
    "warm": lambda f: _matrix(f, _WARM),
    "cool": lambda f: _matrix(f, _COOL),
    "black_and_white": _grey,
}
"""Every style, frame -> frame on RGB uint8 (H, W, 3)."""
ART_STYLES = ("painting", "pencil", "cartoon")
"""Styles that redraw the frame; the others are colour grades (instructions phrase the two apart)."""


@dataclass(frozen=True)
class StyleConfig:
    style: str | None = None  # None: chosen by the input's seed

    def __post_init__(self) -> None:
        if self.style is not None and self.style not in STYLES:
            raise EditError(f"unknown style {self.style!r}; known: {', '.join(STYLES)}")


class GlobalStyle(Editor):
    name = "style"
    local = False
    config: StyleConfig

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        style = self.config.style or pick(tuple(STYLES), inp.seed, "style")
        target = np.stack([STYLES[style](f) for f in inp.frames])
        family = "art" if style in ART_STYLES else "grade"
        return self._result(inp, source=None, target=target, mask=None, region="global",
                            params={"style": style}, slots={"style": style, "family": family})
