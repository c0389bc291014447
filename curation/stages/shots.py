"""Stage 2, shot detection: `videos` rows with status ok in, candidate `clips` rows out.

The detector (fast or TransNetV2, by config) is loaded once per worker in `setup()`; each clip row
carries the detector's model name and weights id as provenance. Clip ranges come from the pure
`clip_ranges` (min/max clip length, frames trimmed at each boundary, transition frames dropped).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from curation.registry import FrozenConfig
from curation.shots import clip_ranges, get_detector
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig, owner_error
from manifests.media.decode import frame_index


class ShotsConfig(StageConfig):
    """The `shots` section of a job config; `detector_options` replace fields of the detector's frozen config."""

    detector: str = "fast"
    detector_options: dict[str, Any] = Field(default_factory=dict)
    min_clip_s: float = Field(1.0, gt=0)
    max_clip_s: float = Field(10.0, gt=0)
    trim_frames: int = Field(2, ge=0)
    _detector_config: FrozenConfig = PrivateAttr()

    @model_validator(mode="after")
    def _lengths_and_detector(self) -> ShotsConfig:
        if self.min_clip_s > self.max_clip_s:
            raise ValueError(f"min_clip_s {self.min_clip_s} > max_clip_s {self.max_clip_s}")
        try:
            defaults = get_detector(self.detector).config  # cheap: a detector loads its model in setup()
            self._detector_config = dataclasses.replace(defaults, **self.detector_options)
        except TypeError as exc:  # an unknown option
            raise ValueError(f"shots.detector_options for {self.detector}: {' '.join(str(exc).split())}") from None
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown detector, in the registry's own words
            raise owner_error(exc) from None
        return self

    @property
    def detector_config(self) -> FrozenConfig:
        """The detector's frozen config with `detector_options` applied, built once at validation."""
        return self._detector_config


def clip_id(video_id: str, start_frame: int, end_frame: int) -> str:
    return f"{video_id}-{start_frame:07d}-{end_frame:07d}"


class ShotsStage(Stage):
    name = "shots"
    version = "2"
    resources = Resources(num_cpus=0.5)
    writes = ("clips", "errors")
    Config = ShotsConfig

    def __init__(self, config: ShotsConfig) -> None:
        super().__init__()
        self.config = config
        self.detector = get_detector(config.detector, config.detector_config)

    def setup(self) -> None:
        self.detector.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        videos = [v for v in unit.rows("videos") if v["status"] == "ok"]
        per_video, errors = self.isolate(videos, self.clip_rows, lambda v: v["uri"], unit.attempt)
        return StageOutput({"clips": [c for rows in per_video for c in rows], "errors": errors})

    def clip_rows(self, video: dict[str, Any]) -> list[dict[str, Any]]:
        detection = self.detector.detect(video["uri"])
        fps = float(detection.fps)
        ranges = clip_ranges(detection, self.config.min_clip_s, self.config.max_clip_s, self.config.trim_frames)
        index = frame_index(video["uri"]) if video.get("vfr") else None  # frame / fps is wrong where durations vary

        def seconds(frame: int) -> float:
            return index.seconds(frame) if index is not None else frame / fps

        return [
            self.stamp({
                "clip_id": clip_id(video["video_id"], start, end),
                "video_id": video["video_id"],
                "start_frame": start, "end_frame": end,
                "start_time_s": seconds(start), "end_time_s": seconds(end),
                "fps": fps, "width": None, "height": None, "uri": None,
                "shot_method": self.detector.name,
                "status": "ok", "reject_reason": None, "conversion": None,  # uri, size, conversion: extract's
            }, source=self.detector)
            for start, end in ranges
        ]
