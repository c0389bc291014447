"""The few PyAV frame reads and writes the `sample` sheets need (manifests never imports `curation`).

Only what a preview wants: one frame, a short run of frames scaled down on decode, a frame count from
the container (or its packets), and an H.264 mp4 written under a temp name and renamed when complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from manifests.errors import ManifestError
from manifests.render import atomic_output

DEFAULT_FPS = 24.0


@dataclass(frozen=True)
class VideoHeader:
    frames: int
    fps: float
    width: int
    height: int


def decode_frame(path: Path, index: int) -> tuple[np.ndarray, int]:
    """Frame `index` of a video (or its last frame if shorter) as RGB uint8, and the index returned."""
    last, last_index = None, -1
    with av.open(os.fspath(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            last, last_index = frame, i
            if i >= index:
                break
    if last is None:
        raise ManifestError(f"{path}: no decodable video frames")
    return last.to_ndarray(format="rgb24"), last_index


def read_header(path: Path) -> VideoHeader:
    """Frame count, rate and size of the first video stream; counts packets when the header has no count."""
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ManifestError(f"{path}: no video stream")
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        fps = float(stream.average_rate) if stream.average_rate else DEFAULT_FPS
        header = VideoHeader(frames, fps, stream.codec_context.width, stream.codec_context.height)
    if header.frames < 1 or header.width < 1 or header.height < 1:
        raise ManifestError(f"{path}: no video frames")
    return header


def decode_run(path: Path, start: int, count: int, size: tuple[int, int]) -> np.ndarray:
    """Frames start..start+count-1 as (count', H, W, 3) RGB uint8 scaled to `size` = (W, H) while decoding."""
    width, height = size
    out = []
    with av.open(os.fspath(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start + count:
                break
            if i >= start:
                out.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
    if not out:
        raise ManifestError(f"{path}: no decodable frames from frame {start}")
    return np.stack(out)  # (T, H, W, 3)


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float, crf: int = 23) -> int:
    """Encode RGB frames (H, W, 3), H and W even, as H.264 yuv420p; the file appears only when complete."""
    written = 0
    with atomic_output(path) as temp, av.open(os.fspath(temp), "w", format="mp4") as container:
        stream = None
        for image in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
            written += 1
        if stream is None:
            raise ManifestError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return written
