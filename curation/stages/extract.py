"""Stage 3, clip extraction: candidate `clips` rows in, the same rows with the clip file's URI out.

Each clip becomes `<output>/clips/<video_id>/<clip_id>.mp4` (H.264, resized to its resolution bucket,
stream-copied where that is exact: see curation.extract). The file is written under a temp name and
renamed, so a unit redone after a kill overwrites it and never leaves half a file. URIs are relative
to the output root, so the dataset folder can move. A clip that fails becomes an `errors` row and
stays in `clips` as rejected, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from curation.extract import PacketIndex, copyable, extract_clip, index_packets, resolution_bucket
from curation.remote_inputs import local_input
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig
from curation.stages.common import reject_failed
from manifests.media.decode import FrameIndex, frame_index
from manifests.media.pixels import conversion
from manifests.media.probe import VideoInfo, probe

CLIPS_DIR = "clips"


class ExtractConfig(StageConfig):
    """The `extract` section of a job config."""

    buckets: tuple[int, ...] = (144, 240, 360, 480, 720, 1080)
    crf: int = Field(20, ge=0, le=51)


def clip_uri(video_id: str, clip_id: str) -> str:
    """Where a clip file lives, relative to the output root."""
    return f"{CLIPS_DIR}/{video_id}/{clip_id}.mp4"


@dataclass(frozen=True)
class _Source:
    """A source video's probe, its frame index and (when a clip of it could be stream-copied) its packet
    index: one demux pass either way."""

    info: VideoInfo
    index: PacketIndex | None
    frames: FrameIndex


class ExtractStage(Stage):
    name = "extract"
    version = "2"
    resources = Resources(num_cpus=0.5)
    writes = ("clips", "errors")
    Config = ExtractConfig

    def __init__(self, config: ExtractConfig) -> None:
        super().__init__()
        self.config = config

    def process(self, unit: WorkUnit) -> StageOutput:
        videos = {v["video_id"]: v for v in unit.rows("videos")}
        clips = [c for c in unit.rows("clips") if c["status"] == "ok"]
        root = Path(unit.out_root)
        sources: dict[str, _Source] = {}  # probed and indexed once per video, not once per clip
        done, errors = self.isolate(
            clips, lambda c: self.extract(c, videos[c["video_id"]], root, sources), lambda c: c["clip_id"],
            unit.attempt,
        )
        return StageOutput({"clips": done + reject_failed(clips, errors, self.name), "errors": errors})

    def extract(
        self, clip: dict[str, Any], video: dict[str, Any], root: Path, sources: dict[str, _Source]
    ) -> dict[str, Any]:
        display = (video.get("display_width") or video["width"], video.get("display_height") or video["height"])
        bucket = resolution_bucket(*display, self.config.buckets)  # square pixels at the display aspect
        video = {**video, "uri": local_input(video["uri"])}  # an s3:// input is read from its local copy
        source = sources.get(video["video_id"])
        if source is None:
            info = probe(video["uri"])
            index = index_packets(video["uri"]) if copyable(info, bucket) else None
            frames = index.frames() if index is not None else frame_index(video["uri"])
            source = sources[video["video_id"]] = _Source(info, index, frames)
        uri = clip_uri(clip["video_id"], clip["clip_id"])
        result = extract_clip(video["uri"], clip["start_frame"], clip["end_frame"], root / uri, bucket,
                              crf=self.config.crf, info=source.info, index=source.index, frames=source.frames)
        pixels = conversion(source.info.bit_depth, source.info.interlaced, source.info.sar)
        return {**clip, "uri": uri, "width": result.width, "height": result.height, "conversion": pixels}
