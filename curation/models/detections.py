"""Detector output to boxes for a whole batch of frames at once: ultralytics' non-maximum suppression, batched.

ultralytics suppresses frame by frame, and each frame's boolean selections and NMS wait for the GPU: about
eight waits a frame. With several stage actors time-sharing one GPU every wait is a turn lost to the
others, so the objects stage spent more time in YOLO's post-processing than in its network. Here a
chunk of frames is one top-k, one NMS call (boxes of different frames and classes moved apart so they
never overlap) and one copy to the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

MAX_WH = 7680  # ultralytics' per-class coordinate offset (pixels) that keeps classes apart in one NMS call


@dataclass(frozen=True)
class Detections:
    """One frame's boxes as ByteTrack reads them (ultralytics' Boxes after .cpu().numpy()): xyxy (N, 4), conf (N,),
    cls (N,), with boolean indexing."""

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) centre x, centre y, width, height."""
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> Detections:
        return Detections(self.xyxy[index], self.conf[index], self.cls[index])


def batched_nms(preds: torch.Tensor, conf: float, iou: float, max_det: int, max_candidates: int
                ) -> list[np.ndarray]:
    """Per frame, rows (x1, y1, x2, y2, score, class) float32 sorted by score, at most `max_det`, from YOLO's raw
    output `preds` (B, 4 + classes, anchors) of xywh boxes and class scores.

    As ultralytics' non_max_suppression (best class per box, score > conf, class-aware NMS at `iou`), with its
    cap on candidates per frame (`max_nms`, 30000 there) at `max_candidates`, the highest scores first.
    """
    import torch
    import torchvision

    b, _, anchors = preds.shape
    p = preds.transpose(1, 2).float()  # (B, A, 4 + C)
    scores, cls = p[..., 4:].max(dim=-1)  # (B, A)
    k = min(max_candidates, anchors)
    top, order = scores.topk(k, dim=1)  # (B, k), highest first
    xywh = torch.gather(p[..., :4], 1, order[..., None].expand(-1, -1, 4))  # (B, k, 4)
    xyxy = torch.cat([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], dim=-1)
    cls = torch.gather(cls, 1, order).float()  # (B, k)
    frame = torch.arange(b, device=preds.device, dtype=torch.float32)[:, None].expand(-1, k)  # (B, k)
    # frames apart along x, classes apart along y: no two boxes of different frames or classes overlap
    shift = torch.stack([frame * MAX_WH, cls * MAX_WH], dim=-1).repeat(1, 1, 2)  # (B, k, 4)
    keep = torchvision.ops.nms((xyxy + shift).reshape(-1, 4), top.reshape(-1), iou)  # (M,) by score, descending
    rows = torch.cat([xyxy.reshape(-1, 4), top.reshape(-1, 1), cls.reshape(-1, 1), frame.reshape(-1, 1)], dim=1)
    kept = rows[keep].cpu().numpy()  # (M, 7): the one wait for the GPU
    kept = kept[kept[:, 4] > conf]
    out = []
    for i in range(b):
        mine = kept[kept[:, 6] == i, :6]  # still by score, descending
        out.append(np.ascontiguousarray(mine[:max_det], dtype=np.float32))
    return out
