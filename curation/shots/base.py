"""Shot detection contract: the result type, the detector base class, clip ranges and the registry.

Modelled on PySceneDetect's detectors: a cheap constructor taking a config, `setup()` that loads any
model, and `detect(video)` that streams small decoded frames and returns cuts and gradual
transitions. Frame ranges are half-open [start, end).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from curation.registry import FrozenConfig, Registry, build


class ShotError(Exception):
    """Shot detection could not run on an input; the message is one line."""


@dataclass(frozen=True)
class ShotDetection:
    """Where the shots of one video change.

    `cuts`: first frame of each new shot after a hard cut. `transitions`: gradual changes (dissolves,
    fades) as [start, end) frame ranges. `shots()` tiles the video: boundaries at every cut and at the
    middle of every gradual transition; `clip_ranges` is what drops the transition frames.
    """

    fps: float
    frames: int
    cuts: list[int] = field(default_factory=list)
    transitions: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if any(not 0 < c < self.frames for c in self.cuts) or self.cuts != sorted(set(self.cuts)):
            raise ValueError(f"cuts must be sorted, unique and inside (0, {self.frames}): {self.cuts}")
        if any(not 0 <= s < e <= self.frames for s, e in self.transitions):
            raise ValueError(f"transitions must be non-empty ranges inside [0, {self.frames}]: {self.transitions}")

    def boundaries(self) -> list[int]:
        """First frame of every shot but the first: cuts plus the middle of each gradual transition."""
        mids = [(s + e) // 2 for s, e in self.transitions]
        return sorted({b for b in self.cuts + mids if 0 < b < self.frames})

    def shots(self) -> list[tuple[int, int]]:
        edges = [0, *self.boundaries(), self.frames]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def clip_ranges(
    detection: ShotDetection, min_len_s: float, max_len_s: float, trim_frames: int
) -> list[tuple[int, int]]:
    """Clean clip ranges: transition frames removed, `trim_frames` cut at each boundary, too-short
    pieces dropped and too-long ones split into near-equal parts no longer than `max_len_s`."""
    if min_len_s < 0 or max_len_s <= 0 or max_len_s < min_len_s or trim_frames < 0:
        raise ValueError(f"need 0 <= min_len_s <= max_len_s, max_len_s > 0, trim_frames >= 0; got "
                         f"{min_len_s}, {max_len_s}, {trim_frames}")
    min_len, max_len = min_len_s * detection.fps, max_len_s * detection.fps
    if max_len < 1:
        raise ValueError(f"max_len_s={max_len_s} is shorter than one frame at {detection.fps} fps")
    edges = [0, *detection.cuts, detection.frames]
    segments = [(a, b) for a, b in zip(edges, edges[1:])]
    for ts, te in detection.transitions:  # carve gradual transitions out of the segments
        segments = [piece for a, b in segments for piece in ((a, min(b, ts)), (max(a, te), b)) if piece[1] > piece[0]]
    out: list[tuple[int, int]] = []
    for a, b in segments:
        a, b = a + trim_frames, b - trim_frames
        n = b - a
        if n <= 0 or n < min_len:
            continue
        k = max(1, math.ceil(n / max_len - 1e-9))
        cuts = [a + round(i * n / k) for i in range(k + 1)]
        out.extend((cuts[i], cuts[i + 1]) for i in range(k))
    return out


class ShotDetector(ABC):
    """A shot detector: cheap to build, `setup()` loads models, `detect()` streams one video."""

    name: ClassVar[str]
    version: str  # a class default; a detector whose options change its output may set its own

    def __init__(self, config: FrozenConfig) -> None:
        self.config = config
        self.model_name = self.name
        self.weights_id = "none"

    def setup(self) -> None:  # noqa: B027 - an optional hook: the fast detector loads nothing
        """Load models or other heavy state; called once per worker before the first detect()."""

    @abstractmethod
    def detect(self, video_path: str | Path) -> ShotDetection:
        """Detect the cuts and gradual transitions of one video."""


_REGISTRY: Registry = {
    "fast": ("curation.shots.fast", "FastDetector", "FastConfig"),
    "transnetv2": ("curation.shots.transnet", "TransNetV2Detector", "TransNetV2Config"),
}
DETECTOR_NAMES = tuple(_REGISTRY)


def get_detector(name: str, config: FrozenConfig | None = None) -> ShotDetector:
    """Build detector `name` (imported lazily: the fast one must not pay for importing torch)."""
    return build(_REGISTRY, "shot detector", name, config, ShotError)
