"""The photos the synthetic corpus is made of: ones that installed packages ship, so no download is needed.

scikit-image bundles its sample images and ultralytics bundles two test photos; both are real
photographs, which gives the shot detectors and mask stages realistic texture and colour statistics.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

# Background photos (colour or grey) and the ones used to texture foreground objects.
SKIMAGE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "coins",
    "immunohistochemistry", "hubble_deep_field", "retina", "moon", "brick", "grass",
)
ULTRALYTICS_PHOTOS = ("bus", "zidane")
PHOTOS = SKIMAGE_PHOTOS + ULTRALYTICS_PHOTOS


class PhotoError(Exception):
    """A bundled photo could not be loaded; the message is one line."""


def _ultralytics_asset(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise PhotoError("ultralytics is not installed: its bundled assets (bus.jpg, zidane.jpg) are needed")
    return Path(spec.origin).parent / "assets" / f"{name}.jpg"


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """Return photo `name` as RGB uint8 (H, W, 3); grey photos are replicated to three channels."""
    if name in SKIMAGE_PHOTOS:
        import skimage.data

        img = getattr(skimage.data, name)()
    elif name in ULTRALYTICS_PHOTOS:
        path = _ultralytics_asset(name)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise PhotoError(f"{path}: cannot read bundled photo")
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    else:
        raise PhotoError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3])
    img.setflags(write=False)
    return img


@functools.cache
def horse_silhouette() -> np.ndarray:
    """The horse silhouette from scikit-image, tightly cropped, True on the horse."""
    import skimage.data

    horse = ~skimage.data.horse()
    ys, xs = np.nonzero(horse)
    out = np.ascontiguousarray(horse[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    out.setflags(write=False)
    return out
