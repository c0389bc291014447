"""The Signal contract: a named, versioned function from a few sampled frames to one float.

A stage decodes frames as each signal's ``Sampling`` says (``sample_indices`` turns it into frame
indices), calls ``setup()`` once per worker, then ``compute(frames, fps)`` per clip, and writes a
``scores`` row with ``name``, the value and the provenance ``version`` / ``model_name`` / ``weights_id``.
Signals hold no per-clip state, so one instance serves any number of clips.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

NO_MODEL = "none"
"""model_name / weights_id of classical signals (matches manifests.schema.NO_MODEL)."""


class FilterError(ValueError):
    """Bad input to a signal or a bad filter config, described in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class Sampling:
    """Which frames of a clip a signal wants.

    ``count`` anchor frames evenly spaced over the clip; with ``pairs`` each anchor is followed by the
    frame right after it, so frames arrive as [a0, a0+1, a1, a1+1, ...]. ``short_side`` is the size
    (pixels) to decode at; signals resize internally where their value must not depend on it.
    """

    count: int
    pairs: bool = False
    short_side: int = 256


def evenly_spaced(num_frames: int, count: int) -> list[int]:
    """At most `count` indices spread evenly over `num_frames` frames, first and last included, sorted and
    unique: every frame of a short clip, none of an empty one. Every stage that samples frames uses this."""
    wanted = min(count, num_frames)
    if wanted < 1:
        return []
    return sorted(set(np.linspace(0, num_frames - 1, wanted).round().astype(int).tolist()))


def sample_indices(num_frames: int, sampling: Sampling) -> list[int]:
    """Frame indices to decode for a clip of `num_frames` frames (fewer when the clip is short)."""
    if num_frames < 1:
        raise FilterError(f"cannot sample from a clip of {num_frames} frames")
    if sampling.pairs:
        if num_frames < 2:
            raise FilterError("a pair-sampled signal needs a clip of at least 2 frames")
        return [i for a in evenly_spaced(num_frames - 1, sampling.count) for i in (a, a + 1)]
    return evenly_spaced(num_frames, sampling.count)


def check_frames(frames: np.ndarray, name: str, min_frames: int = 1) -> None:
    """Raise FilterError unless `frames` is a (T, H, W, 3) uint8 array with T >= min_frames."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise FilterError(f"{name}: expected frames of shape (T, H, W, 3), got {shape}")
    if frames.dtype != np.uint8:
        raise FilterError(f"{name}: expected uint8 RGB frames, got dtype {frames.dtype}")
    if frames.shape[0] < min_frames:
        raise FilterError(f"{name}: needs at least {min_frames} frames, got {frames.shape[0]}")
    if frames.shape[1] < 2 or frames.shape[2] < 2:
        raise FilterError(f"{name}: frames of {frames.shape[2]}x{frames.shape[1]} pixels are too small")


def to_grey(frames: np.ndarray, short_side: int | None = None) -> np.ndarray:
    """BT.601 luma (cv2's RGB2GRAY) as float32 (T, H, W), optionally resized to a fixed short side.

    Resizing to a fixed short side is how signals make their value independent of the decode size:
    INTER_AREA when shrinking, INTER_LINEAR when enlarging.
    """
    out = []
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if short_side is not None:
            h, w = grey.shape
            scale = short_side / min(h, w)
            if scale != 1.0:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        out.append(grey.astype(np.float32))
    return np.stack(out)


class Signal(ABC):
    """One per-clip measurement. Subclasses set ``name``, ``version`` and ``sampling``.

    ``version`` goes into ``stage_version`` provenance: bump it whenever the value's meaning changes.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    sampling: ClassVar[Sampling]
    min_frames: ClassVar[int] = 1

    def __init__(self) -> None:
        self.model_name: str = NO_MODEL
        self.weights_id: str = NO_MODEL

    def setup(self) -> None:  # noqa: B027 - an optional hook: classical signals load nothing
        """Load models; call once per worker before compute. Classical signals need nothing."""

    def compute(self, frames: np.ndarray, fps: float) -> float:
        """Validate the frames, then measure them."""
        check_frames(frames, self.name, self.min_frames)
        if self.sampling.pairs and frames.shape[0] % 2:
            raise FilterError(f"{self.name}: pair-sampled frames must come in pairs, got {frames.shape[0]} frames")
        return float(self._compute(frames, fps))

    @abstractmethod
    def _compute(self, frames: np.ndarray, fps: float) -> float:
        """The measurement on validated (T, H, W, 3) uint8 RGB frames."""


SIGNALS: dict[str, type[Signal]] = {}
"""Every signal class by name; filled by ``register`` as the signal modules are imported."""


def register(cls: type[Signal]) -> type[Signal]:
    """Class decorator adding a Signal subclass to SIGNALS under its ``name``."""
    if cls.name in SIGNALS:
        raise FilterError(f"signal name {cls.name!r} registered twice")
    SIGNALS[cls.name] = cls
    return cls


def get_signal(name: str, **params: object) -> Signal:
    """A new instance of the named signal; `params` go to its constructor."""
    if name not in SIGNALS:
        raise FilterError(f"unknown signal {name!r}; known: {', '.join(sorted(SIGNALS))}")
    return SIGNALS[name](**params)
