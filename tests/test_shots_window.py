"""The fast detector decided window by window (curation.shots.window): the same cuts and transitions as the
decision on a whole video's signals at once, in both decoding modes, with transitions across window edges."""

from __future__ import annotations

import av
import numpy as np
import pytest

from curation.shots import window
from curation.shots.decode import open_small, plan_sparse
from curation.shots.fast import FastConfig, FastDetector, detect_sparse
from curation.shots.features import DECODE_H, DECODE_W
from manifests.media.encode import VideoWriter

W, H = 128, 72


def _texture(rng: np.random.Generator) -> np.ndarray:
    coarse = rng.integers(0, 256, (H // 16 + 2, W // 16 + 2, 3), np.uint8)
    return np.kron(coarse, np.ones((16, 16, 1), np.uint8))


def _video(path) -> int:
    """Panning textured shots joined by hard cuts, a 12-frame dissolve and a fade through black: 330 frames."""
    rng = np.random.default_rng(5)
    textures = [_texture(rng) for _ in range(5)]

    def shot(i: int, k: int) -> np.ndarray:
        return np.roll(textures[i], k, axis=1)[:H, :W]

    frames: list[np.ndarray] = []
    frames += [shot(0, k) for k in range(70)]  # cut at 70
    frames += [shot(1, k) for k in range(50)]
    for k in range(12):  # dissolve 120-132 into shot 2
        t = (k + 1) / 13
        frames.append(((1 - t) * shot(1, 50 + k) + t * shot(2, k)).astype(np.uint8))
    frames += [shot(2, 12 + k) for k in range(60)]
    frames += [(shot(2, 72 + k) * (1 - (k + 1) / 10)).astype(np.uint8) for k in range(10)]  # fade out, in
    frames += [(shot(3, k) * ((k + 1) / 10)).astype(np.uint8) for k in range(10)]
    frames += [shot(3, 10 + k) for k in range(60)]  # cut at 272
    frames += [shot(4, k) for k in range(58)]
    with VideoWriter(path, fps=25.0) as writer:
        for f in frames:
            writer.write(f)
    return len(frames)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("win") / "v.mp4"
    return path, _video(path)


@pytest.mark.parametrize("skip_nonref", [False, True])
def test_windowed_decision_equals_the_whole_video_decision(video, monkeypatch, skip_nonref):
    path, n = video
    detector = FastDetector(FastConfig(skip_nonref=skip_nonref))
    fps, sig, positions, frames = detector.signals(path)
    whole = detect_sparse(sig, positions, frames, fps, detector.config)
    assert frames == n and whole.cuts and whole.transitions  # something to get right
    assert (len(sig) < n) == skip_nonref
    # window edges: inside each transition (in decoded frames), and small windows that cut everything up
    edges = [int(np.searchsorted(positions, (a + b) // 2)) for a, b in whole.transitions]
    for size in [*edges, 37, 64]:
        monkeypatch.setattr(window, "WINDOW_FRAMES", size)
        assert detector.detect(path) == whole, size
    monkeypatch.setattr(window, "WINDOW_FRAMES", 10_000)  # one window: the video at once
    assert detector.detect(path) == whole


def test_the_packets_place_the_pictures_the_sparse_decoder_gives(video):
    path, n = video
    plan = plan_sparse(path)
    with open_small(path, DECODE_W, DECODE_H, 16, skip_nonref=True) as small:
        decoded = sum(len(b) for b in small.batches)
        positions, frames = small.positions()
    assert plan is not None and plan.frames == frames == n
    assert decoded < n and np.array_equal(plan.positions, positions)


def test_windows_hold_a_bounded_number_of_frames_and_their_cores_tile_the_video(monkeypatch):
    monkeypatch.setattr(window, "WINDOW_FRAMES", 50)
    batches = (np.full((16, 4, 4, 3), i, np.uint8) for i in range(40))  # 640 frames
    cores, held = [], []
    for sig, first, a, b, last in window._windows(batches, margin=12):
        assert first <= max(0, a - 12) and first + len(sig) >= min(640, b + 12)
        assert last == (b == 640)
        cores.append((a, b))
        held.append(len(sig))
        assert np.array_equal(sig.luma.round(), np.arange(first, first + len(sig)) // 16)  # each frame once, in order
    assert cores[0][0] == 0 and cores[-1][1] == 640 and all(p[1] == q[0] for p, q in zip(cores, cores[1:]))
    assert max(held) <= 50 + 2 * 12 + 16


def test_sparse_decoding_of_other_codecs_decides_on_the_whole_video_as_before(tmp_path, monkeypatch):
    """Only H.264 packets tell which pictures a sparse decode skips: an MPEG-4 Part 2 file with B pictures is
    decided on all its signals at once, with the same result."""
    path = tmp_path / "v.mp4"
    rng = np.random.default_rng(1)
    textures = [_texture(rng) for _ in range(3)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.max_b_frames, stream.bit_rate = 2, 2_000_000
        for i in range(150):
            frame = av.VideoFrame.from_ndarray(np.roll(textures[i // 50], i, axis=1)[:H, :W].copy(), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert plan_sparse(path) is None
    monkeypatch.setattr(window, "WINDOW_FRAMES", 20)  # would be many windows, were it windowed
    detector = FastDetector(FastConfig(skip_nonref=True))
    fps, sig, positions, frames = detector.signals(path)
    det = detector.detect(path)
    assert len(sig) < frames == 150 and len(det.shots()) > 1  # pictures skipped, boundaries found
    assert det == detect_sparse(sig, positions, frames, fps, detector.config)
