"""Correct pixels (issue 20, item 3): what probe reads of how a source's pixels are stored, and the ingest row.

Each kind of source is generated here with PyAV, tiny (64-176 px, 12 frames): anamorphic, 10-bit, HDR (PQ,
HLG), interlaced, variable frame rate, rotated. The probe must read back what the encoder or muxer wrote, in
both backends, and ingest must fill the videos row (or reject HDR with its reason).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from curation.stages import IngestStage
from filters.thresholds import FilterThresholds
from manifests.media.pixels import DEINTERLACER, conversion, display_size, hdr_kind, transfer_name
from manifests.media.probe import VideoInfo, probe, probe_pyav

PQ, HLG, BT709 = 16, 18, 1  # AVColorTransferCharacteristic codes the encoder writes


def encode(path: Path, width: int = 64, height: int = 48, *, pix_fmt: str = "yuv420p", sar: Fraction | None = None,
           transfer: int | None = None, options: dict[str, str] | None = None, pts_ms: list[int] | None = None,
           rotation: int | None = None, frames: int = 12) -> Path:
    """An H.264 mp4 of moving noise with the given storage properties (x264 writes them in the bitstream)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        ctx = stream.codec_context
        if sar is not None:
            ctx.sample_aspect_ratio = sar
        if transfer is not None:
            ctx.color_trc, ctx.color_primaries, ctx.colorspace = transfer, 9, 9  # BT.2020 primaries and matrix
        if pts_ms is not None:
            ctx.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def both_probes(path: Path) -> VideoInfo:
    """decord's probe, after checking PyAV alone reads the same (it counts, times and decodes otherwise)."""
    info, pyav = probe(path), probe_pyav(path)
    assert info.backend == "decord" and pyav.backend == "pyav"
    assert {**vars(info), "backend": "pyav"} == vars(pyav)
    return info


def ingest_row(path: Path) -> dict:
    """The videos row ingest makes of `path`, with thresholds low enough for these tiny files."""
    stage = IngestStage(FilterThresholds(min_width=16, min_height=16), path.parent, False)
    return stage.video_row(str(path))


def pixel_columns(row: dict) -> dict:
    return {k: row[k] for k in ("sar", "display_width", "display_height", "pix_fmt", "bit_depth", "color_transfer",
                                "interlaced", "vfr", "conversion")}


def test_display_size_scales_the_stored_width_keeps_the_height_and_turns_with_the_rotation():
    assert display_size(704, 576, (16, 11)) == (1024, 576)  # the PAL 16:9 source, 1.78 as shown
    assert display_size(720, 480, (8, 9)) == (640, 480)  # NTSC 4:3: narrower pixels shrink the width
    assert display_size(1920, 1080, (1, 1)) == (1920, 1080)
    assert display_size(161, 91, (1, 1)) == (160, 90)  # even sides, as the encoder needs
    assert display_size(576, 704, (16, 11), rotation=90) == (576, 1024)  # the stored width is now upright height
    assert display_size(704, 576, (16, 11), rotation=180) == (1024, 576)
    assert display_size(1, 1, (1, 1)) == (2, 2)


def test_conversion_text_and_hdr_kinds():
    assert conversion(8, False, (1, 1)) is None
    assert conversion(10, True, (16, 11)) == f"10-bit to 8-bit; deinterlaced ({DEINTERLACER}); SAR 16:11 to square pixels"
    assert [hdr_kind(transfer_name(c)) for c in (PQ, HLG, BT709, 2, 99)] == ["pq", "hlg", None, None, None]
    assert [transfer_name(c) for c in (PQ, HLG, BT709, 2)] == ["smpte2084", "arib-std-b67", "bt709", "unknown"]


def test_pyav_ffmpeg_deinterlaces_but_cannot_tone_map():
    """Why interlaced sources are accepted and HDR ones rejected: yadif is bundled; zscale, which `tonemap`
    needs to reach linear light, is not. When a PyAV release bundles it, HDR can be converted instead."""
    assert DEINTERLACER in av.filter.filters_available
    assert "zscale" not in av.filter.filters_available


def test_anamorphic_source_keeps_its_display_aspect(tmp_path):
    """176x144 stored at SAR 16:11 (the issue's 704x576 PAL 16:9, quartered) displays at 256x144, 1.78."""
    path = encode(tmp_path / "anamorphic.mp4", 176, 144, sar=Fraction(16, 11))
    info = both_probes(path)
    assert (info.width, info.height, info.sar, info.interlaced, info.vfr) == (176, 144, (16, 11), False, False)
    row = ingest_row(path)
    assert (row["status"], row["width"], row["height"]) == ("ok", 176, 144)
    assert pixel_columns(row) == {
        "sar": "16:11", "display_width": 256, "display_height": 144, "pix_fmt": "yuv420p", "bit_depth": 8,
        "color_transfer": "unknown", "interlaced": False, "vfr": False, "conversion": "SAR 16:11 to square pixels"}


def test_square_pixel_8_bit_progressive_source_needs_no_conversion(tmp_path):
    row = ingest_row(encode(tmp_path / "plain.mp4", transfer=BT709))
    assert (row["status"], row["reject_reason"]) == ("ok", None)
    assert pixel_columns(row) == {
        "sar": "1:1", "display_width": 64, "display_height": 48, "pix_fmt": "yuv420p", "bit_depth": 8,
        "color_transfer": "bt709", "interlaced": False, "vfr": False, "conversion": None}


def test_ten_bit_sdr_source_is_accepted_and_its_conversion_recorded(tmp_path):
    path = encode(tmp_path / "ten_bit.mp4", pix_fmt="yuv420p10le", transfer=BT709)
    info = both_probes(path)
    assert (info.pix_fmt, info.bit_depth, info.color_transfer) == ("yuv420p10le", 10, "bt709")
    row = ingest_row(path)
    assert (row["status"], row["bit_depth"], row["pix_fmt"]) == ("ok", 10, "yuv420p10le")
    assert row["conversion"] == "10-bit to 8-bit"


@pytest.mark.parametrize(("transfer", "name", "kind"), [(PQ, "smpte2084", "PQ"), (HLG, "arib-std-b67", "HLG")])
def test_hdr_source_is_rejected_naming_its_transfer(tmp_path, transfer, name, kind):
    path = encode(tmp_path / f"hdr_{kind}.mp4", pix_fmt="yuv420p10le", transfer=transfer)
    assert both_probes(path).color_transfer == name
    row = ingest_row(path)
    assert row["status"] == "rejected" and "\n" not in row["reject_reason"]
    assert f"HDR source ({kind}, transfer {name})" in row["reject_reason"]
    assert (row["color_transfer"], row["bit_depth"], row["frames"], row["conversion"]) == (name, 10, 12, None)


def test_interlaced_source_is_accepted_and_flagged_for_deinterlacing(tmp_path):
    path = encode(tmp_path / "interlaced.mp4", options={"x264-params": "interlaced=1:tff=1"})
    assert both_probes(path).interlaced
    row = ingest_row(path)
    assert (row["status"], row["interlaced"], row["conversion"]) == ("ok", True, f"deinterlaced ({DEINTERLACER})")


def test_variable_frame_rate_is_flagged_and_a_constant_one_with_b_frames_is_not(tmp_path):
    """x264's default B-frames put packets out of presentation order: PyAV's demux pass reorders them."""
    uneven = [0, 40, 80, 200, 230, 300, 310, 400, 480, 520, 600, 640]
    assert both_probes(encode(tmp_path / "vfr.mp4", pts_ms=uneven)).vfr
    assert ingest_row(tmp_path / "vfr.mp4")["vfr"] is True
    rounded = [round(i * 1000 / 29.97) for i in range(12)]  # 29.97 fps in a millisecond time base: 33/34 ms gaps
    assert not both_probes(encode(tmp_path / "ntsc_ms.mp4", pts_ms=rounded)).vfr
    assert not both_probes(encode(tmp_path / "cfr.mp4", options={"bf": "3"})).vfr


@pytest.mark.parametrize(("degrees", "rotation"), [(90, 90), (-90, 270)])
def test_rotated_anamorphic_source_is_upright_and_stretched_along_its_stored_width(tmp_path, degrees, rotation):
    """Phones store landscape and rotate on display: width and height are upright, and the SAR, a property of
    the stored rows, stretches the upright height."""
    path = encode(tmp_path / f"rotated_{rotation}.mp4", 176, 144, sar=Fraction(16, 11), rotation=degrees)
    info = both_probes(path)
    assert (info.width, info.height, info.rotation, info.sar) == (144, 176, rotation, (16, 11))
    row = ingest_row(path)
    assert (row["status"], row["width"], row["height"]) == ("ok", 144, 176)
    assert (row["display_width"], row["display_height"]) == (144, 256)
