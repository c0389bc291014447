"""Extraction makes clip pixels of any stored pixels (issue 20, item 3): square at the display aspect, upright,
8-bit, progressive; the clip row says what was converted.

Each source is a tiny generated H.264 file (tests/test_media_pixels.py's encoder) whose picture has structure
(a bright block in one corner) so a clip that is squeezed, turned or shifted shows.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from curation.extract import extract_clip, resolution_bucket
from curation.stage import WorkUnit
from curation.stages import ExtractStage
from curation.stages.extract import ExtractConfig
from manifests.media.decode import read_frames
from manifests.media.pixels import display_size
from manifests.media.probe import probe

W, H, T = 176, 144, 12


def encode(path: Path, *, pix_fmt: str = "yuv420p", sar: Fraction | None = None, rotation: int | None = None,
           options: dict[str, str] | None = None) -> Path:
    """T frames: grey, a bright block in the top-left quarter moving right by 2 px a frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for t in range(T):
            frame = np.full((H, W, 3), 60, np.uint8)
            frame[8:40, 8 + 2 * t : 48 + 2 * t] = (230, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def assert_clip_clock(clip: Path, frames: int, fps: float) -> None:
    """Frame n of the clip is shown at n / fps: one timestamp per frame, none repeated."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        ticks = sorted(p.pts for p in container.demux(stream) if p.size)
        per_frame = 1 / (Fraction(fps).limit_denominator(1001) * stream.time_base)
    assert ticks == [round(n * per_frame) for n in range(frames)]
    assert probe(clip).fps == pytest.approx(fps)


def extracted(tmp_path: Path, source: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """The clip row of frames [2, 10) through the extract stage, the clip's frames, and the source's
    upright frames resized to the clip's size (what the clip should show)."""
    info = probe(source)
    display = display_size(info.width, info.height, info.sar, info.rotation)
    video = {"video_id": "v", "uri": str(source), "width": info.width, "height": info.height,
             "display_width": display[0], "display_height": display[1]}
    clip = {"clip_id": "v-0000002-0000010", "video_id": "v", "start_frame": 2, "end_frame": 10, "status": "ok"}
    unit = WorkUnit("u", [str(source)], str(tmp_path / "out"), tables={"videos": [video], "clips": [clip]})
    out = ExtractStage(ExtractConfig()).process(unit)
    assert not out.rows["errors"], out.rows["errors"]
    row = out.rows["clips"][0]
    frames = read_frames(tmp_path / "out" / row["uri"])
    assert_clip_clock(tmp_path / "out" / row["uri"], 8, 25)
    expected = np.stack([cv2.resize(f, (row["width"], row["height"]), interpolation=cv2.INTER_AREA)
                         for f in read_frames(source, range(2, 10))])
    return row, frames, expected


def test_anamorphic_source_becomes_square_pixels_at_its_display_aspect(tmp_path):
    row, frames, expected = extracted(tmp_path, encode(tmp_path / "anamorphic.mp4", sar=Fraction(16, 11)))
    assert (row["width"], row["height"]) == resolution_bucket(256, 144) == (256, 144)  # 176 * 16/11 = 256
    assert probe(tmp_path / "out" / row["uri"]).sar == (1, 1)
    assert row["conversion"] == "SAR 16:11 to square pixels"
    assert frames.shape == (8, 144, 256, 3) and psnr(frames, expected) > 30


@pytest.mark.parametrize("degrees", [90, -90])
def test_rotated_source_becomes_an_upright_clip(tmp_path, degrees):
    row, frames, expected = extracted(tmp_path, encode(tmp_path / "rotated.mp4", rotation=degrees))
    assert (row["width"], row["height"]) == (H, W)  # upright: the stored 176x144 turned
    clip_info = probe(tmp_path / "out" / row["uri"])
    assert clip_info.rotation == 0 and (clip_info.width, clip_info.height) == (H, W)
    assert row["conversion"] is None
    assert psnr(frames, expected) > 30
    bright = np.argwhere(frames[0, ..., 0] > 150)  # the block sits where the display puts the stored top-left
    corner = (bright[:, 0].mean() > W / 2, bright[:, 1].mean() > H / 2)
    assert corner == ((True, False) if degrees == 90 else (False, True))


def test_ten_bit_source_becomes_an_8_bit_clip(tmp_path):
    row, frames, expected = extracted(tmp_path, encode(tmp_path / "ten_bit.mp4", pix_fmt="yuv420p10le"))
    clip_info = probe(tmp_path / "out" / row["uri"])
    assert (clip_info.pix_fmt, clip_info.bit_depth) == ("yuv420p", 8)
    assert row["conversion"] == "10-bit to 8-bit"
    assert psnr(frames, expected) > 30


def test_interlaced_source_is_deinterlaced_frame_for_frame(tmp_path):
    source = encode(tmp_path / "interlaced.mp4", options={"flags": "+ilme+ildct", "x264-params": "tff=1"})
    assert probe(source).interlaced
    row, frames, expected = extracted(tmp_path, source)
    assert row["conversion"] == "deinterlaced (yadif)"
    assert not probe(tmp_path / "out" / row["uri"]).interlaced
    assert len(frames) == 8 and psnr(frames, expected) > 25  # yadif blends the fields of moving edges


def test_square_progressive_source_at_its_bucket_is_encoded_without_a_colour_round_trip(tmp_path):
    """Frames not starting at a keyframe are re-encoded: the decoded pictures go to the encoder as they are."""
    source = encode(tmp_path / "plain.mp4")
    result = extract_clip(source, 2, 10, tmp_path / "clip.mp4", (W, H), crf=0, preset="ultrafast")
    assert result.method == "reencode"
    with av.open(str(source)) as container:
        planes = [f.to_ndarray() for f in container.decode(video=0)][2:10]  # yuv420p planes, as stored
    with av.open(str(tmp_path / "clip.mp4")) as container:
        clip = [f.to_ndarray() for f in container.decode(video=0)]
    assert len(clip) == 8 and all(np.array_equal(a, b) for a, b in zip(clip, planes))  # lossless: no RGB step
    assert_clip_clock(tmp_path / "clip.mp4", 8, 25)  # the source's clock is not carried into the clip


@pytest.mark.parametrize("snap", [0.0, 0.5])  # 0.5: times from the packet index the keyframe snap reads
def test_variable_frame_rate_clips_carry_the_times_their_frames_are_shown(tmp_path, snap):
    """Frame durations of 40 and 80 ms alternate in the first half: frame / fps would misplace every clip."""
    from curation.stages import ShotsStage
    from curation.stages.shots import ShotsConfig

    pts_ms = [0]
    for i in range(1, 150):
        pts_ms.append(pts_ms[-1] + (80 if i < 75 and i % 2 else 40))
    source = tmp_path / "vfr.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 + i % 100, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(source)
    assert info.vfr
    video = {"video_id": "v", "uri": str(source), "fps": info.fps, "vfr": True}
    stage = ShotsStage(ShotsConfig(min_clip_s=0.5, max_clip_s=1.0, trim_frames=0, keyframe_snap_s=snap))
    clips = stage.clip_rows(video)
    assert len(clips) >= 4
    for clip in clips:
        assert clip["start_time_s"] == pytest.approx(pts_ms[clip["start_frame"]] / 1000)
        if clip["end_frame"] < len(pts_ms):
            assert clip["end_time_s"] == pytest.approx(pts_ms[clip["end_frame"]] / 1000)
    cfr = stage.clip_rows({**video, "vfr": False})  # the same frames on the constant clock: times differ
    assert [c["start_frame"] for c in cfr] == [c["start_frame"] for c in clips]
    assert any(abs(a["start_time_s"] - b["start_time_s"]) > 0.5 for a, b in zip(cfr, clips))


def test_reads_of_an_interlaced_source_are_deinterlaced_for_the_signals(tmp_path):
    """Fields shot half a frame apart comb a moving edge; the signals stage reads its frames deinterlaced."""
    from manifests.media.decode import read_frame_sets

    path = tmp_path / "fields.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"flags": "+ilme+ildct", "x264-params": "tff=1"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for t in range(T):
            frame = np.full((H, W, 3), 40, np.uint8)
            frame[0::2, 20 + 8 * t : 60 + 8 * t] = 220  # top field at time t
            frame[1::2, 24 + 8 * t : 64 + 8 * t] = 220  # bottom field half a frame later
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    def combing(frames: np.ndarray) -> float:  # neighbouring rows (other field) vs rows two apart (same field)
        grey = frames.astype(np.float32).mean(axis=-1)
        return float(np.abs(grey[:, 1:-1] - grey[:, 2:]).mean() / (np.abs(grey[:, :-2] - grey[:, 2:]).mean() + 1e-6))

    sets = {"raw": (range(2, 10), None)}
    raw = read_frame_sets(path, sets)["raw"]
    deinterlaced = read_frame_sets(path, sets, deinterlace=True)["raw"]
    assert raw.shape == deinterlaced.shape == (8, H, W, 3)
    assert combing(deinterlaced) < 0.6 * combing(raw)
