"""YOLO detection with ultralytics' own tracker (ByteTrack) across the frames of one clip.

Random-init builds the architecture from its yaml (no weights file); real weights load through
ultralytics with ULTRALYTICS_SAFE_LOAD (weights-only unpickling). Frames go through in chunks of
`batch`: each chunk is uploaded once, letterboxed and normalised as tensor ops on the device
(`letterbox`, as ultralytics' LetterBox does per frame in numpy), run through the network as
ultralytics wraps it, and suppressed in one batched call (`curation/models/detections.py`); one
tracker (ultralytics' ByteTrack by default) then follows the boxes through the whole clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.detections import Detections, batched_nms
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
    max_candidates: int = Field(default=300, ge=1)  # boxes per frame into NMS, best first (ultralytics' max_nms)
    tracker: str = "bytetrack.yaml"
    batch: int = Field(default=16, ge=1)
    device: str = "auto"  # auto: the GPU Ray assigned this actor, else the CPU; or "cpu", "cuda:1", ...
    half: bool = False  # fp16 weights and inputs on CUDA (ultralytics' own half mode; ignored on a CPU)


class YoloTracker:
    """Detect and track objects through a clip; `setup()` loads the model once per worker."""

    name = "yolo"
    # 3: one tracker through the clip (ultralytics' track mode on a list of frames reset it at every frame of a
    # clip's first chunk), batched NMS; 2: letterbox on the device (its bilinear resize rounds as torch does)
    version = "3"

    def __init__(self, config: YoloConfig) -> None:
        self.config = config
        self.model_name = Path(config.weights.weights).stem
        self.weights_id = ""
        self.model: Any = None  # ultralytics' YOLO once set up (imported through import_ultralytics: untyped here)
        self.network: Any = None  # its network in ultralytics' AutoBackend, on the device

    def resolve(self) -> ResolvedWeights:
        """Find the weights (or random-init when allowed); raises WeightsError with how to provide them."""
        return resolve_weights(self.config.weights, YOLO_FAMILY)

    def setup(self) -> None:
        self.device = torch_device(self.config.device)
        ultralytics = import_ultralytics()
        from ultralytics.nn.autobackend import AutoBackend
        from ultralytics.utils.torch_utils import select_device

        resolved = self.resolve()
        with seeded_init():
            self.model = ultralytics.YOLO(self.config.arch if resolved.random_init else str(resolved.path))
        device = select_device(self.device, verbose=False)
        # the network as ultralytics' predictor wraps it (conv + batch norm fused, fp16 on a GPU when asked)
        self.network = AutoBackend(self.model.model, device=device, fp16=self.config.half and device.type != "cpu",
                                   fuse=True, verbose=False, end2end=False).eval()
        self.stride = int(max(self.model.model.stride))
        self.names = dict(self.model.names)
        self.weights_id = resolved.weights_id

    def _tracker(self) -> Any:
        """A fresh ByteTrack (or other ultralytics tracker) from the config's yaml, as ultralytics builds it."""
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(self.config.tracker)))
        cfg.device = self.network.device
        if cfg.tracker_type not in TRACKER_MAP:
            raise ValueError(f"yolo.tracker: unknown tracker_type {cfg.tracker_type!r}")
        return TRACKER_MAP[cfg.tracker_type](args=cfg)

    def track(self, frames: np.ndarray) -> list[Track]:
        """Tracks (ids 1.. by first appearance) over RGB frames (T, H, W, 3); box per frame, no masks yet.

        Per chunk of `batch` frames: one upload, the letterbox and the network on the device, `batched_nms`
        with one copy back; then the tracker frame by frame on the host, as ultralytics' track mode does."""
        if self.model is None:
            raise RuntimeError("YoloTracker.setup() was not called")
        import torch

        c = self.config
        tracker = self._tracker()
        seen: dict[int, Track] = {}
        h, w = frames.shape[1:3]
        for first in range(0, len(frames), c.batch):
            chunk = torch.from_numpy(np.ascontiguousarray(frames[first : first + c.batch])).to(self.network.device)
            boxed, scale, top, left = letterbox(chunk, c.imgsz, self.stride)  # (B, 3, h', w') on the device
            with torch.inference_mode():
                preds = self.network(boxed.half() if self.network.fp16 else boxed)
            preds = preds[0] if isinstance(preds, (list, tuple)) else preds  # (B, 4 + classes, anchors)
            for k, rows in enumerate(batched_nms(preds, c.conf, c.iou, c.max_det, c.max_candidates)):
                rows[:, 0:4:2] = ((rows[:, 0:4:2] - left) / scale).clip(0, w)  # letterbox -> frame pixels
                rows[:, 1:4:2] = ((rows[:, 1:4:2] - top) / scale).clip(0, h)
                found = tracker.update(Detections(rows[:, :4], rows[:, 4], rows[:, 5]), None)  # (N, 8)
                if not len(found):  # no active track: an empty 1-D array
                    continue
                found[:, 0:4:2], found[:, 1:4:2] = found[:, 0:4:2].clip(0, w), found[:, 1:4:2].clip(0, h)  # as results
                for x1, y1, x2, y2, tid, conf, cls, _ in found:
                    name = self.names.get(int(cls), str(int(cls)))
                    tr = seen.setdefault(int(tid), Track(int(tid), class_name=str(name), confidence=0.0, boxes=[]))
                    assert tr.boxes is not None, "YOLO tracks are made with a box list"
                    tr.frames.append(first + k)
                    tr.boxes.append([float(x1), float(y1), float(x2), float(y2)])
                    tr.confidence = max(tr.confidence, float(conf))
        tracks = sorted(seen.values(), key=lambda tr: (tr.frames[0], tr.track_id))
        for i, tr in enumerate(tracks, start=1):
            tr.track_id = i
        return tracks
