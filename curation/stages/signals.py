"""Stage 4, classical signals and filters: extracted `clips` in, `scores` rows and each clip's verdict out.

Per clip: the metadata predicates (width, height, duration) and every configured signal from
filters/ (luminance, blur, motion, static, slideshow, text overlay via OCR), each a `scores` row with
the signal's own provenance and `passed` from the thresholds. Frames are decoded from the source
video's frames of the clip range as each signal's `Sampling` asks (signals with the same sampling
share one decode), at most at the sampling's short side, and dropped before the next clip. Decoding
the source rather than the extracted file keeps the values exactly reproducible: libx264 output is
not bit-identical from run to run (mbtree), decoding is. A clip failing any threshold is rejected
with every reason joined; a clip whose frames cannot be read is an `errors` row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stages.common import build_thresholds, reject_failed
from filters import get_signal
from filters.base import Sampling, Signal, sample_indices
from filters.thresholds import evaluate, reject_reasons
from manifests.media.decode import read_frames

METADATA_SIGNALS = ("width", "height", "duration")


def decode_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Size to decode at: the short side brought down to `short_side` (never up), aspect kept, even."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class SignalsStage(Stage):
    name = "signals"
    version = "1"
    resources = Resources(num_cpus=1.0)
    writes = ("clips", "scores", "errors")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.thresholds = build_thresholds(config.thresholds)
        opts = config.signals.options
        self.signals: list[Signal] = [get_signal(n, **opts.get(n, {})) for n in config.signals.names]

    def setup(self) -> None:
        for signal in self.signals:
            signal.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = [c for c in unit.rows("clips") if c["status"] == "ok" and c["uri"]]
        videos = {v["video_id"]: v for v in unit.rows("videos")}
        judged, errors = self.isolate(
            clips, lambda c: self.judge(c, videos[c["video_id"]]), lambda c: c["clip_id"], unit.attempt
        )
        scores = [s for _, rows in judged for s in rows]
        verdicts = [clip for clip, _ in judged] + reject_failed(clips, errors, self.name)
        return StageOutput({"clips": verdicts, "scores": scores, "errors": errors})

    def judge(self, clip: dict[str, Any], video: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The clip with its verdict, and its scores rows."""
        values: dict[str, float] = {
            "width": float(clip["width"]), "height": float(clip["height"]),
            "duration": clip["end_time_s"] - clip["start_time_s"],
        }
        sources: dict[str, Signal | None] = dict.fromkeys(METADATA_SIGNALS)
        for signal, frames in self._sampled(clip, video):
            values[signal.name] = signal.compute(frames, clip["fps"])
            sources[signal.name] = signal
        passed = evaluate(values, self.thresholds)
        scores = [
            self.stamp({"clip_id": clip["clip_id"], "signal": name, "value": value, "passed": passed[name]},
                       source=sources[name])
            for name, value in values.items()
        ]
        reasons = reject_reasons(values, self.thresholds)
        verdict = {**clip, "status": "rejected" if reasons else "ok", "reject_reason": "; ".join(reasons) or None}
        return verdict, scores

    def _sampled(self, clip: dict[str, Any], video: dict[str, Any]) -> Iterator[tuple[Signal, np.ndarray]]:
        """Each signal with the frames it asked for; one decode per distinct sampling."""
        frames_by_sampling: dict[Sampling, np.ndarray] = {}
        start, n = clip["start_frame"], clip["end_frame"] - clip["start_frame"]
        for signal in self.signals:
            sampling = signal.sampling
            if sampling not in frames_by_sampling:
                w, h = decode_size(video["width"], video["height"], sampling.short_side)
                indices = [start + i for i in sample_indices(n, sampling)]
                frames_by_sampling[sampling] = read_frames(video["uri"], indices, w, h)
            yield signal, frames_by_sampling[sampling]
