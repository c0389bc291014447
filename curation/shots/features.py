"""Per-frame signals for the fast shot detector, computed on small decoded frames in batches.

Four cheap signals per frame: a joint HSV colour histogram (robust to motion, blind to same-palette
cuts), a grey thumbnail (sees layout changes; also the pixel-linearity test of dissolves and fades),
the mean luminance (fades to black) and the structure energy, the mean squared grey gradient: a blend
of two unrelated pictures has about half their edge energy, whichever way the camera moves in each, so
it dips in the middle of a dissolve. They are small (a few hundred floats a frame), yet an hour's would be
hundreds of MB: the detector holds a window of them at a time (curation.shots.window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

DECODE_W, DECODE_H = 64, 36  # scaled in the decoder (curation.shots.decode): the detector never sees full-res pixels
THUMB_W, THUMB_H = 32, 18
H_BINS, S_BINS, V_BINS = 16, 4, 4
N_BINS = H_BINS * S_BINS * V_BINS


@dataclass(frozen=True)
class FrameSignals:
    hist: np.ndarray  # (N, N_BINS) float32, rows sum to 1
    thumb: np.ndarray  # (N, THUMB_H * THUMB_W) float32 grey in [0, 255]
    luma: np.ndarray  # (N,) float32 mean grey in [0, 255]
    edge: np.ndarray  # (N,) float32 mean squared grey gradient (x and y forward differences)

    def __len__(self) -> int:
        return len(self.luma)


def batch_signals(frames: np.ndarray) -> FrameSignals:
    """Signals of a batch of RGB uint8 frames (T, H, W, 3), vectorised over the batch."""
    t, h, w, _ = frames.shape
    hsv = cv2.cvtColor(frames.reshape(t * h, w, 3), cv2.COLOR_RGB2HSV).reshape(t, h * w, 3)
    idx = (hsv[..., 0].astype(np.int32) * H_BINS // 180) * (S_BINS * V_BINS)
    idx += (hsv[..., 1].astype(np.int32) * S_BINS // 256) * V_BINS + hsv[..., 2].astype(np.int32) * V_BINS // 256
    idx += np.arange(t, dtype=np.int32)[:, None] * N_BINS
    hist = np.bincount(idx.reshape(-1), minlength=t * N_BINS).reshape(t, N_BINS).astype(np.float32) / (h * w)
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (T, H, W)
    thumb = np.stack([cv2.resize(g, (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA).reshape(-1) for g in grey])
    return FrameSignals(hist, thumb, grey.mean(axis=(1, 2)), structure_energy(grey))


def structure_energy(grey: np.ndarray) -> np.ndarray:
    """Mean squared forward difference along x and y of each grey frame (T, H, W)."""
    dx, dy = np.diff(grey, axis=2), np.diff(grey, axis=1)
    return np.square(dx).mean(axis=(1, 2)) + np.square(dy).mean(axis=(1, 2))


def concat_signals(parts: Iterable[FrameSignals]) -> FrameSignals:
    parts = list(parts)
    if not parts:
        empty = np.zeros(0, np.float32)
        return FrameSignals(np.zeros((0, N_BINS), np.float32), np.zeros((0, THUMB_H * THUMB_W), np.float32), empty, empty)
    return FrameSignals(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("hist", "thumb", "luma", "edge")))


ROW_CHUNK = 4096
"""Frames per slice of the row-wise reductions below. Their (frames, features) temporaries would otherwise be
as long as the video: an hour of 1080p30 took the shots stage to 1.4 GiB, most of it such temporaries."""


def by_row_chunks(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fn(a, b) of row-aligned (N, F) arrays, ROW_CHUNK rows at a time (each row's result is its own)."""
    if a.ndim < 2 or len(a) <= ROW_CHUNK:
        return fn(a, b)
    return np.concatenate([fn(a[s : s + ROW_CHUNK], b[s : s + ROW_CHUNK]) for s in range(0, len(a), ROW_CHUNK)])


def by_centre_chunks(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, w: int) -> np.ndarray:
    """fn over parts of x that overlap by 2w rows, ROW_CHUNK window centres at a time; fn maps a part of L rows
    to its L - 2w centres [w, L - w)."""
    parts = [fn(x[s : s + ROW_CHUNK + 2 * w]) for s in range(0, len(x) - 2 * w, ROW_CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, x.dtype)


def hist_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Half L1 distance between histogram rows: 0 for equal colour content, 1 for disjoint."""
    return by_row_chunks(lambda x, y: 0.5 * np.abs(x - y).sum(axis=-1), a, b)


def thumb_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute grey difference between thumbnail rows, scaled to [0, 1]."""
    return by_row_chunks(lambda x, y: np.abs(x - y).mean(axis=-1) / 255.0, a, b)
