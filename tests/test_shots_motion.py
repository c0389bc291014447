"""The fast detector on moving shots: dissolves between pans and zooms are found, camera motion alone is no
boundary. Frames are rendered from corpus plans and scaled to the detector's 64x36 in memory (no encoding)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from curation.corpus.build import _photo_hw
from curation.corpus.plan import CameraMove, ShotPlan, VideoPlan, plan_video
from curation.corpus.render import render
from curation.shots.decode import open_small
from curation.shots.fast import FastConfig, blend_residual, detect_from_signals
from curation.shots.features import DECODE_H, DECODE_W, batch_signals
from manifests.media.encode import VideoWriter
from manifests.media.probe import VideoError


def _detect(plan: VideoPlan):
    small = [cv2.resize(f, (DECODE_W, DECODE_H), interpolation=cv2.INTER_AREA) for f, _ in render(plan)]
    return detect_from_signals(batch_signals(np.stack(small)), float(plan.fps), FastConfig())


def _no_objects(plan: VideoPlan) -> VideoPlan:
    return dataclasses.replace(plan, objects=())


@pytest.mark.parametrize(("seed", "index", "cameras"), [(7, 7, ("pan", "pan")), (6, 6, ("zoom", "zoom"))])
def test_dissolve_between_moving_shots_is_found(seed, index, cameras):
    """Corpus dissolves that detector 1.0 missed (its blend test needs still shots): pan to pan, zoom to zoom."""
    plan = _no_objects(plan_video(seed, index, False, _photo_hw))
    tr = next(t for t in plan.transitions if t.kind == "dissolve")
    outgoing = next(s for s in plan.shots if s.pure_end == tr.start)
    incoming = next(s for s in plan.shots if s.pure_start == tr.end)
    assert (outgoing.camera.kind, incoming.camera.kind) == cameras
    det = _detect(plan)
    assert any(a <= tr.end + 2 and tr.start <= b + 2 for a, b in det.transitions), (tr, det)
    assert not any(tr.start - 2 <= c <= tr.end + 2 for c in det.cuts), det


def _single_shot(photo: str, camera: CameraMove, frames: int) -> VideoPlan:
    shot = ShotPlan(photo, camera, 0, frames, 0, frames)
    return VideoPlan("camera_only", 256, 144, plan_video(0, 0, True, _photo_hw).fps, frames, (shot,), (), ())


@pytest.mark.parametrize("source", [(0, 9, 0), (7, 7, 1), (6, 6, 1), (6, 6, 2)])
def test_camera_motion_alone_is_no_boundary(source):
    """Whole-shot pans and zooms of the corpus (one fast enough to cross a flat patch of its photo, which dips
    the structure energy as a dissolve does) rendered with no transition: no cut, no gradual transition."""
    seed, index, shot = source
    s = plan_video(seed, index, False, _photo_hw).shots[shot]
    frames = s.content_end - s.content_start
    det = _detect(_single_shot(s.photo, s.camera, frames))
    assert det.cuts == [] and det.transitions == [], det


def test_long_video_reductions_in_chunks_give_the_same_boundaries(monkeypatch):
    """The detector's row-wise reductions run ROW_CHUNK frames at a time (so their temporaries do not grow with
    the video); slices of 7 frames, borders everywhere, must give the same arrays and boundaries as one slice."""
    from curation.shots import features
    from curation.shots.fast import dip_candidates, frame_changes, gradual_candidates

    plan = plan_video(7, 7, False, _photo_hw)  # cuts, a dissolve between pans, and moving objects
    small = [cv2.resize(f, (DECODE_W, DECODE_H), interpolation=cv2.INTER_AREA) for f, _ in render(plan)]
    sig, cfg = batch_signals(np.stack(small)), FastConfig()
    change = frame_changes(sig, cfg.thumb_weight)

    def everything():
        return (detect_from_signals(sig, float(plan.fps), cfg), frame_changes(sig, cfg.thumb_weight),
                blend_residual(sig.thumb, 3), gradual_candidates(sig, 3, cfg), dip_candidates(sig, change, 7, cfg))

    whole = everything()
    monkeypatch.setattr(features, "ROW_CHUNK", 7)
    chunked = everything()
    assert chunked[0] == whole[0] and (whole[0].cuts or whole[0].transitions)
    for a, b in zip(chunked[1:], whole[1:]):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_blend_residual_is_zero_for_linear_blends_and_large_for_motion():
    a, b = np.zeros(16, np.float32), np.full(16, 100.0, np.float32)
    blend = np.stack([a + (b - a) * u for u in np.linspace(0, 1, 9)])
    assert np.allclose(blend_residual(blend, 4), 0.0)
    ramp = np.arange(16, dtype=np.float32) * 10
    moving = np.stack([np.roll(ramp, k) for k in range(9)])  # a pan over a ramp wraps round: not a blend
    assert blend_residual(moving, 4)[0] > 0.3


def test_open_small_streams_every_frame_scaled(tmp_path):
    video = tmp_path / "v.mp4"
    with VideoWriter(video, fps=25.0) as writer:
        for k in range(70):
            writer.write(np.full((72, 128, 3), 3 * k, np.uint8))
    with open_small(video, 16, 9, batch_size=32) as small:
        shapes = [b.shape for b in small.batches]
    assert small.fps == 25.0 and shapes == [(32, 9, 16, 3), (32, 9, 16, 3), (6, 9, 16, 3)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(video.read_bytes()[:200])
    with pytest.raises(VideoError, match="bad.mp4"), open_small(bad, 16, 9, 8) as small:
        list(small.batches)
