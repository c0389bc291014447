"""YOLO detection with ultralytics' own tracker (ByteTrack) across the frames of one clip.

Random-init builds the architecture from its yaml (no weights file); real weights load through
ultralytics with ULTRALYTICS_SAFE_LOAD (weights-only unpickling). Frames go through in chunks of
`batch`; the first chunk of a clip starts fresh trackers, later chunks keep them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.devices import torch_device
from curation.models.tracks import Track
from curation.models.ultralytics_env import download_ultralytics_asset, import_ultralytics
from curation.models.weights import Family, ResolvedWeights, WeightsConfig, resolve_weights, seeded_init

YOLO_FAMILY = Family("yolo", download_ultralytics_asset)


class YoloConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: WeightsConfig = WeightsConfig(weights="yolo11n.pt")
    arch: str = "yolo11n.yaml"  # architecture built when the weights are random-init
    imgsz: int = Field(default=640, ge=32)
    conf: float = Field(default=0.25, ge=0, le=1)
    iou: float = Field(default=0.5, ge=0, le=1)
    max_det: int = Field(default=50, ge=1)
    tracker: str = "bytetrack.yaml"
    batch: int = Field(default=16, ge=1)
    device: str = "auto"  # auto: the GPU Ray assigned this actor, else the CPU; or "cpu", "cuda:1", ...
    half: bool = False  # fp16 weights and inputs on CUDA (ultralytics' own half mode; ignored on a CPU)


class YoloTracker:
    """Detect and track objects through a clip; `setup()` loads the model once per worker."""

    name = "yolo"
    version = "1"

    def __init__(self, config: YoloConfig) -> None:
        self.config = config
        self.model_name = Path(config.weights.weights).stem
        self.weights_id = ""
        self.model: Any = None  # ultralytics' YOLO once set up (imported through import_ultralytics: untyped here)

    def resolve(self) -> ResolvedWeights:
        """Find the weights (or random-init when allowed); raises WeightsError with how to provide them."""
        return resolve_weights(self.config.weights, YOLO_FAMILY)

    def setup(self) -> None:
        self.device = torch_device(self.config.device)
        ultralytics = import_ultralytics()
        resolved = self.resolve()
        with seeded_init():
            self.model = ultralytics.YOLO(self.config.arch if resolved.random_init else str(resolved.path))
        self.weights_id = resolved.weights_id

    def track(self, frames: np.ndarray) -> list[Track]:
        """Tracks (ids 1.. by first appearance) over RGB frames (T, H, W, 3); box per frame, no masks yet."""
        if self.model is None:
            raise RuntimeError("YoloTracker.setup() was not called")
        c = self.config
        seen: dict[int, Track] = {}
        for first in range(0, len(frames), c.batch):
            chunk = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames[first : first + c.batch]]  # BGR
            results = self.model.track(chunk, persist=first > 0, tracker=c.tracker, imgsz=c.imgsz, conf=c.conf,
                                       iou=c.iou, max_det=c.max_det, device=self.device, half=c.half, verbose=False)
            for k, r in enumerate(results):
                if r.boxes is None or r.boxes.id is None:
                    continue
                for tid, box, cls, conf in zip(r.boxes.id.int().tolist(), r.boxes.xyxy.tolist(),
                                               r.boxes.cls.int().tolist(), r.boxes.conf.tolist()):
                    tr = seen.setdefault(tid, Track(tid, class_name=str(r.names.get(cls, cls)), confidence=0.0, boxes=[]))
                    assert tr.boxes is not None, "YOLO tracks are made with a box list"
                    tr.frames.append(first + k)
                    tr.boxes.append([float(v) for v in box])
                    tr.confidence = max(tr.confidence, float(conf))
        tracks = sorted(seen.values(), key=lambda tr: (tr.frames[0], tr.track_id))
        for i, tr in enumerate(tracks, start=1):
            tr.track_id = i
        return tracks
