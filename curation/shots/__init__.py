"""Shot detection: our fast histogram/adaptive detector and TransNetV2, behind one contract."""

from curation.shots.base import (
    DETECTOR_NAMES,
    ShotDetection,
    ShotDetector,
    ShotError,
    clip_ranges,
    get_detector,
)

__all__ = ["DETECTOR_NAMES", "ShotDetection", "ShotDetector", "ShotError", "clip_ranges", "get_detector"]
