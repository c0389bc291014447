"""Stage 2, shot detection: `videos` rows with status ok in, candidate `clips` rows out.

The detector (fast or TransNetV2, by config) is loaded once per worker in `setup()`; each clip row
carries the detector's model name and weights id as provenance. Clip ranges come from the pure
`clip_ranges` (min/max clip length, frames trimmed at each boundary, transition frames dropped).

With `keyframe_snap_s` > 0, a clip of a source that extraction could stream-copy (H.264 at a bucket's size,
square pixels, upright, progressive) is moved inside its range, at most that much at each end, to start on an
IDR picture and end where the copy is exact: extraction then neither decodes nor encodes it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from curation.extract import DEFAULT_BUCKETS, PacketIndex, copyable, index_packets, keyframe_aligned, resolution_bucket
from curation.registry import FrozenConfig
from curation.remote_inputs import local_input
from curation.shots import ShotDetection, clip_ranges, get_detector
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import JobSettings, StageConfig, owner_error
from manifests.media.decode import frame_index
from manifests.media.probe import probe


class ShotsConfig(StageConfig):
    """The `shots` section of a job config; `detector_options` replace fields of the detector's frozen config."""

    detector: str = "fast"
    detector_options: dict[str, Any] = Field(default_factory=dict)
    min_clip_s: float = Field(1.0, gt=0)
    max_clip_s: float = Field(10.0, gt=0)
    trim_frames: int = Field(2, ge=0)
    keyframe_snap_s: float = Field(0.0, ge=0, le=5)
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

    def __init__(self, config: ShotsConfig, buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__()
        self.config = config
        self.buckets = buckets  # extraction's: snapping to keyframes pays only where a clip can be copied
        self.detector = get_detector(config.detector, config.detector_config)

    @classmethod
    def from_job(cls, job: JobSettings) -> ShotsStage:
        config, extract = job.section(cls.name), job.section("extract")
        assert isinstance(config, ShotsConfig), "the job config holds the shots section (the stage is not optional)"
        return cls(config, tuple(getattr(extract, "buckets", DEFAULT_BUCKETS)))

    def setup(self) -> None:
        self.detector.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        videos = [v for v in unit.rows("videos") if v["status"] == "ok"]
        per_video, errors = self.isolate(videos, self.clip_rows, lambda v: v["uri"], unit.attempt)
        return StageOutput({"clips": [c for rows in per_video for c in rows], "errors": errors})

    def clip_rows(self, video: dict[str, Any]) -> list[dict[str, Any]]:
        video = {**video, "uri": local_input(video["uri"])}  # an s3:// input is read from its local copy
        detection = self.detector.detect(video["uri"])
        fps = float(detection.fps)
        packets: PacketIndex | None = None
        if self.config.keyframe_snap_s > 0:
            ranges, packets = self.keyframe_aligned(video, detection)
        else:
            ranges = clip_ranges(detection, self.config.min_clip_s, self.config.max_clip_s, self.config.trim_frames)
        index = None  # frame / fps is wrong where durations vary: VFR times come from the timestamps
        if video.get("vfr"):
            index = packets.frames() if packets is not None else frame_index(video["uri"])

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

    def keyframe_aligned(
        self, video: dict[str, Any], detection: ShotDetection
    ) -> tuple[list[tuple[int, int]], PacketIndex | None]:
        """(`clip_ranges`, but long shots split at IDR pictures and each piece moved to where a stream copy of
        it is exact, where the source allows one and such a range lies within `keyframe_snap_s` of both ends
        (or on the shot boundary it was trimmed from); pieces that cannot be are as `clip_ranges` makes them;
        the packet index read for it, None where the source allows no copy)."""
        cfg = self.config
        info = probe(video["uri"])
        display = (video.get("display_width") or info.width, video.get("display_height") or info.height)
        if not copyable(info, resolution_bucket(*display, self.buckets)):
            return clip_ranges(detection, cfg.min_clip_s, cfg.max_clip_s, cfg.trim_frames), None
        index = index_packets(video["uri"])
        fps = detection.fps
        slack, min_frames = round(cfg.keyframe_snap_s * fps), math.ceil(cfg.min_clip_s * fps - 1e-9)
        max_frames = math.floor(cfg.max_clip_s * fps + 1e-9)
        position = index.decode_position
        idr = [] if position is None else [i for i in range(len(position)) if index.idr[int(position[i])]]
        shot_starts = {0, *detection.cuts, *(e for _, e in detection.transitions)}
        shot_ends = {detection.frames, *detection.cuts, *(s for s, _ in detection.transitions)}
        whole_shots = clip_ranges(detection, cfg.min_clip_s, detection.frames / fps + 1, cfg.trim_frames)
        out = []
        for a, b in whole_shots:
            back = cfg.trim_frames if a - cfg.trim_frames in shot_starts else 0
            forward = cfg.trim_frames if b + cfg.trim_frames in shot_ends else 0
            pieces = split_at_keyframes(a - back, b + forward, idr, min_frames, max_frames)
            for k, (pa, pb) in enumerate(pieces):
                first, last = k == 0, k == len(pieces) - 1
                start, end = (a if first else pa), (b if last else pb)  # trimmed frames only where an IDR says so
                found = keyframe_aligned(index, start, end, slack, min_frames, back if first else 0,
                                         forward if last else 0)
                out.append(found or (start, end))
        return [(a, b) for a, b in out if b - a >= min_frames], index


def split_at_keyframes(start: int, end: int, keyframes: list[int], min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """[start, end) cut into pieces of at most `max_frames`, each cut on the farthest keyframe that keeps the
    piece between `min_frames` and `max_frames` long, or (where none does) into near-equal parts."""
    pieces, a = [], start
    while end - a > max_frames:
        fitting = [k for k in keyframes if a + min_frames <= k <= a + max_frames and end - k >= min_frames]
        if fitting:
            cut = fitting[-1]
        else:
            cut = a + round((end - a) / math.ceil((end - a) / max_frames))
        pieces.append((a, cut))
        a = cut
    pieces.append((a, end))
    return pieces
