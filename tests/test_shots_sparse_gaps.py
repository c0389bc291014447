"""skip_nonref 1.3: decoded frames are unevenly spaced (every other frame inside a shot, more at scene changes),
so the cut test weighs each change by the gap it spans and the structure-dip test of dissolves runs on the
signals put back on every frame."""

from __future__ import annotations

import numpy as np

from curation.corpus.build import _photo_hw, write_video
from curation.corpus.plan import plan_video
from curation.shots import features
from curation.shots.fast import FastConfig, FastDetector, adaptive_ratio, hard_cuts
from curation.shots.features import FrameSignals
from curation.shots.sparse import gap_scale, on_every_frame, to_seen_frames


def test_a_cut_across_one_frame_among_changes_across_two_stands_out():
    """Changes across two frames of motion (0.2) around a cut decoded across one frame (0.4, as on the real
    clip's frames 4321-4322): against the plain neighbour mean it is only twice the motion and missed, against
    the neighbours' change per gap it is found."""
    positions = np.array([0, 2, 4, 6, 8, 9, 11, 13, 15, 17, 19])
    change = np.array([0, 0.2, 0.2, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2])
    cfg = FastConfig()
    cut_cfg = FastConfig(cut_ratio=cfg.sparse_cut_ratio)
    assert hard_cuts(change, adaptive_ratio(change, 4), cut_cfg, 2) == []
    assert hard_cuts(change, adaptive_ratio(change, 4, gap_scale(positions)), cut_cfg, 2) == [5]
    assert np.allclose(gap_scale(positions)[:6], np.sqrt([1, 2, 2, 2, 2, 1]))
    even = np.ones(len(change))  # every frame decoded: the same ratio as without a scale
    assert np.allclose(adaptive_ratio(change, 4, even), adaptive_ratio(change, 4))


def test_signals_are_put_back_on_every_frame_linearly_and_ranges_widened_to_decoded_frames(monkeypatch):
    positions = np.array([0, 2, 3, 6])
    luma = np.array([0.0, 20.0, 30.0, 60.0], np.float32)
    sig = FrameSignals(np.stack([luma] * 2, 1), np.stack([luma] * 3, 1), luma, luma * 2)
    every = on_every_frame(sig, positions, 8)
    assert np.allclose(every.luma, [0, 10, 20, 30, 40, 50, 60, 60])  # held after the last decoded frame
    assert np.allclose(every.thumb[:, 1], every.luma) and np.allclose(every.edge, 2 * every.luma)
    monkeypatch.setattr(features, "ROW_CHUNK", 3)  # filled a few frames at a time: the same signals
    chunked = on_every_frame(sig, positions, 8)
    assert all(np.array_equal(getattr(chunked, f), getattr(every, f)) for f in ("hist", "thumb", "luma", "edge"))
    # a range starts just after the decoded frame before it and ends at the first decoded frame at or after it
    assert to_seen_frames([(4, 5), (2, 3), (0, 1), (7, 8)], positions, 8) == [(4, 6), (1, 3), (0, 2), (7, 8)]


def test_dissolve_between_zooms_found_with_reference_pictures_only_as_with_every_frame(tmp_path):
    """A tuning video (corpus seed 1, video 25): a dissolve from a zoom into a zoom, which skip_nonref 1.2
    missed (its dip test's window, counted in decoded frames at their mean rate, spanned a third more time
    there than 0.3 s), is found by 1.3 as by the every-frame detector, with no cut reported inside it."""
    video = write_video(plan_video(1, 25, False, _photo_hw), 1, tmp_path)
    plan = plan_video(1, 25, False, _photo_hw)
    tr = next(t for t in plan.transitions if t.kind == "dissolve")
    sparse = FastDetector(FastConfig(skip_nonref=True))
    _, sig, _, frames = sparse.signals(video)
    assert len(sig) < frames  # reference pictures only
    for det in (sparse.detect(video), FastDetector(FastConfig()).detect(video)):
        assert any(a <= tr.end + 2 and tr.start <= b + 2 for a, b in det.transitions), (tr, det)
        assert not any(tr.start - 2 <= c <= tr.end + 2 for c in det.cuts), det
