"""What a video file holds (frame count, rate, size, codec, and how its pixels are stored), and opening it in
decord.

decord is the fast path (random access, decoder-side resize); PyAV reads what decord cannot open, counting
frames by demuxing. Either way PyAV reads the stream's header and decodes its first frame, for what decord
does not expose: sample aspect ratio, pixel format, transfer, field order, rotation.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from manifests.media.pixels import transfer_name

if TYPE_CHECKING:
    from decord import VideoReader


class VideoError(Exception):
    """A video could not be read or written; the message is one line naming the file."""


@dataclass(frozen=True)
class VideoInfo:
    """`width`/`height` are the upright picture's (the stored size turned by `rotation`, as decord decodes
    it), in stored pixels: `manifests.media.pixels.display_size` gives the square-pixel size."""

    fps: float
    frames: int
    width: int
    height: int
    duration_s: float
    codec: str
    backend: str  # "decord" or "pyav": which library could read it
    sar: tuple[int, int] = (1, 1)  # sample aspect ratio of the stored pixels, reduced; 1:1 when unset (0:1)
    pix_fmt: str = "unknown"  # FFmpeg's name of the stored format, e.g. yuv420p10le
    bit_depth: int = 8  # bits of the first (luma) component
    color_transfer: str = "unknown"  # FFmpeg's name: bt709, smpte2084 (PQ), arib-std-b67 (HLG), unknown, ...
    interlaced: bool = False  # field order says fields (TT/BB/TB/BT), or the first frame is flagged interlaced
    vfr: bool = False  # gaps between presentation times vary beyond timestamp rounding (`VFR_TOLERANCE_S`)
    rotation: int = 0  # 0, 90, 180 or 270: degrees counterclockwise the display matrix turns the stored picture


VFR_TOLERANCE_S = 0.002
"""Frame gaps may differ by this much, or by a tenth of the shortest gap if more, and still be one rate:
container time bases round timestamps (29.97 fps in milliseconds alternates 33 and 34 ms gaps)."""
_REORDER_WINDOW = 32
"""Presentation times are restored from decode order within this many frames (B-frame reordering is shallower)."""


class _Gaps:
    """Running shortest and longest gap between presentation times fed in decode order; a small heap restores
    presentation order, so memory stays bounded on a file of any length (no list of timestamps)."""

    def __init__(self) -> None:
        self._pending: list[float] = []
        self._last: float | None = None
        self.shortest, self.longest = math.inf, 0.0

    def add(self, t: float) -> None:
        heapq.heappush(self._pending, t)
        if len(self._pending) > _REORDER_WINDOW:
            self._take(heapq.heappop(self._pending))

    def _take(self, t: float) -> None:
        if self._last is not None:
            self.shortest, self.longest = min(self.shortest, t - self._last), max(self.longest, t - self._last)
        self._last = t

    def variable(self) -> bool:
        """Whether the gaps seen make a variable frame rate; drains the heap."""
        while self._pending:
            self._take(heapq.heappop(self._pending))
        if self.longest <= 0:  # fewer than two frames, or all at one time: no rate to vary
            return False
        return self.longest - self.shortest > max(VFR_TOLERANCE_S, 0.1 * self.shortest)


def check_file(path: str | Path) -> Path:
    """`path` as a Path, or a VideoError when it is missing or empty (neither library says so plainly)."""
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes)")
    return p


@contextmanager
def open_video(path: str | Path, failure: str = "not a readable video") -> Iterator[tuple[Any, av.VideoStream]]:
    """(PyAV container, its first video stream) of `path`; a missing file, no video stream, or any FFmpeg
    error inside the block (opening, demuxing, decoding) is one VideoError line naming the file, after
    `failure` for the FFmpeg ones."""
    p = check_file(path)
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: no video stream")
            yield container, container.streams.video[0]
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: {failure} ({type(exc).__name__}: {exc})") from None


def open_decord(path: Path, width: int | None = None, height: int | None = None) -> VideoReader:
    """A decord VideoReader, resizing on decode when both `width` and `height` are given."""
    import decord  # imported late: it spawns no threads until used, but keeps import of this module light

    kwargs = {}
    if width and height:
        kwargs = {"width": int(width), "height": int(height)}
    # num_threads=0 lets FFmpeg pick its decode threads: 1.4x the frames/s of one thread at 640x360 here.
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0, **kwargs)


def _first_frame(packets: Iterable[av.Packet[av.VideoStream]]) -> av.VideoFrame | None:
    """The first frame the packets decode to; None when none does (damaged start, or no packets)."""
    for packet in packets:
        try:
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    return frame
        except av.FFmpegError:
            continue
    return None


def _pixels(stream: av.VideoStream, first: av.VideoFrame | None) -> dict[str, Any]:
    """The VideoInfo fields of how pixels are stored, from the stream header and its first decoded frame."""
    ctx = stream.codec_context
    ratio = stream.sample_aspect_ratio or ctx.sample_aspect_ratio  # the container's wins, as in FFmpeg
    sar = Fraction(ratio) if ratio and ratio > 0 else Fraction(1)
    fmt = ctx.format or (first.format if first is not None else None)
    rotation = round((first.rotation if first is not None else 0) / 90) * 90 % 360
    width, height = (ctx.height, ctx.width) if rotation % 180 == 90 else (ctx.width, ctx.height)
    return {
        "width": int(width), "height": int(height), "codec": ctx.name,
        "sar": (sar.numerator, sar.denominator),
        "pix_fmt": fmt.name if fmt is not None else "unknown",
        "bit_depth": fmt.components[0].bits if fmt is not None and fmt.components else 8,
        "color_transfer": transfer_name(ctx.color_trc),
        "interlaced": ctx.field_order >= 2 or bool(first is not None and first.interlaced_frame),  # 0 unknown, 1 progressive
        "rotation": rotation,
    }


def _header(p: Path) -> dict[str, Any]:
    """`_pixels` of a file's first video stream, decoding only its first frame."""
    with open_video(p) as (container, stream):
        return _pixels(stream, _first_frame(container.demux(stream)))


def _decord_vfr(vr: VideoReader, frames: int, chunk: int = 4096) -> bool:
    """VFR from decord's frame index, which it read from the container at open: no second pass over the file."""
    gaps = _Gaps()
    for start in range(0, frames, chunk):
        for t in vr.get_frame_timestamp(range(start, min(frames, start + chunk)))[:, 0].tolist():
            gaps.add(t)
    return gaps.variable()


def probe(path: str | Path) -> VideoInfo:
    """Read stream metadata with decord, falling back to PyAV (which counts frames by demuxing)."""
    p = check_file(path)
    try:
        vr = open_decord(p)
        frames = len(vr)
        fps = float(vr.get_avg_fps())
        vfr = _decord_vfr(vr, frames) if frames > 0 else False
    except Exception:  # noqa: BLE001 - decord raises bare DECORDError/RuntimeError for anything it cannot open
        return probe_pyav(p)
    if frames <= 0 or fps <= 0:
        return probe_pyav(p)
    return VideoInfo(fps=fps, frames=frames, duration_s=frames / fps, backend="decord", vfr=vfr, **_header(p))


def probe_pyav(path: str | Path) -> VideoInfo:
    """`probe` through PyAV alone: it demuxes every packet, but stays silent where decord's FFmpeg logs a
    damaged file to stderr (the sample sheets promise one line per skipped pair)."""
    p = check_file(path)
    with open_video(p) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        frames, gaps, first = 0, _Gaps(), None
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            frames += 1
            if packet.pts is not None and packet.time_base is not None:
                gaps.add(float(packet.pts * packet.time_base))
            if first is None:
                first = _first_frame([packet])
        pixels = _pixels(stream, first)
    if frames == 0 or fps <= 0:
        raise VideoError(f"{p}: video stream has no decodable frames")
    return VideoInfo(fps=fps, frames=frames, duration_s=frames / fps, backend="pyav", vfr=gaps.variable(), **pixels)
