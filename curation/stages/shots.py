"""Stage 2, shot detection: `videos` rows with status ok in, candidate `clips` rows out.

The detector (fast or TransNetV2, by config) is loaded once per worker in `setup()`; each clip row
carries the detector's model name and weights id as provenance. Clip ranges come from the pure
`clip_ranges` (min/max clip length, frames trimmed at each boundary, transition frames dropped).
"""

from __future__ import annotations

from typing import Any

from curation.shots import clip_ranges
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stages.common import build_detector


def clip_id(video_id: str, start_frame: int, end_frame: int) -> str:
    return f"{video_id}-{start_frame:07d}-{end_frame:07d}"


class ShotsStage(Stage):
    name = "shots"
    version = "1"
    resources = Resources(num_cpus=0.5)
    writes = ("clips", "errors")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.shots = config.shots
        self.detector = build_detector(config.shots)

    def setup(self) -> None:
        self.detector.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        videos = [v for v in unit.rows("videos") if v["status"] == "ok"]
        per_video, errors = self.isolate(videos, self.clip_rows, lambda v: v["uri"], unit.attempt)
        return StageOutput({"clips": [c for rows in per_video for c in rows], "errors": errors})

    def clip_rows(self, video: dict[str, Any]) -> list[dict[str, Any]]:
        detection = self.detector.detect(video["uri"])
        fps = float(detection.fps)
        ranges = clip_ranges(detection, self.shots.min_clip_s, self.shots.max_clip_s, self.shots.trim_frames)
        return [
            self.stamp({
                "clip_id": clip_id(video["video_id"], start, end),
                "video_id": video["video_id"],
                "start_frame": start, "end_frame": end,
                "start_time_s": start / fps, "end_time_s": end / fps,
                "fps": fps, "width": None, "height": None, "uri": None,
                "shot_method": self.detector.name,
                "status": "ok", "reject_reason": None,
            }, source=self.detector)
            for start, end in ranges
        ]
