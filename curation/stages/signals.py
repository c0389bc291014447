"""Stage 4, classical signals and filters: extracted `clips` in, `scores` rows and each clip's verdict out.

Per clip: the metadata predicates (width, height, duration) and every configured signal from
filters/ (luminance, blur, motion, static, slideshow, text overlay via OCR), each a `scores` row with
the signal's own provenance and `passed` from the thresholds. Frames are decoded from the source
video's frames of the clip range as each signal's `Sampling` asks (one decode of the range serves
every sampling), at most at the sampling's short side, and dropped before the next clip. Decoding
the source rather than the extracted file keeps the values exactly reproducible: libx264 output is
not bit-identical from run to run (mbtree), decoding is. A clip failing any threshold is rejected
with every reason joined; a clip whose frames cannot be read is an `errors` row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from curation.remote_inputs import local_input
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import JobSettings, StageConfig, owner_error
from curation.stages.common import reject_failed, usable_clips
from filters import get_signal
from filters.base import Signal, sample_indices
from filters.thresholds import FilterThresholds, evaluate, reject_reasons
from manifests.media.decode import FrameIndex, frame_index, read_frame_sets

METADATA_SIGNALS = ("width", "height", "duration")


class SignalsConfig(StageConfig):
    """The `signals` section: which filters/ signals to compute (each samples frames as its `Sampling` says) and
    their options (keyword arguments of the signal's constructor)."""

    names: tuple[str, ...] = ("luminance", "blur", "motion", "static", "slideshow", "text_overlay")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _signals: tuple[Signal, ...] = PrivateAttr()

    @model_validator(mode="after")
    def _build_signals(self) -> SignalsConfig:
        try:
            self._signals = tuple(get_signal(name, **self.options.get(name, {})) for name in self.names)
        except Exception as exc:  # noqa: BLE001 - the signals' own errors, reported as one config line
            raise owner_error(exc) from None
        return self

    @property
    def signals(self) -> tuple[Signal, ...]:
        """The configured signals, built once at validation; `setup()` loads their models on the worker."""
        return self._signals


def decode_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Size to decode at: the short side brought down to `short_side` (never up), aspect kept, even."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class SignalsStage(Stage):
    name = "signals"
    version = "1"
    resources = Resources(num_cpus=1.0)
    writes = ("clips", "scores", "errors")
    Config = SignalsConfig

    def __init__(self, config: SignalsConfig, thresholds: FilterThresholds) -> None:
        super().__init__()
        self.config = config
        self.thresholds = thresholds

    @classmethod
    def from_job(cls, job: JobSettings) -> SignalsStage:
        config = job.section(cls.name)
        assert isinstance(config, SignalsConfig), "the job config holds the signals section (the stage is not optional)"
        return cls(config, job.filter_thresholds)

    def setup(self) -> None:
        for signal in self.config.signals:
            signal.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = usable_clips(unit)
        videos = {v["video_id"]: v for v in unit.rows("videos")}
        indexes: dict[str, FrameIndex] = {}  # one demux pass per source video, not one per clip

        def judge(clip: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            video = {**videos[clip["video_id"]]}
            video["uri"] = local_input(video["uri"])  # an s3:// input is read from its local copy
            if video["video_id"] not in indexes:
                indexes[video["video_id"]] = frame_index(video["uri"])
            return self.judge(clip, video, indexes[video["video_id"]])

        judged, errors = self.isolate(clips, judge, lambda c: c["clip_id"], unit.attempt)
        scores = [s for _, rows in judged for s in rows]
        verdicts = [clip for clip, _ in judged] + reject_failed(clips, errors, self.name)
        return StageOutput({"clips": verdicts, "scores": scores, "errors": errors})

    def judge(
        self, clip: dict[str, Any], video: dict[str, Any], index: FrameIndex
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The clip with its verdict, and its scores rows."""
        values: dict[str, float] = {
            "width": float(clip["width"]), "height": float(clip["height"]),
            "duration": clip["end_time_s"] - clip["start_time_s"],
        }
        sources: dict[str, Signal | None] = dict.fromkeys(METADATA_SIGNALS)
        for signal, frames in self._sampled(clip, video, index):
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

    def _sampled(self, clip: dict[str, Any], video: dict[str, Any], index: FrameIndex) -> Iterator[tuple[Signal, np.ndarray]]:
        """Each signal with the frames it asked for: one decode of the clip's range serves every sampling."""
        start, n = clip["start_frame"], clip["end_frame"] - clip["start_frame"]
        sets = {
            signal.sampling: ([start + i for i in sample_indices(n, signal.sampling)],
                              decode_size(video["width"], video["height"], signal.sampling.short_side))
            for signal in self.config.signals
        }
        frames = read_frame_sets(video["uri"], sets, index, deinterlace=bool(video.get("interlaced")))
        for signal in self.config.signals:
            yield signal, frames[signal.sampling]
