"""The fast detector with non-reference pictures left undecoded: decoded frames keep their place among all
frames, boundaries come back as frames of the whole video, and no frame nobody saw is claimed by a shot."""

from __future__ import annotations

import av
import numpy as np
import pytest

from curation.shots import ShotDetection, clip_ranges
from curation.shots.decode import NoTimestamps, open_small
from curation.shots.fast import FastConfig, FastDetector, sparse_config
from curation.shots.sparse import on_all_frames, seen_rate
from manifests.media.encode import VideoWriter


def _shots_video(path, shots=((30, 40, 200), (25, 220, 30), (35, 90, 120)), size=(128, 72), fps=25.0):
    """Shots of (frames, colour a, colour b) with a moving bar over a two-colour split: cuts between them."""
    w, h = size
    cuts, n = [], 0
    with VideoWriter(path, fps=fps) as writer:
        for length, a, b in shots:
            if n:
                cuts.append(n)
            for k in range(length):
                frame = np.empty((h, w, 3), np.uint8)
                frame[:, : w // 2], frame[:, w // 2 :] = (a, b, 255 - a), (b, a, 60)
                x = (3 * k) % (w - 8)
                frame[h // 3 : 2 * h // 3, x : x + 8] = 255
                writer.write(frame)
            n += length
    return cuts, n


def test_decoded_frames_keep_their_place_and_pixels(tmp_path):
    video = tmp_path / "v.mp4"
    _, n = _shots_video(video)
    with open_small(video, 16, 9, batch_size=16) as full:
        every = np.concatenate(list(full.batches))
        full_pos, full_frames = full.positions()
    with open_small(video, 16, 9, batch_size=16, skip_nonref=True) as sparse:
        some = np.concatenate(list(sparse.batches))
        pos, frames = sparse.positions()
    assert full_frames == frames == n and np.array_equal(full_pos, np.arange(n))
    assert 0 < len(some) < n  # the writer's B pictures were left out ...
    assert pos[0] == 0 and np.all(np.diff(pos) > 0) and pos[-1] < n
    assert np.array_equal(some, every[pos])  # ... and the decoded ones are the same pictures, at the right place


def test_boundaries_come_back_as_frames_of_the_whole_video():
    positions = np.array([0, 2, 3, 5, 6, 8, 9])  # frames 1, 4 and 7 of 10 were not decoded
    seen = ShotDetection(fps=6.0, frames=7, cuts=[2, 3], transitions=[(5, 6)])
    whole = on_all_frames(seen, positions, 10, 10.0)
    # decoded 2 is frame 3 (frame 2 seen before it): a cut; decoded 3 is frame 5, frame 4 unseen before it
    assert whole.cuts == [3]
    assert whole.transitions == [(4, 5), (7, 9)]  # unseen 4 before the cut; the transition widened over unseen 7
    assert whole.frames == 10 and whole.fps == 10.0
    every = np.arange(10)
    assert on_all_frames(ShotDetection(10.0, 10, [3], [(5, 7)]), every, 10, 10.0) == ShotDetection(10.0, 10, [3], [(5, 7)])
    assert seen_rate(30.0, 20, 30) == pytest.approx(20.0)


@pytest.mark.parametrize("trim", [0, 2])
def test_sparse_detector_finds_the_cuts_and_clips_hold_only_seen_frames_of_one_shot(tmp_path, trim):
    video = tmp_path / "v.mp4"
    cuts, n = _shots_video(video)
    sparse = FastDetector(FastConfig(skip_nonref=True))
    assert sparse.model_name.endswith("+skip-nonref")
    det = sparse.detect(video)
    assert det.frames == n
    for cut in cuts:  # each cut found: exactly, or as a range of the unseen frames just before it
        assert cut in det.cuts or any(a <= cut <= b and b - a <= 3 for a, b in det.transitions), (cut, det)
    edges = [0, *cuts, n]
    for a, b in clip_ranges(det, 0.2, 10.0, trim):
        assert any(s <= a and b <= e for s, e in zip(edges, edges[1:])), (a, b, det)


def test_sparse_thresholds_count_frames_at_the_decoded_rate():
    cfg = FastConfig(skip_nonref=True)
    assert sparse_config(cfg, 100, 100) is cfg  # nothing skipped: the every-frame thresholds
    sparse = sparse_config(cfg, 60, 100)  # x264's GOP: about two fifths left out
    assert sparse.cut_ratio == cfg.sparse_cut_ratio and sparse.grad_min_frames == 1
    assert sparse_config(cfg, 90, 100).grad_min_frames == 2 and sparse_config(cfg, 10, 100).grad_min_frames == 1
    # rows tell the outputs apart: the sparse path changed in 1.2 and 1.3, the every-frame one did not
    assert FastDetector(cfg).version == "1.3" and FastDetector(FastConfig()).version == "1.1"


def test_a_stream_without_timestamps_is_decoded_whole(tmp_path):
    mp4, raw = tmp_path / "v.mp4", tmp_path / "v.h264"
    cuts, n = _shots_video(mp4)
    with av.open(str(mp4)) as src, av.open(str(raw), "w", format="h264") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = out
                dst.mux(packet)
    with pytest.raises(NoTimestamps), open_small(raw, 16, 9, 8, skip_nonref=True) as sparse:
        list(sparse.batches)
        sparse.positions()
    det = FastDetector(FastConfig(skip_nonref=True)).detect(raw)
    assert det.frames == n and det == FastDetector(FastConfig()).detect(raw)
