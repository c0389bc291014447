"""Stage 5, objects: extracted `clips` in, `objects` rows (a track each) and `object_frames` rows (its box and
COCO RLE mask on each frame) out.

Each ok clip's file is decoded once (at most `short_side` on its short side) and handed to every
configured method: the weights-free motion proposer (its own provenance, no model) and/or YOLO
detection + tracking with SAM masks prompted by the boxes (their weights id, `random-init` here). SAM
runs only on every `keyframes.interval`-th frame YOLO sees and the masks are carried to the frames
between (curation/models/keyframes.py; benchmarks/mask_carry.py measured the default), so each tracked
frame still has its mask; a track seen on no keyframe gets SAM on its middle frame.
A track's `confidence` is the detector's best score, or for the proposer its temporal mask IoU (how
stable the mask is; `temporal_iou` holds it for every method). Frame indices are relative to the clip
file; masks are at the decoded size (`mask_height` x `mask_width`), boxes in those pixels. A clip that cannot be decoded is an
`errors` row; a clip with no moving or detected object simply has no rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from curation.models import mask_proposer
from curation.models.keyframes import VERSION as KEYFRAMES_VERSION
from curation.models.keyframes import KeyframeConfig, keyframes
from curation.models.mask_proposer import ProposerConfig
from curation.models.sam import SamConfig, SamMasker
from curation.models.tracks import Track
from curation.models.yolo import YoloConfig, YoloTracker
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig
from curation.stages.common import usable_clips
from curation.stages.signals import decode_size
from filters.base import evenly_spaced
from manifests.media.decode import read_frames
from manifests.media.probe import probe
from manifests.schema import NO_MODEL


class ObjectsConfig(StageConfig):
    """The `objects` section of a job config."""

    methods: tuple[Literal["proposer", "yolo-sam"], ...] = ("proposer",)
    short_side: int = Field(360, ge=16)
    max_frames: int = Field(300, ge=1)  # frames per clip, evenly spread when the clip is longer
    model_frames: int | None = Field(None, ge=1)  # of those, how many YOLO + SAM see (evenly spread); None: all
    proposer: dict[str, Any] = Field(default_factory=dict)  # ProposerConfig fields
    yolo: YoloConfig = YoloConfig()
    sam: SamConfig = SamConfig()
    keyframes: KeyframeConfig = KeyframeConfig()  # which of the model frames SAM sees, how masks reach the rest
    _proposer_config: ProposerConfig = PrivateAttr()

    @model_validator(mode="after")
    def _proposer_fields(self) -> ObjectsConfig:
        try:
            self._proposer_config = ProposerConfig(**self.proposer)
        except TypeError as exc:
            raise ValueError(f"objects.proposer: {exc}") from None
        if not self.methods:
            raise ValueError("objects.methods is empty; name proposer and/or yolo-sam")
        return self

    @property
    def proposer_config(self) -> ProposerConfig:
        """The proposer's frozen config from `proposer`, built once at validation."""
        return self._proposer_config


@dataclass
class _Proposer:
    """The proposer seen as a provenance source (name, version, model and weights)."""

    config: ProposerConfig
    name: str = mask_proposer.NAME
    version: str = mask_proposer.VERSION
    model_name: str = NO_MODEL
    weights_id: str = NO_MODEL


def object_id(clip_id: str, source: str, track_id: int) -> str:
    return hashlib.sha256(f"{clip_id}\0{source}\0{track_id}".encode()).hexdigest()[:24]


class ObjectsStage(Stage):
    name = "objects"
    version = "1"
    resources = Resources(num_cpus=1.0)
    writes = ("objects", "object_frames", "errors")
    Config = ObjectsConfig
    optional = True

    def __init__(self, config: ObjectsConfig) -> None:
        super().__init__()
        self.config = config
        self.proposer = _Proposer(config.proposer_config)
        self.yolo = YoloTracker(config.yolo) if "yolo-sam" in config.methods else None
        self.sam = SamMasker(config.sam) if self.yolo else None

    def preflight(self) -> None:
        if self.yolo is not None and self.sam is not None:  # built together: both or neither
            self.yolo.resolve()
            self.sam.resolve()

    def setup(self) -> None:
        if self.yolo is not None and self.sam is not None:
            self.yolo.setup()
            self.sam.setup()

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = usable_clips(unit)
        found, errors = self.isolate(clips, lambda c: self.clip_objects(c, Path(unit.out_root)),
                                     lambda c: c["clip_id"], unit.attempt)
        objects = [obj for rows in found for obj, _ in rows]
        frames = [f for rows in found for _, per_frame in rows for f in per_frame]
        return StageOutput({"objects": objects, "object_frames": frames, "errors": errors})

    def clip_objects(self, clip: dict[str, Any], root: Path) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """(objects row, its object_frames rows) for each track found in the clip."""
        path = root / clip["uri"]
        info = probe(path)
        kept = evenly_spaced(info.frames, self.config.max_frames)
        w, h = decode_size(info.width, info.height, self.config.short_side)
        frames = read_frames(path, kept, w, h)  # (T, H, W, 3), decoded once
        rows: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if "proposer" in self.config.methods:
            tracks = mask_proposer.propose(frames, self.proposer.config)
            for tr in tracks:
                tr.class_name, tr.confidence = mask_proposer.CLASS_NAME, tr.stability() or 0.0
            rows += [self._row(clip, tr, kept, self.proposer) for tr in tracks]
        if self.yolo is not None:
            sub = evenly_spaced(len(kept), self.config.model_frames or len(kept))
            rows += [self._row(clip, tr, [kept[i] for i in sub], self.yolo) for tr in self._yolo_sam(frames[sub])]
        return rows

    def _yolo_sam(self, frames: np.ndarray) -> list[Track]:
        """YOLO tracks with a mask per tracked box: SAM's on keyframes, carried on the frames between."""
        assert self.yolo is not None and self.sam is not None, "called only when yolo-sam is among the methods"
        tracks = self.yolo.track(frames)
        keys = set(keyframes(len(frames), self.config.keyframes.interval))
        prompts: list[dict[int, list[float]]] = []  # per track: SAM's frames and boxes
        for tr in tracks:
            assert tr.boxes is not None, "YOLO tracks carry their detector boxes"
            chosen = [j for j, f in enumerate(tr.frames) if f in keys] or [len(tr.frames) // 2]
            prompts.append({tr.frames[j]: tr.boxes[j] for j in chosen})
        masks = self.sam.masks_of_tracks(frames, prompts, [tr.frames for tr in tracks], self.config.keyframes.carry)
        for tr, got in zip(tracks, masks):
            tr.masks = [got[f] for f in tr.frames]
        return tracks

    def _row(self, clip: dict[str, Any], tr: Track, kept: list[int], source: Any
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        h, w = tr.masks[0].shape if tr.masks else (None, None)
        oid = object_id(clip["clip_id"], source.name, tr.track_id)
        indices = [int(kept[f]) for f in tr.frames]
        boxes = tr.frame_boxes()
        stability = tr.stability() if tr.masks else None
        row = {
            "object_id": oid,
            "clip_id": clip["clip_id"],
            "track_id": tr.track_id,
            "class_name": tr.class_name,
            "confidence": float(tr.confidence),
            "frame_indices": indices,
            "boxes": boxes,
            "mask_rle": None,  # schema 1.1+: masks live in object_frames
            "mask_height": h,
            "mask_width": w,
            "mask_uri": None,
            "temporal_iou": stability,
        }
        rles = tr.rles() if tr.masks else [None] * len(indices)
        per_frame = [{"object_id": oid, "clip_id": clip["clip_id"], "frame_index": f, "box": box, "mask_rle": rle,
                      "mask_height": h, "mask_width": w} for f, box, rle in zip(indices, boxes, rles)]
        provenance = self.provenance(source)
        if source is self.yolo:  # two models made this row: name both, and both weights ids
            assert self.sam is not None, "SAM is built with YOLO"
            provenance["model_name"] = f"{self.yolo.model_name}+{self.sam.model_name}"
            ids = {self.yolo.weights_id, self.sam.weights_id}
            provenance["weights_id"] = ids.pop() if len(ids) == 1 else f"{self.yolo.weights_id}+{self.sam.weights_id}"
            provenance["stage_version"] += f"+{self.sam.name}-{self.sam.version}"  # the masker's code, as YOLO's
            k = self.config.keyframes
            if k.interval > 1:  # masks between SAM's keyframes are carried, not segmented: say so and how
                how = "sam2-video" if self.sam.config.backend == "sam2-video" else f"{k.carry}-{KEYFRAMES_VERSION}"
                provenance["stage_version"] += f"-every-{k.interval}-{how}"
        return {**row, **provenance}, [{**f, **provenance} for f in per_frame]
