"""The fast detector's own decode loop: every frame (or every reference frame), once, scaled straight from
YUV to a tiny RGB picture.

Why not manifests.media: the detector needs no random access and no full-size pixels, and its frames/s is
mostly H.264 decoding. PyAV with FFmpeg's frame threads, the in-loop deblocking filter skipped
(`skip_loop_filter`: every frame is still decoded, only the smoothing of block edges is left out, which
a 64x36 picture cannot see) and one swscale call per frame from YUV to the small RGB picture (bilinear,
as decord resizes) is the cheapest way to look at every frame.

With `skip_nonref` the decoder also drops pictures no other picture refers to (FFmpeg's
`skip_frame=noref`: in x264's default GOP a third to two fifths of all frames, the non-reference B
pictures). They cost nothing to leave out, since nothing decoded later needs them. Every packet's
timestamp is still read, so each decoded picture's place among all frames is known (`SmallVideo.positions`).

Nothing but one batch of small frames is held, so an hour-long input streams in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from manifests.media.h264 import is_disposable, nal_length_size
from manifests.media.probe import VideoError, open_video

DECODER_OPTIONS = {"skip_loop_filter": "all"}
SKIP_NONREF_OPTIONS = {**DECODER_OPTIONS, "skip_frame": "noref"}


class NoTimestamps(VideoError):
    """Pictures were skipped but the stream has no timestamps to place the decoded ones: decode every frame."""


@dataclass
class SmallVideo:
    """One opened video: its rate, its small frames in batches (T, height, width, 3) in display order, and,
    once `batches` is exhausted, where each decoded frame sits among all the video's frames."""

    fps: float
    batches: Iterator[np.ndarray]
    skip_nonref: bool
    decoded_pts: list[int] = field(default_factory=list)
    presented_pts: list[int] = field(default_factory=list)  # every packet that shows a frame, skipped or not

    def positions(self) -> tuple[np.ndarray, int]:
        """(display index of each decoded frame (N,), number of frames in the video). Without skipping,
        frames are numbered in the order they come out, as decoding every frame always did."""
        if not self.skip_nonref:
            return np.arange(len(self.decoded_pts)), len(self.decoded_pts)
        order = np.unique(np.asarray(self.presented_pts, np.int64))  # sorted: display order
        decoded = np.asarray(self.decoded_pts, np.int64)
        where = np.minimum(np.searchsorted(order, decoded), max(len(order) - 1, 0))
        if len(order) < len(decoded) or np.any(order[where] != decoded):
            raise NoTimestamps("decoded pictures whose timestamps no packet carries")
        return where, len(order)


@dataclass(frozen=True)
class SparsePlan:
    """Where the pictures `skip_nonref` will decode sit among all frames, read from the packets before decoding
    (curation.shots.window needs it while the frames stream): the display index of each, and the frame count."""

    positions: np.ndarray
    frames: int


def plan_sparse(path: str | Path) -> SparsePlan | None:
    """The pictures of an H.264 stream that are not disposable (manifests.media.h264), placed by their
    timestamps as SmallVideo.positions places the decoded ones; None for other codecs. Reads packets only.
    A packet without a timestamp is NoTimestamps, as in the sparse decode itself."""
    p = Path(path)
    with open_video(p) as (container, stream):
        if stream.codec_context.name != "h264":
            return None
        length_size = nal_length_size(stream.codec_context.extradata)
        shown: list[int] = []
        kept: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size and not packet.is_discard:
                    if packet.pts is None:
                        raise NoTimestamps(f"{p}: a packet without a timestamp")
                    shown.append(packet.pts)
                    if not is_disposable(memoryview(packet), length_size):
                        kept.append(packet.pts)
        except av.FFmpegError as exc:
            raise VideoError(f"{p}: demux failed ({type(exc).__name__}: {exc})") from None
    order = np.unique(np.asarray(shown, np.int64))
    return SparsePlan(np.searchsorted(order, np.unique(np.asarray(kept, np.int64))), len(order))


@contextmanager
def open_small(
    path: str | Path, width: int, height: int, batch_size: int, skip_nonref: bool = False
) -> Iterator[SmallVideo]:
    """The first video stream of `path`, opened for small frames; any decoding failure is a one-line
    VideoError naming the file (NoTimestamps when skipped pictures cannot be placed)."""
    p = Path(path)
    with open_video(p) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate
        if not rate or rate <= 0:
            raise VideoError(f"{p}: video stream has no frame rate")
        stream.thread_type = "AUTO"
        stream.codec_context.options = dict(SKIP_NONREF_OPTIONS if skip_nonref else DECODER_OPTIONS)
        video = SmallVideo(float(rate), iter(()), skip_nonref)
        video.batches = _batches(container, stream, p, (width, height), batch_size, video)
        yield video


def _batches(container, stream, p: Path, size: tuple[int, int], batch_size: int, video: SmallVideo) -> Iterator[np.ndarray]:
    width, height = size
    batch = np.empty((batch_size, height, width, 3), np.uint8)
    scaler = VideoReformatter()  # keeps one swscale context: frame.reformat() builds a new one every frame (7x slower)
    n = 0
    try:
        for packet in container.demux(stream):
            if video.skip_nonref and packet.size and not packet.is_discard:
                if packet.pts is None:
                    raise NoTimestamps(f"{p}: a packet without a timestamp")
                video.presented_pts.append(packet.pts)
            for frame in packet.decode():
                if video.skip_nonref and frame.pts is None:
                    raise NoTimestamps(f"{p}: a picture without a timestamp")
                video.decoded_pts.append(frame.pts if video.skip_nonref else len(video.decoded_pts))
                small = scaler.reformat(frame, width=width, height=height, format="rgb24", interpolation="BILINEAR")
                batch[n] = small.to_ndarray()
                n += 1
                if n == batch_size:
                    yield batch.copy()
                    n = 0
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: decode failed ({type(exc).__name__}: {exc})") from None
    if n:
        yield batch[:n].copy()
