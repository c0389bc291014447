"""Classical signals on constructed inputs whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from filters import SIGNALS, FilterError, FilterThresholds, Sampling, evenly_spaced, get_signal, sample_indices
from filters.motion import successive_diffs
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.probe import probe


def _repeat(image: np.ndarray, n: int) -> np.ndarray:
    return np.stack([image] * n)


def _pan(shift: int, pairs: int, width: int = 320, height: int = 240) -> np.ndarray:
    """Consecutive pairs of a window sliding right over skimage's coffee photo by `shift` px per frame."""
    photo = skimage.data.coffee()  # 400 x 600
    frames = []
    for p in range(pairs):
        x0 = 10 + 3 * p
        frames += [photo[80 : 80 + height, x0 : x0 + width], photo[80 : 80 + height, x0 + shift : x0 + shift + width]]
    return np.stack(frames)


def test_registry_lists_every_signal_with_provenance() -> None:
    assert {"luminance", "blur", "motion", "frame_diff", "static", "slideshow", "text_overlay"} <= set(SIGNALS)
    for name in ("luminance", "blur", "motion", "static", "slideshow"):
        signal = get_signal(name)
        assert signal.name == name and signal.version
        assert signal.model_name == "none" and signal.weights_id == "none"


def test_unknown_signal_is_a_one_line_error() -> None:
    with pytest.raises(FilterError, match="unknown signal 'sharpness'; known: blur"):
        get_signal("sharpness")


@pytest.mark.parametrize("bad", [np.zeros((4, 8, 8), np.uint8), np.zeros((4, 8, 8, 3), np.float32)])
def test_bad_frames_are_rejected_clearly(bad: np.ndarray) -> None:
    with pytest.raises(FilterError, match="luminance: expected"):
        get_signal("luminance").compute(bad, 25.0)


def test_pair_signal_rejects_odd_frame_count() -> None:
    with pytest.raises(FilterError, match="must come in pairs"):
        get_signal("motion").compute(np.zeros((3, 16, 16, 3), np.uint8), 25.0)


def test_sample_indices_even_spacing_and_pairs() -> None:
    assert sample_indices(100, Sampling(count=5)) == [0, 25, 50, 74, 99]
    assert sample_indices(3, Sampling(count=8)) == [0, 1, 2]
    assert sample_indices(11, Sampling(count=3, pairs=True)) == [0, 1, 4, 5, 9, 10]
    with pytest.raises(FilterError):
        sample_indices(1, Sampling(count=3, pairs=True))


def test_evenly_spaced_keeps_both_ends_and_never_repeats_a_frame() -> None:
    assert evenly_spaced(100, 5) == [0, 25, 50, 74, 99]
    assert evenly_spaced(4, 3) == [0, 2, 3]  # 1.5 rounds to 2
    assert evenly_spaced(3, 8) == [0, 1, 2] and evenly_spaced(7, 1) == [0]  # a short clip: all its frames
    assert evenly_spaced(0, 4) == []


def test_luminance_black_white_and_bt601_weights() -> None:
    lum = get_signal("luminance")
    assert lum.compute(np.zeros((2, 16, 16, 3), np.uint8), 25.0) == 0.0
    assert lum.compute(np.full((2, 16, 16, 3), 255, np.uint8), 25.0) == pytest.approx(255.0)
    green = np.zeros((1, 16, 16, 3), np.uint8)
    green[..., 1] = 200
    assert lum.compute(green, 25.0) == pytest.approx(0.587 * 200, abs=0.6)


def test_blur_separates_sharp_from_blurred_photo() -> None:
    photo = skimage.data.astronaut()
    blur = get_signal("blur")
    sharp = blur.compute(_repeat(photo, 2), 25.0)
    soft = blur.compute(_repeat(cv2.GaussianBlur(photo, (0, 0), 3), 2), 25.0)
    assert sharp > 4 * soft
    very_soft = blur.compute(_repeat(cv2.GaussianBlur(photo, (0, 0), 6), 2), 25.0)
    assert very_soft < FilterThresholds().min_blur < sharp


def test_blur_does_not_depend_on_resolution() -> None:
    photo = skimage.data.astronaut()  # 512 x 512
    blur = get_signal("blur")
    sizes = (512, 448, 384, 320, 256)
    copies = [cv2.resize(photo, (s, s), interpolation=cv2.INTER_AREA) for s in sizes]
    values = [blur.compute(_repeat(c, 1), 25.0) for c in copies]
    assert max(values) < 1.3 * min(values)
    raw = [cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F).var() for c in copies]
    assert max(raw) > 1.8 * min(raw)  # per source pixel the same photo would read very differently


def test_motion_matches_a_known_pan() -> None:
    motion = get_signal("motion")
    diagonal = np.hypot(320, 240)
    assert motion.compute(_pan(0, 3), 25.0) < 0.02
    for shift in (4, 8):
        expected = 100 * shift / diagonal
        assert motion.compute(_pan(shift, 3), 25.0) == pytest.approx(expected, rel=0.1)


def test_motion_value_does_not_depend_on_decode_size() -> None:
    motion = get_signal("motion")
    frames = _pan(8, 2)
    half = np.stack([cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA) for f in frames])
    assert motion.compute(half, 25.0) == pytest.approx(motion.compute(frames, 25.0), rel=0.2)


def test_frame_diff_rises_with_motion() -> None:
    diff = get_signal("frame_diff")
    values = [diff.compute(_pan(s, 2), 25.0) for s in (0, 2, 8)]
    assert values[0] == 0.0 and values[0] < values[1] < values[2]


def _photos(n_first: int, n_second: int, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    a = cv2.resize(skimage.data.chelsea(), (320, 240))
    b = cv2.resize(skimage.data.coffee(), (320, 240))
    frames = np.stack([a] * n_first + [b] * n_second).astype(np.float32)
    frames += rng.normal(0, noise, frames.shape)  # sensor/compression-like noise on the stills
    return frames.clip(0, 255).astype(np.uint8)


def test_static_clip_is_static_not_slideshow() -> None:
    frames = _photos(16, 0, noise=2.0)
    assert get_signal("static").compute(frames, 25.0) == 1.0
    assert get_signal("slideshow").compute(frames, 25.0) == 0.0


def test_two_photo_slideshow_is_detected() -> None:
    frames = _photos(8, 8, noise=2.0)
    assert get_signal("slideshow").compute(frames, 25.0) == pytest.approx(14 / 15)
    diffs = successive_diffs(frames)
    assert int(np.argmax(diffs)) == 7 and diffs[7] > 12.0


def test_panning_clip_is_neither_static_nor_slideshow() -> None:
    photo = skimage.data.coffee()
    frames = np.stack([photo[80:320, 4 * i : 4 * i + 320] for i in range(16)])
    assert get_signal("static").compute(frames, 25.0) == 0.0
    assert get_signal("slideshow").compute(frames, 25.0) == 0.0


def _encode(path, frames: np.ndarray) -> None:
    with VideoWriter(path, 25.0) as writer:
        for frame in frames:
            writer.write(frame)


def _sampled(path, signal_name: str) -> float:
    """Decode what the signal's Sampling asks for, as the stage does, and compute it."""
    signal = get_signal(signal_name)
    info = probe(path)
    frames = read_frames(path, sample_indices(info.frames, signal.sampling))
    return signal.compute(frames, info.fps)


def test_signals_survive_h264_encoding(tmp_path) -> None:
    photo = skimage.data.coffee()
    pan = np.stack([photo[80:320, 4 * i : 4 * i + 320] for i in range(48)])
    _encode(tmp_path / "pan.mp4", pan)
    _encode(tmp_path / "slides.mp4", _photos(24, 24))
    _encode(tmp_path / "still.mp4", _photos(48, 0, noise=2.0))
    assert _sampled(tmp_path / "pan.mp4", "motion") == pytest.approx(100 * 4 / np.hypot(320, 240), rel=0.1)
    assert _sampled(tmp_path / "still.mp4", "motion") < 0.01
    assert _sampled(tmp_path / "still.mp4", "static") == 1.0
    assert _sampled(tmp_path / "slides.mp4", "slideshow") > 0.8
    assert _sampled(tmp_path / "pan.mp4", "static") == _sampled(tmp_path / "pan.mp4", "slideshow") == 0.0
