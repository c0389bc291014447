"""What several stages (and the config check) share: building owners' configs, rejecting failed clips."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from curation.shots import ShotDetector, get_detector
from filters.thresholds import FilterThresholds


def build_thresholds(values: Mapping[str, Any]) -> FilterThresholds:
    """The filter thresholds of a job config (filters' own validation: unknown keys, min <= max)."""
    return FilterThresholds.from_dict(values)


def build_detector(shots_config: Any) -> ShotDetector:
    """The configured shot detector, not yet set up (setup loads its model on the worker).

    `detector_options` replace fields of the detector's own frozen config; an unknown one is an error.
    """
    detector = get_detector(shots_config.detector)
    if not shots_config.detector_options:
        return detector
    try:
        config = dataclasses.replace(detector.config, **shots_config.detector_options)
    except TypeError as exc:
        raise ValueError(f"shots.detector_options for {shots_config.detector}: {exc}") from None
    return get_detector(shots_config.detector, config)


def reject_failed(clips: list[dict[str, Any]], errors: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    """The clips whose `errors` row names them (input = clip id), marked rejected with the reason."""
    by_input = {e["input"]: e for e in errors}
    return [
        {**c, "status": "rejected", "reject_reason": f"{stage} failed: {by_input[c['clip_id']]['error_class']}"}
        for c in clips
        if c["clip_id"] in by_input
    ]
