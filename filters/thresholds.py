"""Filter thresholds as one validated, frozen config, and the predicates that apply them.

Every bound is a field here (loaded from a job's YAML via ``from_dict``), never a constant in a stage.
Units follow the signals: luminance 0-255 luma; blur Laplacian variance at a 256-pixel
short side after a sigma-1 smoothing;
motion percent of the frame diagonal per frame; static / slideshow 0-1; text_overlay 0-1 of frame area;
width / height pixels; duration seconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from filters.base import FilterError


@dataclass(frozen=True)
class FilterThresholds:
    min_width: int = 256
    min_height: int = 144
    max_width: int = 7680  # larger inputs (8K+) are rejected: too costly to decode for what they add
    max_height: int = 7680
    min_duration_s: float = 2.0
    max_duration_s: float = 120.0
    min_luminance: float = 20.0
    max_luminance: float = 235.0
    min_blur: float = 10.0
    min_motion: float = 0.01
    max_motion: float = 3.0
    max_static: float = 0.8
    max_slideshow: float = 0.5
    max_text_overlay: float = 0.02

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise FilterError(f"threshold {f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise FilterError(f"threshold {f.name} must be >= 0, got {value}")
        for signal, (lo, hi) in _BOUNDS.items():
            if lo and hi and getattr(self, lo) > getattr(self, hi):
                raise FilterError(f"{signal}: {lo}={getattr(self, lo)} is greater than {hi}={getattr(self, hi)}")
        for name in ("max_static", "max_slideshow", "max_text_overlay"):
            if getattr(self, name) > 1:
                raise FilterError(f"threshold {name} is a fraction and must be <= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FilterThresholds:
        """Build from a config mapping; unknown keys are an error (a typo must not silently disable a filter)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise FilterError(f"unknown threshold(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


_BOUNDS: dict[str, tuple[str | None, str | None]] = {
    "width": ("min_width", "max_width"),
    "height": ("min_height", "max_height"),
    "duration": ("min_duration_s", "max_duration_s"),
    "luminance": ("min_luminance", "max_luminance"),
    "blur": ("min_blur", None),
    "motion": ("min_motion", "max_motion"),
    "static": (None, "max_static"),
    "slideshow": (None, "max_slideshow"),
    "text_overlay": (None, "max_text_overlay"),
}
"""Which config fields bound which score; a score not listed here has no threshold (passed = None)."""


def _reasons(signal: str, value: float | None, cfg: FilterThresholds) -> list[str]:
    """Human reasons `value` fails its bounds; empty when it passes or has no bounds."""
    if signal not in _BOUNDS or value is None:
        return []
    if not math.isfinite(value):
        return [f"{signal} is {value}"]
    lo, hi = _BOUNDS[signal]
    out = []
    if lo is not None and value < getattr(cfg, lo):
        out.append(f"{signal} {value:.4g} < min {getattr(cfg, lo):.4g}")
    if hi is not None and value > getattr(cfg, hi):
        out.append(f"{signal} {value:.4g} > max {getattr(cfg, hi):.4g}")
    return out


def evaluate(scores: Mapping[str, float | None], cfg: FilterThresholds) -> dict[str, bool | None]:
    """Pass/fail per score: True/False where a threshold applies, None where none does or the value is None."""
    return {
        signal: None if signal not in _BOUNDS or value is None else not _reasons(signal, value, cfg)
        for signal, value in scores.items()
    }


def reject_reasons(scores: Mapping[str, float | None], cfg: FilterThresholds) -> list[str]:
    """One short reason per failed threshold, e.g. "blur 12.3 < min 40", in the order of `scores`."""
    return [reason for signal, value in scores.items() for reason in _reasons(signal, value, cfg)]


def resolution_ok(width: int, height: int, cfg: FilterThresholds) -> bool:
    """Whether a width x height input is inside [min, max] on both axes."""
    return not reject_reasons({"width": width, "height": height}, cfg)


def duration_ok(seconds: float, cfg: FilterThresholds) -> bool:
    """Whether a duration in seconds is inside [min_duration_s, max_duration_s]."""
    return not reject_reasons({"duration": seconds}, cfg)
