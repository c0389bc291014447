"""The fast detector's decision in bounded memory: signals of a window of frames at a time, only marks kept.

The decision (curation.shots.fast) has two parts. Its tests look at a few frames around each frame (at most
2 * dip_half_s of them); what they find is a few bytes a frame (`fast.Marks`): the change from the frame
before, three candidate masks, and histogram rows only near candidates and dark edges. What joins
candidates into cuts and transitions (thresholds against neighbours, suppression, merging, filtering)
reads only those marks. So the tests run on windows of WINDOW_FRAMES frames of signals plus a margin on each
side longer than any test's reach, each window's marks kept for its own frames only, and the joining runs
once on the marks of the whole video: the same boundaries as deciding on all signals at once, while the
signals held are a window's, whatever the video's length.

With `skip_nonref` the decoded frames' marks need the decoded frames' mean rate and place, and the dip test's
signals put back on every frame need every decoded frame's place: both come from the packets before decoding
(`decode.plan_sparse`) and are checked against what the decoder gave at the end (`PlanMismatch` if not).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from curation.shots.base import ShotDetection
from curation.shots.decode import SmallVideo, SparsePlan
from curation.shots.fast import FastConfig, Marks, decide, decide_sparse, half_windows, marks_of
from curation.shots.features import FrameSignals, batch_signals, concat_signals
from curation.shots.sparse import on_every_frame, seen_rate

WINDOW_FRAMES = 4096
"""Frames whose marks each window keeps (tests set it small). Signals of 3.3 KB a frame: ~14 MB a window."""


class PlanMismatch(Exception):
    """The decoder gave other pictures than the packets said: the plan's marks are not the decision's."""


def _slice(sig: FrameSignals, a: int, b: int) -> FrameSignals:
    return FrameSignals(*(getattr(sig, f)[a:b].copy() for f in ("hist", "thumb", "luma", "edge")))


def _windows(batches: Iterator[np.ndarray], margin: int) -> Iterator[tuple[FrameSignals, int, int, int, bool]]:
    """(signals of frames first.., first, core start, core end, last): consecutive cores tile the video, each
    with `margin` frames of signals on both sides (fewer only at the video's ends)."""
    held: list[FrameSignals] = []
    first = core = count = 0
    for batch in batches:
        held.append(batch_signals(batch))
        count += len(batch)
        while first + count >= core + WINDOW_FRAMES + margin:
            sig = concat_signals(held)
            yield sig, first, core, core + WINDOW_FRAMES, False
            core += WINDOW_FRAMES
            drop = max(0, core - margin - first)
            held, first, count = [_slice(sig, drop, len(sig))], first + drop, count - drop
    sig = concat_signals(held)
    yield sig, first, core, first + len(sig), True


class _MarkList:
    """Marks of consecutive ranges of frames, joined at the end."""

    def __init__(self) -> None:
        self.parts: list[Marks] = []

    def add(self, m: Marks, a: int, b: int, first: int) -> None:
        """Keep m's marks of frames [a, b) of the video, m's frame 0 being frame `first`."""
        lo, hi = a - first, b - first
        rows = {t + first: r for t, r in m.rows.items() if lo <= t < hi}
        self.parts.append(Marks(m.change[lo:hi].copy(), m.blend[lo:hi].copy(), m.dip[lo:hi].copy(),
                                m.dark[lo:hi].copy(), rows))

    def joined(self) -> Marks:
        change, blend, dip, dark = (np.concatenate([getattr(p, f) for p in self.parts])
                                    for f in ("change", "blend", "dip", "dark"))
        return Marks(change, blend, dip, dark, {t: r for p in self.parts for t, r in p.rows.items()})


def detect_streaming(video: SmallVideo, cfg: FastConfig, plan: SparsePlan | None) -> ShotDetection:
    """Detect on `video`'s batches window by window: on every decoded frame when `plan` is None (video not
    sparse, or nothing to skip), else as detect_sparse does on the frames `plan` places."""
    planned = plan
    if plan is not None and len(plan.positions) >= plan.frames:
        plan = None  # nothing is skipped: the every-frame decision, as detect_sparse makes it
    w, wd = half_windows(cfg, video.fps)
    margin = 2 * wd + 10
    seen, every = _MarkList(), _MarkList()
    if plan is not None:
        sw, swd = half_windows(cfg, seen_rate(video.fps, len(plan.positions), plan.frames))
        pos = plan.positions
    for sig, first, a, b, last in _windows(video.batches, margin):
        if plan is None:
            seen.add(marks_of(sig, w, wd, cfg), a, b, first)
            continue
        if first + len(sig) > len(pos):
            raise PlanMismatch("more pictures decoded than planned")
        seen.add(marks_of(sig, sw, swd, cfg), a, b, first)
        fa = 0 if a == 0 else int(pos[a])
        fb = plan.frames if last else int(pos[b])
        lo, hi = max(0, fa - margin + 2), plan.frames if last else min(plan.frames, fb + margin - 2)
        filled = on_every_frame(sig, pos, plan.frames, (lo, hi), first)
        every.add(marks_of(filled, w, wd, cfg, blend=False), fa, fb, lo)
    if planned is not None:
        positions, frames = video.positions()
        if frames != planned.frames or not np.array_equal(positions, planned.positions):
            raise PlanMismatch("the decoded pictures are not the planned ones")
    if plan is None:
        return decide(seen.joined(), video.fps, cfg)
    return decide_sparse(seen.joined(), every.joined(), pos, video.fps, cfg)
