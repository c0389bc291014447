"""YOLO detection with ultralytics' own tracker (ByteTrack) across the frames of one clip.

Random-init builds the architecture from its yaml (no weights file); real weights load through
ultralytics with ULTRALYTICS_SAFE_LOAD (weights-only unpickling). Frames go through in chunks of
`batch`; the first chunk of a clip starts fresh trackers, later chunks keep them. Each chunk is
letterboxed and normalised as tensor ops on the model's device (`letterbox`), as ultralytics' own
LetterBox does it per frame in numpy on the host, and the boxes are mapped back to the frame's pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.devices import torch_device
from curation.models.tracks import Track
from curation.models.ultralytics_env import download_ultralytics_asset, import_ultralytics
from curation.models.weights import Family, ResolvedWeights, WeightsConfig, resolve_weights, seeded_init

if TYPE_CHECKING:
    import torch

YOLO_FAMILY = Family("yolo", download_ultralytics_asset)
PAD_VALUE = 114  # ultralytics' letterbox grey


def letterbox_geometry(height: int, width: int, imgsz: int, stride: int) -> tuple[float, int, int, int, int]:
    """(scale, resized height, resized width, top pad, left pad) of ultralytics' LetterBox with auto=True (the
    smallest stride-multiple rectangle) for one frame size; bottom and right pads make the rest."""
    r = min(imgsz / height, imgsz / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    dw, dh = (imgsz - new_w) % stride / 2, (imgsz - new_h) % stride / 2
    return r, new_h, new_w, round(dh - 0.1), round(dw - 0.1)


def letterbox(frames: torch.Tensor, imgsz: int, stride: int) -> tuple[torch.Tensor, float, int, int]:
    """RGB uint8 frames (B, H, W, 3) on any device -> (B, 3, h, w) float in [0, 1] letterboxed as ultralytics
    does (bilinear resize, grey padding to a multiple of `stride`), with the scale and (top, left) pads."""
    import torch.nn.functional as F
    b, h, w, _ = frames.shape
    r, new_h, new_w, top, left = letterbox_geometry(h, w, imgsz, stride)
    x = frames.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False).round_().clamp_(0, 255)
    dh, dw = (imgsz - new_h) % stride, (imgsz - new_w) % stride
    x = F.pad(x, (left, dw - left, top, dh - top), value=PAD_VALUE)  # (B, 3, new_h + dh, new_w + dw)
    return x.div_(255), r, top, left


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
    version = "2"  # 2: letterbox on the device (bilinear resize rounds as torch does, not as cv2 does)

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
        import torch

        stride = int(max(self.model.model.stride))
        h, w = frames.shape[1:3]
        for first in range(0, len(frames), c.batch):
            chunk = torch.from_numpy(np.ascontiguousarray(frames[first : first + c.batch])).to(self.device)
            boxed, scale, top, left = letterbox(chunk, c.imgsz, stride)  # (B, 3, h', w') on the device
            results = self.model.track(boxed, persist=first > 0, tracker=c.tracker, imgsz=c.imgsz, conf=c.conf,
                                       iou=c.iou, max_det=c.max_det, device=self.device, half=c.half, verbose=False)
            for k, r in enumerate(results):
                if r.boxes is None or r.boxes.id is None:
                    continue
                xyxy = (r.boxes.xyxy - r.boxes.xyxy.new_tensor([left, top, left, top])) / scale  # letterbox -> frame
                xyxy[:, 0::2].clamp_(0, w)
                xyxy[:, 1::2].clamp_(0, h)
                for tid, box, cls, conf in zip(r.boxes.id.int().tolist(), xyxy.tolist(),
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
