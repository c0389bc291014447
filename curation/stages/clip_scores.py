"""Stage 6, CLIP scores: extracted `clips` in, `scores` rows (alignment, consistency, aesthetic) and
`clip_embeddings` rows out.

Each ok clip's file is decoded once at `frames_per_clip` evenly spread frames and embedded in
batches; the embeddings of every clip of the unit go to one file per shard,
`<output>/embeddings/clip/<unit id>.npz` (written under a temp name, fsynced, then renamed), which the
clip's `clip_embeddings` row references (uri, key, frames), so re-scoring against new text is cheap
(`rescore`). No filter acts on these values while the weights are
`random-init` (`passed` stays null).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from curation.models.clip import ClipConfig, ClipEmbedder, text_alignment
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig
from curation.stages.common import usable_clips
from filters.base import evenly_spaced
from manifests.media.atomic import atomic_output
from manifests.media.decode import read_frames
from manifests.media.probe import probe

EMBEDDINGS_DIR = "embeddings/clip"


class ClipScoresConfig(StageConfig):
    """The `clip_scores` section of a job config."""

    clip: ClipConfig = ClipConfig()
    frames_per_clip: int = Field(8, ge=1)
    text: str | None = "a video"  # the caption or instruction to align against; None = no alignment score


def embeddings_uri(unit_id: str) -> str:
    """Where a unit's frame embeddings live, relative to the output root."""
    return f"{EMBEDDINGS_DIR}/{unit_id}.npz"


def save_embeddings(path: Path, embeddings: dict[str, np.ndarray]) -> None:
    """{clip id: (T, D)} as float16 arrays in one npz, written atomically and durably (rows will name it)."""
    with atomic_output(path) as tmp:
        halves = {k: v.astype(np.float16) for k, v in embeddings.items()}
        np.savez(tmp, **halves)  # type: ignore[arg-type]  # numpy's stubs match **halves against allow_pickle: bool


def rescore(path: Path, embedder: ClipEmbedder, text: str) -> dict[str, float]:
    """Text alignment of every clip in an embeddings file against new text, without decoding a frame."""
    t = embedder.texts([text])[0]
    with np.load(path) as z:
        return {cid: text_alignment(z[cid].astype(np.float32), t) for cid in z.files}


class ClipScoresStage(Stage):
    name = "clip_scores"
    version = "1"
    resources = Resources(num_cpus=1.0)
    writes = ("scores", "clip_embeddings", "errors")
    Config = ClipScoresConfig
    optional = True

    def __init__(self, config: ClipScoresConfig) -> None:
        super().__init__()
        self.config = config
        self.embedder = ClipEmbedder(config.clip)

    def preflight(self) -> None:
        self.embedder.resolve()

    def setup(self) -> None:
        self.embedder.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = usable_clips(unit)
        root = Path(unit.out_root)
        done, errors = self.isolate(clips, lambda c: (c["clip_id"], *self.embed(root / c["uri"])),
                                    lambda c: c["clip_id"], unit.attempt)
        uri = embeddings_uri(unit.unit_id)
        if done:
            save_embeddings(root / uri, {clip_id: emb for clip_id, _, emb in done})
        rows, stored = [], []
        for clip_id, indices, emb in done:
            stored.append(self.stamp({"clip_id": clip_id, "uri": uri, "key": clip_id, "frame_indices": indices,
                                      "dim": int(emb.shape[1])}, source=self.embedder))
            for signal, value in self.embedder.scores(emb, self.config.text).items():
                if value is not None:
                    rows.append(self.stamp({"clip_id": clip_id, "signal": signal, "value": value, "passed": None},
                                           source=self.embedder))
        return StageOutput({"scores": rows, "clip_embeddings": stored, "errors": errors})

    def embed(self, path: Path) -> tuple[list[int], np.ndarray]:
        """The clip-relative frames embedded, and their embeddings (T, D)."""
        indices = evenly_spaced(probe(path).frames, self.config.frames_per_clip)
        return indices, self.embedder.frames(read_frames(path, indices))  # (T, D)
