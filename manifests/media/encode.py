"""The one video encoder: RGB frames to an H.264 mp4 (libx264, yuv420p) through PyAV (OpenCV cannot write
H.264)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import av
import numpy as np

from manifests.media.atomic import durable_replace, temp_path
from manifests.media.probe import VideoError

if TYPE_CHECKING:
    from av.container import OutputContainer
    from av.video.stream import VideoStream


class VideoWriter:
    """Write RGB frames as an H.264 mp4 (yuv420p, even dimensions) through PyAV.

    Writes to a temporary name and renames on a clean close (see `atomic`), so a crash never leaves a
    half-written file under the final name; a writer closed with no frame written leaves no file.
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 18, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._tmp = temp_path(self.path)
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self._tmp), mode="w")
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape (H, W, 3); H and W must be even (yuv420p)."""
        self.write_picture(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))

    def write_picture(self, picture: av.VideoFrame) -> None:
        """Append one decoded picture as it is (a yuv420p picture is encoded with no colour conversion).

        It is stamped with the clip's own clock (frame n at n / fps) and its picture type is cleared, so a
        source keyframe does not force one in the clip. A decoded picture keeps its source's time base and
        duration: with only its pts cleared, libx264 stamped every packet 0 (a clip of one frame's duration
        that the muxer refused after a few hundred frames)."""
        assert self._container is not None, "VideoWriter.write outside its with block"
        if self._stream is None:
            self._stream = self._add_stream(picture.width, picture.height)
        picture.pts, picture.time_base = self.frames_written, 1 / self._rate
        picture.pict_type = av.video.frame.PictureType.NONE
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames_written += 1

    def _add_stream(self, w: int, h: int) -> VideoStream:
        assert self._container is not None
        if h % 2 or w % 2:
            raise VideoError(f"{self.path}: frame size {w}x{h} must be even for H.264 yuv420p")
        stream = self._container.add_stream("libx264", rate=self._rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        # mbtree's lookahead is what makes libx264 output differ run to run here; without it the same
        # frames give the same bytes (a few % larger files at the same crf).
        stream.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": "mbtree=0"}
        return stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._container is not None  # __exit__ runs only after __enter__ opened it
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
