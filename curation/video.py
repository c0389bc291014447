"""Video decoding and encoding: the one place that talks to decord and PyAV.

decord is the fast path (random access, decoder-side resize); PyAV is the fallback for what decord
cannot open and the only writer (H.264 through libx264; OpenCV cannot write H.264).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from manifests.layout import durable_replace


class VideoError(Exception):
    """A video could not be read or written; the message is one line naming the file."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    width: int
    height: int
    duration_s: float
    codec: str
    backend: str  # "decord" or "pyav": which library could read it


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes)")
    return p


def _codec_name(path: Path) -> str:
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return streams[0].codec_context.name if streams else "unknown"
    except (av.FFmpegError, OSError):
        return "unknown"


def _decord_reader(path: Path, width: int | None = None, height: int | None = None):
    import decord  # imported late: it spawns no threads until used, but keeps import of this module light

    kwargs = {}
    if width and height:
        kwargs = {"width": int(width), "height": int(height)}
    # num_threads=0 lets FFmpeg pick its decode threads: 1.4x the frames/s of one thread at 640x360 here.
    return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0, **kwargs)


def probe(path: str | Path) -> VideoInfo:
    """Read stream metadata with decord, falling back to PyAV (which counts frames by demuxing)."""
    p = _check_file(path)
    try:
        vr = _decord_reader(p)
        frames = len(vr)
        fps = float(vr.get_avg_fps())
        h, w = vr[0].shape[:2] if frames else (0, 0)
        if frames > 0 and fps > 0:
            return VideoInfo(fps, frames, int(w), int(h), frames / fps, _codec_name(p), "decord")
    except Exception:  # decord raises bare DECORDError/RuntimeError for anything it cannot open
        pass
    return _probe_pyav(p)


def _probe_pyav(p: Path) -> VideoInfo:
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            codec = stream.codec_context.name
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: not a readable video ({type(exc).__name__}: {exc})") from None
    if frames == 0 or fps <= 0:
        raise VideoError(f"{p}: video stream has no decodable frames")
    return VideoInfo(fps, frames, width, height, frames / fps, codec, "pyav")


def read_frames(
    path: str | Path,
    indices: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> np.ndarray:
    """Decode the given frame indices (all when None) as RGB uint8, shape (T, H, W, 3)."""
    p = _check_file(path)
    try:
        vr = _decord_reader(p, width, height)
        idx = list(range(len(vr))) if indices is None else [int(i) for i in indices]
        if not idx:
            return np.zeros((0, height or 0, width or 0, 3), np.uint8)
        return vr.get_batch(idx).asnumpy()  # (T, H, W, 3)
    except VideoError:
        raise
    except Exception:
        return _read_frames_pyav(p, indices, width, height)


def _read_frames_pyav(p: Path, indices, width, height) -> np.ndarray:
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    for i, frame in enumerate(_iter_pyav(p, width, height)):
        if wanted is None or i in wanted:
            frames[i] = frame
        if wanted is not None and i >= wanted[-1]:
            break
    order = list(frames) if indices is None else [int(i) for i in indices]
    missing = [i for i in order if i not in frames]
    if missing:
        raise VideoError(f"{p}: frame {missing[0]} is past the end of the video")
    return np.stack([frames[i] for i in order]) if order else np.zeros((0, height or 0, width or 0, 3), np.uint8)


def _iter_pyav(p: Path, width: int | None, height: int | None) -> Iterator[np.ndarray]:
    try:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if width and height:
                    frame = frame.reformat(width=int(width), height=int(height))
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: decode failed ({type(exc).__name__}: {exc})") from None


def iter_frame_batches(
    path: str | Path,
    batch_size: int = 64,
    width: int | None = None,
    height: int | None = None,
    step: int = 1,
    start: int = 0,
    end: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index of first frame, frames (T, H, W, 3)) over frames [start, end) taken every `step`,
    opening the file once, so long videos never sit in memory whole."""
    p = _check_file(path)
    try:
        vr = _decord_reader(p, width, height)
        n = len(vr)
    except Exception:
        vr = None
    if vr is not None:
        all_idx = list(range(start, n if end is None else min(end, n), step))
        for first in range(0, len(all_idx), batch_size):
            idx = all_idx[first : first + batch_size]
            try:
                frames = vr.get_batch(idx).asnumpy()
            except Exception:  # decord can open some inputs it cannot decode (e.g. a resize to width 48)
                yield from _iter_batches_pyav(p, batch_size, width, height, step, idx[0], end)
                return
            yield idx[0], frames
        return
    yield from _iter_batches_pyav(p, batch_size, width, height, step, start, end)


def _iter_batches_pyav(
    p: Path, batch_size: int, width: int | None, height: int | None, step: int, start: int, end: int | None
) -> Iterator[tuple[int, np.ndarray]]:
    batch: list[np.ndarray] = []
    first = 0
    for i, frame in enumerate(_iter_pyav(p, width, height)):
        if end is not None and i >= end:
            break
        if i < start or (i - start) % step:
            continue
        if not batch:
            first = i
        batch.append(frame)
        if len(batch) == batch_size:
            yield first, np.stack(batch)
            batch = []
    if batch:
        yield first, np.stack(batch)


class VideoWriter:
    """Write RGB frames as an H.264 mp4 (yuv420p, even dimensions) through PyAV.

    Writes to a temporary name and renames on a clean close, so a crash never leaves a
    half-written file under the final name.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 18, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self._tmp = self.path.with_name(f".{self.path.name}.tmp.mp4")
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._tmp), mode="w")
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape (H, W, 3); H and W must be even (yuv420p)."""
        if self._stream is None:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:
                raise VideoError(f"{self.path}: frame size {w}x{h} must be even for H.264 yuv420p")
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = w, h
            self._stream.pix_fmt = "yuv420p"
            # mbtree's lookahead is what makes libx264 output differ run to run here; without it the same
            # frames give the same bytes (a few % larger files at the same crf).
            self._stream.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": "mbtree=0"}
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def __exit__(self, exc_type, exc, tb) -> None:
        committed = False
        try:
            try:
                if exc_type is None and self._stream is not None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
            finally:
                self._container.close()
            if exc_type is None and self._stream is not None:
                durable_replace(self._tmp, self.path)  # fsync'ed before the clips row that names it commits
                committed = True
        finally:
            if not committed:  # an exception in the body, the flush (disk full) or the rename: no temp file left
                self._tmp.unlink(missing_ok=True)
