"""Tiny clips made in memory for the model-stage tests: a camera panning over a texture, a textured disc moving."""

from __future__ import annotations

import cv2
import numpy as np

H, W, T = 96, 128, 16


def texture(seed: int, h: int, w: int, blur: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def moving_disc_clip(centres: list[tuple[float, float]], pan: float = 2.0, radius: int = 14
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Frames (T, H, W, 3) of a camera panning over a texture with a textured disc at `centres`, and its masks."""
    world = texture(1, H, W + int(pan * T) + 4, 2)
    world = cv2.normalize(world, None, 0, 255, cv2.NORM_MINMAX)
    skin = cv2.normalize(texture(2, H, W, 1), None, 0, 255, cv2.NORM_MINMAX)
    frames, masks = [], []
    yy, xx = np.mgrid[:H, :W]
    for t, (cx, cy) in enumerate(centres):
        x0 = int(round(pan * t))
        frame = world[:, x0 : x0 + W].copy()
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
        frame[mask] = skin[mask]
        frames.append(frame)
        masks.append(mask)
    return np.stack(frames), masks
