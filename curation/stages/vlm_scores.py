"""Stage 7, VLM scores: extracted `clips` in, a `vlm_quality` score row per clip and its `captions` row out.

Each ok clip's file is decoded once at `frames_per_clip` evenly spread frames; the questions go to
the OpenAI-compatible server through `VlmClient.map` (at most `max_concurrency` in flight). A clip
whose frames cannot be read, or whose answer is malformed, refused, timed out or an HTTP error, is
one `errors` row (never the API key). The rows name the served model; its weights are the server's
(`weights_id` "served:<model>").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from curation.models.vlm import VlmClient, VlmConfig, VlmError
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig
from curation.stages.common import usable_clips
from curation.stages.signals import decode_size
from filters.base import evenly_spaced
from manifests.media.decode import read_frames
from manifests.media.probe import probe


class VlmScoresConfig(StageConfig):
    """The `vlm_scores` section of a job config."""

    client: VlmConfig
    frames_per_clip: int = Field(4, ge=1)
    caption: bool = True


class VlmScoresStage(Stage):
    name = "vlm_scores"
    version = "1"
    resources = Resources(num_cpus=0.25)
    writes = ("scores", "captions", "errors")
    Config = VlmScoresConfig
    optional = True

    def __init__(self, config: VlmScoresConfig) -> None:
        super().__init__()
        self.config = config
        self.model_name = config.client.model
        self.weights_id = f"served:{config.client.model}"  # the server's weights are not ours to hash
        self.client: VlmClient | None = None

    def setup(self) -> None:
        self.client = VlmClient(self.config.client)

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = usable_clips(unit)
        root = Path(unit.out_root)
        decoded, errors = self.isolate(clips, lambda c: (c["clip_id"], self.frames(root / c["uri"])),
                                       lambda c: c["clip_id"], unit.attempt)
        answers = self._ready_client().map(self.ask, [frames for _, frames in decoded])
        scores, captions = [], []
        for (clip_id, _), got in zip(decoded, answers):
            if isinstance(got, VlmError):
                errors.append(self.error_row(clip_id, got, unit.attempt))
                continue
            rating, caption = got
            scores.append(self.stamp({"clip_id": clip_id, "signal": "vlm_quality", "value": float(rating), "passed": None}))
            if caption is not None:
                captions.append(self.stamp({"clip_id": clip_id, "caption": caption}))
        return StageOutput({"scores": scores, "captions": captions, "errors": errors})

    def frames(self, path: Path) -> np.ndarray:
        info = probe(path)
        w, h = decode_size(info.width, info.height, self.config.client.image_short_side)
        return read_frames(path, evenly_spaced(info.frames, self.config.frames_per_clip), w, h)

    def ask(self, frames: np.ndarray) -> tuple[int, str | None]:
        """(quality rating, caption or None); the first VlmError ends the clip's questions."""
        client = self._ready_client()
        rating = client.rate_quality(frames).rating
        caption = client.caption(frames).caption if self.config.caption else None
        return rating, caption

    def _ready_client(self) -> VlmClient:
        assert self.client is not None, "setup() makes the client before any unit is processed"
        return self.client

