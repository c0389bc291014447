"""The fast detector's own decode loop: every frame, once, scaled straight from YUV to a tiny RGB picture.

Why not manifests.media: the detector needs no random access and no full-size pixels, and its frames/s is
mostly H.264 decoding. PyAV with FFmpeg's frame threads, the in-loop deblocking filter skipped
(`skip_loop_filter`: every frame is still decoded, only the smoothing of block edges is left out, which
a 64x36 picture cannot see) and one swscale call per frame from YUV to the small RGB picture (bilinear,
as decord resizes) is the cheapest way to look at every frame. Nothing but one batch of small frames is
held, so an hour-long input streams in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from manifests.media.probe import VideoError, check_file

DECODER_OPTIONS = {"skip_loop_filter": "all"}


@contextmanager
def open_small(
    path: str | Path, width: int, height: int, batch_size: int
) -> Iterator[tuple[float, Iterator[np.ndarray]]]:
    """(fps, batches of RGB uint8 frames (T, height, width, 3)) of the first video stream, in decode
    order; any decoding failure is a one-line VideoError naming the file."""
    p = check_file(path)
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: not a readable video ({type(exc).__name__}: {exc})") from None
    try:
        if not container.streams.video:
            raise VideoError(f"{p}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if not rate or rate <= 0:
            raise VideoError(f"{p}: video stream has no frame rate")
        stream.thread_type = "AUTO"
        stream.codec_context.options = dict(DECODER_OPTIONS)
        yield float(rate), _batches(container, stream, p, width, height, batch_size)
    finally:
        container.close()


def _batches(container, stream, p: Path, width: int, height: int, batch_size: int) -> Iterator[np.ndarray]:
    batch = np.empty((batch_size, height, width, 3), np.uint8)
    scaler = VideoReformatter()  # keeps one swscale context: frame.reformat() builds a new one every frame (7x slower)
    n = 0
    try:
        for frame in container.decode(stream):
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
