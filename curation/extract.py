"""Clip extraction (stage 3): write frames [start, end) of a video as an H.264 mp4 in a resolution bucket.

Two paths, chosen per clip:
- ``copy``: remux the source's H.264 packets with PyAV, no decode and no quality loss. Taken only when
  it is exact: the source is H.264, the bucket equals the source size, and the clip's frames are
  exactly a contiguous run of packets in decode order that starts at an IDR picture (see ``copy_span``).
  The whole video always qualifies.
- ``reencode``: decode picture by picture (never the whole clip in memory), resize to the bucket with
  cv2.INTER_AREA where the size differs, and encode with ``manifests.media.encode.VideoWriter`` (libx264,
  atomic temp+rename).
Clips carry the video stream only (no audio). Both paths write a temp name and rename on success
(``manifests.media.atomic``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import av
import cv2
import numpy as np

from manifests.media.atomic import atomic_output
from manifests.media.decode import FrameIndex, RgbConverter, frame_index, iter_decoded
from manifests.media.encode import VideoWriter
from manifests.media.h264 import holds_idr, nal_length_size
from manifests.media.probe import VideoError, VideoInfo, probe

DEFAULT_BUCKETS: tuple[int, ...] = (144, 240, 360, 480, 720, 1080)
"""Short-side sizes (pixels) clips are resized to."""

class ExtractError(VideoError):
    """A clip could not be extracted; one line naming the file and the problem."""


@dataclass(frozen=True)
class ExtractResult:
    uri: str
    frames: int
    width: int
    height: int
    fps: float
    method: str  # "copy" (packets remuxed) or "reencode" (decoded, resized, encoded)


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def resolution_bucket(width: int, height: int, buckets: Sequence[int] = DEFAULT_BUCKETS) -> tuple[int, int]:
    """Output (width, height) for a source: never upscale, keep the aspect ratio, even dimensions.

    Rule: the short side becomes the largest bucket <= the source's short side; the long side is
    scaled by the same factor and rounded to the nearest even number. A source whose short side equals
    a bucket keeps its size (so it can be stream-copied). A source smaller than every bucket keeps its
    own size, rounded down to even dimensions.
    """
    if width <= 1 or height <= 1:
        raise ExtractError(f"resolution {width}x{height} is too small to encode (need at least 2x2)")
    if not buckets or any(b < 2 for b in buckets):
        raise ExtractError(f"resolution buckets must be a non-empty list of sizes >= 2, got {list(buckets)}")
    short, long_ = min(width, height), max(width, height)
    fitting = [b for b in buckets if b <= short]
    if not fitting:
        return width - width % 2, height - height % 2
    target = max(fitting)
    if target == short:
        return width - width % 2, height - height % 2
    new_short = target - target % 2
    new_long = _even(long_ * target / short)
    return (new_long, new_short) if width >= height else (new_short, new_long)


@dataclass(frozen=True)
class PacketIndex:
    """What stream copy needs to know about a video, read by demuxing (no decoding)."""

    codec: str
    width: int
    height: int
    pts: tuple[int, ...]  # presentation timestamps of the video packets, in decode order
    idr: tuple[bool, ...]  # whether each packet holds an IDR picture (decodable with no earlier packet)
    keyframe: tuple[bool, ...]  # whether the demuxer marks each packet a keyframe (a seek point)
    time_base: Fraction

    def frames(self) -> FrameIndex:
        """The same demux pass as a FrameIndex, for decoding ranges of the video."""
        return FrameIndex.from_packets(self.pts, self.keyframe, self.time_base)

    @cached_property
    def decode_position(self) -> np.ndarray | None:
        """(N,) where display frame i sits in decode order; None where timestamps repeat (frames cannot be
        told apart, so nothing is copied)."""
        pts = np.asarray(self.pts, np.int64)
        return np.argsort(pts, kind="stable") if len(np.unique(pts)) == len(pts) else None


def index_packets(path: str | Path) -> PacketIndex:
    """Demux the first video stream and record each packet's pts and whether it is an IDR picture."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ExtractError(f"{path}: no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            length_size = nal_length_size(ctx.extradata)
            pts: list[int] = []
            idr: list[bool] = []
            keyframe: list[bool] = []
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise ExtractError(f"{path}: packet without a timestamp; cannot index for stream copy")
                pts.append(int(packet.pts))
                keyframe.append(bool(packet.is_keyframe))
                is_idr = ctx.name == "h264" and packet.is_keyframe
                idr.append(is_idr and holds_idr(memoryview(packet), length_size))
            return PacketIndex(ctx.name, ctx.width, ctx.height, tuple(pts), tuple(idr), tuple(keyframe),
                               stream.time_base or Fraction(1))
    except av.FFmpegError as exc:
        raise ExtractError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from None


def copy_span(index: PacketIndex, start_frame: int, end_frame: int) -> tuple[int, int] | None:
    """Decode-order packet range [a, b) whose remux decodes to exactly frames [start, end), or None.

    Frame i is the packet with the i-th smallest pts. The copy is exact when the clip's packets form a
    contiguous run in decode order (so no frame outside the clip is needed and none leaks in, even with
    B-frame reordering) and the run starts with an IDR picture (so nothing before it is referenced).
    The whole stream is always exact. Streams with repeated pts are never copied (packets are picked by pts).
    """
    n, position = len(index.pts), index.decode_position
    if index.codec != "h264" or position is None or not 0 <= start_frame < end_frame <= n:
        return None
    if start_frame == 0 and end_frame == n:
        return 0, n
    run = position[start_frame:end_frame]  # (end - start,) decode positions of the clip's frames
    a, b = int(run.min()), int(run.max()) + 1
    if b - a != end_frame - start_frame or not index.idr[a] or int(run[0]) != a:
        return None
    return a, b


def keyframe_aligned(
    index: PacketIndex, start: int, end: int, slack: int, min_frames: int, back: int = 0, forward: int = 0
) -> tuple[int, int] | None:
    """The longest range near [start, end) with at least `min_frames` frames that can be stream-copied (see
    ``copy_span``), or None. It starts on an IDR picture at most `slack` frames after `start`, or up to `back`
    frames before it, and ends at most `slack` frames before `end`, or up to `forward` frames after it where
    the frame it stops before is an IDR picture (or the video ends).

    `back` and `forward` give back frames trimmed at a shot boundary: an encoder puts an IDR picture at most
    scene cuts, and where it put one on our cut, the two detectors agree on the exact frame. A clip then
    loses at most a fraction of a second and extraction neither decodes nor encodes it."""
    position = index.decode_position
    n = len(index.pts)
    if position is None:
        return None
    for s in range(max(0, start - back), min(start + slack, end - min_frames) + 1):
        if not index.idr[int(position[s])]:
            continue
        for e in range(min(n, end + forward), max(end - slack, s + min_frames) - 1, -1):
            if end < e < n and not index.idr[int(position[e])]:  # the video's end is a boundary too
                continue
            if copy_span(index, s, e) is not None:
                return s, e
    return None


def _remux(video_path: Path, index: PacketIndex, span: tuple[int, int], out_path: Path) -> None:
    """Copy decode-order packets [a, b) into a new mp4, timestamps shifted so the clip starts at 0.

    Seeks to the IDR at `a` (no demuxing from the file's start) and picks packets by pts, which
    ``copy_span`` has checked are unique.
    """
    a, b = span
    wanted = set(index.pts[a:b])
    offset = index.pts[a]  # the IDR at `a` is the clip's first frame
    try:
        with atomic_output(out_path) as tmp:
            with av.open(str(video_path)) as src, av.open(str(tmp), mode="w", format="mp4") as dst:
                in_stream = src.streams.video[0]
                out_stream = dst.add_stream_from_template(in_stream)
                src.seek(offset, stream=in_stream, backward=True, any_frame=False)
                for packet in src.demux(in_stream):
                    if packet.size == 0 or packet.pts not in wanted:
                        continue
                    wanted.discard(packet.pts)
                    packet.pts -= offset
                    packet.dts = None if packet.dts is None else packet.dts - offset
                    packet.stream = out_stream
                    dst.mux(packet)
                    if not wanted:
                        break
            if wanted:
                raise ExtractError(f"{video_path}: stream copy found {b - a - len(wanted)} of {b - a} packets")
    except av.FFmpegError as exc:
        raise ExtractError(f"{video_path}: stream copy failed ({type(exc).__name__}: {exc})") from None


def copyable(info: VideoInfo, bucket: tuple[int, int]) -> bool:
    """Whether the source's own pictures can be the clip's: H.264, stored at the bucket's size, upright,
    square pixels, progressive (``copy_span`` then decides per clip)."""
    return (info.codec == "h264" and tuple(bucket) == (info.width, info.height) and info.sar == (1, 1)
            and info.rotation == 0 and not info.interlaced)


def _reencode(
    video_path: Path, start: int, end: int, out_path: Path, bucket: tuple[int, int], crf: int, preset: str,
    index: FrameIndex, info: VideoInfo,
) -> int:
    """Decode frames [start, end) one at a time and encode them. Pictures that are already clip pixels
    (the bucket's size, yuv420p, upright, square, progressive) go to the encoder as they are, with no colour
    round trip; others are deinterlaced and turned upright, converted to 8-bit RGB and resized to the
    bucket with cv2.INTER_AREA (which stretches anamorphic pixels square)."""
    converter = RgbConverter(deinterlace=info.interlaced)
    as_is = info.sar == (1, 1) and not info.interlaced
    with VideoWriter(out_path, info.fps, crf=crf, preset=preset) as writer:
        for _, picture in iter_decoded(video_path, range(start, end), index):
            if as_is and (picture.width, picture.height) == bucket and picture.format.name == "yuv420p" \
                    and not picture.rotation:
                writer.write_picture(picture)
                continue
            for frame in converter.push(picture):
                writer.write(cv2.resize(frame, bucket, interpolation=cv2.INTER_AREA))
        for frame in converter.push(None):
            writer.write(cv2.resize(frame, bucket, interpolation=cv2.INTER_AREA))
    return writer.frames_written


def extract_clip(
    video_path: str | Path,
    start_frame: int,
    end_frame: int,
    out_path: str | Path,
    bucket: tuple[int, int],
    crf: int = 18,
    preset: str = "veryfast",
    allow_copy: bool = True,
    index: PacketIndex | None = None,
    info: VideoInfo | None = None,
    frames: FrameIndex | None = None,
) -> ExtractResult:
    """Write frames [start_frame, end_frame) of `video_path` to `out_path` as H.264 mp4 of size `bucket`.

    Stream-copies when that is exact (see ``copy_span``), re-encodes otherwise. When cutting many
    clips from one video, pass its ``probe`` result and its index once (``index_packets`` where the clip
    may be copied, else ``frame_index``): probing and demuxing cost more than a stream copy itself.
    """
    src, out = Path(video_path), Path(out_path)
    info = probe(src) if info is None else info
    if not 0 <= start_frame < end_frame <= info.frames:
        raise ExtractError(f"{src}: frame range [{start_frame}, {end_frame}) outside the video's {info.frames} frames")
    width, height = int(bucket[0]), int(bucket[1])
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ExtractError(f"{src}: bucket {width}x{height} must have even sides >= 2")
    if allow_copy and copyable(info, (width, height)):
        index = index_packets(src) if index is None else index
        span = copy_span(index, start_frame, end_frame) if len(index.pts) == info.frames else None
        if span is not None:
            _remux(src, index, span, out)
            return ExtractResult(str(out), end_frame - start_frame, width, height, info.fps, "copy")
    if frames is None:
        frames = index.frames() if index is not None else frame_index(src)
    written = _reencode(src, start_frame, end_frame, out, (width, height), crf, preset, frames, info)
    if written != end_frame - start_frame:
        out.unlink(missing_ok=True)
        raise ExtractError(f"{src}: decoded {written} of the {end_frame - start_frame} frames [{start_frame}, {end_frame})")
    return ExtractResult(str(out), written, width, height, info.fps, "reencode")
