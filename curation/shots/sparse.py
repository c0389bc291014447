"""Shot detection on a video whose non-reference pictures were not decoded (curation.shots.decode).

The detector runs on the decoded frames alone, as a video at their mean rate: its windows are in
seconds, so they span the same time, and a change between two decoded frames is compared with the
changes between their decoded neighbours (repeating a decoded frame in the gaps instead would halve
the neighbours' mean and make fast motion look like cuts). Its boundaries are then put back at their
frames of the whole video. What it cannot know is which side of a boundary the frames it did not see
lie on: a cut found at decoded frame c may have happened at any frame after the previous decoded one.
`on_all_frames` makes those frames a transition range, which clips leave out, so no clip holds a frame
of another shot that nobody looked at.

Decoded frames are not evenly spaced: x264 decodes every other frame inside a shot but adds reference
pictures at scene changes, so a window of decoded frames spans more time inside a shot than the mean rate
says. Two tests therefore look at where the frames really are: the cut test expects a change across a gap
of g frames to be sqrt(g) times the neighbours' change per frame (`gap_scale`: a cut across one frame
among changes across two stands out as much as among changes across one), and the structure-dip test of
dissolves runs on the decoded frames (its window then spans more time inside shots, up to ±0.4 s) and
again on the signals put back on every frame (`on_every_frame`, linear between decoded frames), where it
spans the same ±0.3 s as in the every-frame detector: each finds dissolves between moving shots that the
other misses.
"""

from __future__ import annotations

import numpy as np

from curation.shots import features
from curation.shots.base import ShotDetection
from curation.shots.features import FrameSignals


def seen_rate(fps: float, decoded: int, frames: int) -> float:
    """The mean rate of the decoded frames, for a video of `frames` frames at `fps`."""
    return fps * decoded / frames


def gap_scale(positions: np.ndarray) -> np.ndarray:
    """sqrt of the frames each decoded frame's change spans (positions[k] - positions[k-1]; 1 for the first):
    how much larger than a one-frame change a change across that gap is expected to be, motion being
    partly random from frame to frame (chosen on corpus seeds 0-2 and the real clip over a linear scale)."""
    gaps = np.diff(positions, prepend=positions[0] - 1) if len(positions) else np.zeros(0)
    return np.sqrt(gaps.astype(np.float64))


def on_every_frame(sig: FrameSignals, positions: np.ndarray, frames: int, span: tuple[int, int] | None = None,
                   first: int = 0) -> FrameSignals:
    """The decoded frames' signals put back on all `frames` frames, linear between the decoded frames around
    each missing one (held before the first and after the last): a dissolve's blend is linear in time, so
    its signals are close to what decoding every frame gives. With `span`, only frames [span) of the video,
    `sig` holding decoded frames first, first + 1, ... (those around the span; curation.shots.window)."""
    i = np.arange(*(span or (0, frames)))
    k = np.clip(np.searchsorted(positions, i, side="right") - 1, 0, len(positions) - 1)
    k1 = np.minimum(k + 1, len(positions) - 1)
    frac = np.clip((i - positions[k]) / np.maximum(positions[k1] - positions[k], 1), 0, 1).astype(np.float32)
    k, k1 = k - first, k1 - first

    def fill(x: np.ndarray) -> np.ndarray:  # ROW_CHUNK frames at a time: no temporaries as long as the video
        out = np.empty((len(i), *x.shape[1:]), x.dtype)
        for s in range(0, len(i), features.ROW_CHUNK):
            a, b, f = k[s : s + features.ROW_CHUNK], k1[s : s + features.ROW_CHUNK], frac[s : s + features.ROW_CHUNK]
            out[s : s + len(a)] = x[a] + f.reshape(-1, *([1] * (x.ndim - 1))) * (x[b] - x[a])
        return out

    return FrameSignals(fill(sig.hist), fill(sig.thumb), fill(sig.luma), fill(sig.edge))


def to_seen_frames(ranges: list[tuple[int, int]], positions: np.ndarray, frames: int) -> list[tuple[int, int]]:
    """Ranges of frames of the whole video widened to start just after the decoded frame before them and to
    end at the first decoded frame at or after their end, as `on_all_frames` places them."""
    at = np.append(positions, frames)
    out = []
    for a, b in ranges:
        before = positions[:np.searchsorted(positions, a)]
        out.append((int(before[-1]) + 1 if len(before) else a, int(at[np.searchsorted(at, b)])))
    return out


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching [a, b] ranges merged, sorted."""
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def on_all_frames(detection: ShotDetection, positions: np.ndarray, frames: int, fps: float) -> ShotDetection:
    """`detection`, made on the decoded frames only (frame k of it is frame positions[k] of the video,
    increasing), as boundaries of the whole video: a cut at decoded frame k whose previous frame was not
    decoded becomes the transition [positions[k-1] + 1, positions[k]); a transition starts just after the
    decoded frame before it and ends at its first decoded frame after."""
    if len(positions) == frames:
        return ShotDetection(fps, frames, detection.cuts, detection.transitions)
    at = np.append(positions, frames)  # (decoded + 1,) a range's end k = decoded maps past the last frame
    cuts: list[int] = []
    ranges: list[tuple[int, int]] = []
    for k in detection.cuts:
        start, c = int(at[k - 1]) + 1, int(at[k])
        if start < c:
            ranges.append((start, c))
        else:
            cuts.append(c)
    ranges += [(int(at[a - 1]) + 1 if a > 0 else 0, int(at[b])) for a, b in detection.transitions]
    merged = merge_ranges(ranges)
    cuts = [c for c in cuts if not any(a <= c <= b for a, b in merged)]
    return ShotDetection(fps, frames, cuts, merged)
