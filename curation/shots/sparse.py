"""Shot detection on a video whose non-reference pictures were not decoded (curation.shots.decode).

The detector runs on the decoded frames alone, as a video at their mean rate: its windows are in
seconds, so they span the same time, and a change between two decoded frames is compared with the
changes between their decoded neighbours (repeating a decoded frame in the gaps instead would halve
the neighbours' mean and make fast motion look like cuts). Its boundaries are then put back at their
frames of the whole video. What it cannot know is which side of a boundary the frames it did not see
lie on: a cut found at decoded frame c may have happened at any frame after the previous decoded one.
`on_all_frames` makes those frames a transition range, which clips leave out, so no clip holds a frame
of another shot that nobody looked at.
"""

from __future__ import annotations

import numpy as np

from curation.shots.base import ShotDetection


def seen_rate(fps: float, decoded: int, frames: int) -> float:
    """The mean rate of the decoded frames, for a video of `frames` frames at `fps`."""
    return fps * decoded / frames


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
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    cuts = [c for c in cuts if not any(a <= c <= b for a, b in merged)]
    return ShotDetection(fps, frames, cuts, [(a, b) for a, b in merged])
