"""Decoding frames, streamed through PyAV: by index (`read_frames`), over a range (`iter_frames`,
`iter_frame_batches`), or as the decoder's own pictures (`iter_decoded`, for re-encoding without a colour
round trip).

Memory does not grow with the video. One demux pass (`frame_index`, no decoding) maps display-order frame
numbers to timestamps and keyframes; a read seeks to the keyframe before each wanted frame it cannot reach
by decoding forward, converts only the wanted frames, and holds nothing but the decoder's reference
pictures and what the caller keeps. (decord, used before, grew by hundreds of MB per batch of 1080p
frames: 9.5 GiB for one 60 s video.)

Pixels: RGB frames come out of one FFmpeg filter graph (optionally deinterlace, then scale with bilinear
filtering, then convert to rgb24), the same graph decord ran, so every value computed from frames is
unchanged by the switch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import av.filter
import numpy as np

from manifests.media.h264 import is_disposable, nal_length_size
from manifests.media.pixels import DEINTERLACER, DEINTERLACER_ARGS, upright_filters
from manifests.media.probe import VideoError, check_file, open_video

K = TypeVar("K")

DECODER_THREADS = min(8, len(os.sched_getaffinity(0)))
"""FFmpeg frame threads per decoder: each holds a picture, so memory is bounded by resolution times this."""


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame of a video is, from its packets: frame i (display order) is presented at pts[i].

    `timestamps` is False where the container gives packets without unique timestamps; reads then count
    frames as they come out of the decoder, from the start.
    """

    pts: np.ndarray  # (N,) int64, ascending
    key_before: np.ndarray  # (N,) int64: the last frame <= i that decoding can start at (0 when none is marked)
    timestamps: bool
    time_base: Fraction = Fraction(1)

    def __len__(self) -> int:
        return len(self.pts)

    def number(self, pts: int | None) -> int:
        """The frame number presented at `pts`, or -1 for a timestamp the index does not hold."""
        if pts is None:
            return -1
        i = int(np.searchsorted(self.pts, pts))
        return i if i < len(self.pts) and self.pts[i] == pts else -1

    @classmethod
    def from_packets(cls, pts: Sequence[int | None], keyframe: Sequence[bool], time_base: Fraction) -> FrameIndex:
        """The index of a stream whose packets (decode order) carry these timestamps and keyframe flags."""
        timed = [t for t in pts if t is not None]
        if len(timed) < len(pts) or len(set(timed)) < len(timed):
            return cls(np.arange(len(pts), dtype=np.int64), np.zeros(len(pts), np.int64), False, time_base)
        order = np.argsort(np.asarray(timed, np.int64), kind="stable")
        key = np.asarray(keyframe, bool)[order]  # (N,) in display order
        key_before = np.maximum.accumulate(np.where(key, np.arange(len(order)), 0))
        return cls(np.asarray(timed, np.int64)[order], key_before, True, time_base)

    def seconds(self, frame: int) -> float:
        """When frame `frame` (0..N; N is the end of the last frame) is shown, in seconds from the first
        frame, from the timestamps: right for variable frame rates, where frame / fps is not."""
        if not self.timestamps or len(self.pts) < 2:
            raise VideoError("the video's frames carry no usable timestamps")
        if frame >= len(self.pts):  # the end of the last frame: its start plus the mean frame duration
            mean = (self.pts[-1] - self.pts[0]) / (len(self.pts) - 1)
            return float((self.pts[-1] - self.pts[0] + mean * (frame - len(self.pts) + 1)) * self.time_base)
        return float((self.pts[frame] - self.pts[0]) * self.time_base)

    def keyframe_at_or_before(self, frame: int) -> int:
        """The last frame <= `frame` that decoding can start at (0 when none is marked)."""
        return int(self.key_before[frame])


def frame_index(path: str | Path) -> FrameIndex:
    """Demux the first video stream (no decoding) and index its frames by presentation timestamp."""
    pts: list[int | None] = []
    key: list[bool] = []
    with open_video(path) as (container, stream):
        time_base = stream.time_base or Fraction(1)
        for packet in container.demux(stream):
            if packet.size > 0:
                pts.append(packet.pts)
                key.append(bool(packet.is_keyframe))
    return FrameIndex.from_packets(pts, key, time_base)


def iter_decoded(
    path: str | Path, frames: Iterable[int], index: FrameIndex | None = None
) -> Iterator[tuple[int, av.VideoFrame]]:
    """(frame number, decoded picture) for each of `frames` (ascending, unique), in order.

    Seeks to the keyframe before a wanted frame whenever that keyframe lies past what has been decoded,
    so sparse frames of a long video cost a GOP each, not the frames between them; in H.264, pictures that
    are neither wanted nor referenced by others (non-reference B-frames) are not decoded at all. Ends early
    (no error) where the video holds fewer frames than asked for; callers that need them all check.
    """
    p = check_file(path)
    index = frame_index(p) if index is None else index
    numbers = list(frames)
    wanted, targets = set(numbers), iter(numbers)
    target = next(targets, None)
    if target is None:
        return
    with open_video(p, "decode failed") as (container, stream):
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = DECODER_THREADS
        length_size = nal_length_size(stream.codec_context.extradata)

        def skip(packet: av.Packet[av.VideoStream]) -> bool:  # a picture nobody needs: not wanted, not a reference
            return index.number(packet.pts) not in wanted and is_disposable(memoryview(packet), length_size)

        sparse = index.timestamps and stream.codec_context.name == "h264" and len(wanted) < len(index)
        decoded, count = -1, -1  # last frame number out of the decoder; frames out since the last seek
        while target is not None:
            key = index.keyframe_at_or_before(target) if index.timestamps else 0
            if index.timestamps and (decoded < key or decoded >= target) and target > 0:
                container.seek(int(index.pts[key]), stream=stream, backward=True, any_frame=False)
            for frame in _pictures(container, stream, skip if sparse else None):
                count += 1
                decoded = index.number(frame.pts) if index.timestamps else count
                if decoded < target:
                    continue
                while target is not None and target < decoded:  # a frame the decoder skipped
                    target = next(targets, None)
                if target == decoded:
                    yield decoded, frame
                    target = next(targets, None)
                if target is None or (index.timestamps and index.keyframe_at_or_before(target) > decoded + 1):
                    break  # done, or the next wanted frame is reached faster by seeking
            else:
                return  # the stream ended


def _pictures(
    container: av.container.InputContainer, stream: av.VideoStream, skip: Callable[[av.Packet[av.VideoStream]], bool] | None
) -> Iterator[av.VideoFrame]:
    """Decoded pictures of `stream` from the container's position on, leaving out packets `skip` rejects."""
    for packet in container.demux(stream):
        if packet.size and skip is not None and skip(packet):
            continue
        yield from packet.decode()


class RgbConverter:
    """Decoded pictures to upright RGB uint8 (H, W, 3) through one filter graph:
    [deinterlace ->] [turn upright ->] [scale ->] rgb24.

    Built from the first picture (its size, format and display rotation), so every read is upright, as
    `probe`'s width and height are. Deinterlacing holds one picture back, so pictures go in with `push`
    and come out later, in order; `push(None)` flushes.
    """

    def __init__(self, size: tuple[int, int] | None = None, deinterlace: bool = False) -> None:
        self.size = size
        self.deinterlace = deinterlace
        self._graph: av.filter.Graph | None = None

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=frame.time_base or Fraction(1, 90000))]
        steps = [(DEINTERLACER, DEINTERLACER_ARGS)] if self.deinterlace else []
        steps += upright_filters(frame.rotation)
        quarter_turn = round(frame.rotation / 90) % 2 == 1
        upright = (frame.height, frame.width) if quarter_turn else (frame.width, frame.height)
        if self.size is not None and tuple(self.size) != upright:
            steps.append(("scale", f"{int(self.size[0])}:{int(self.size[1])}:flags=bilinear"))
        nodes += [graph.add(name, args or None) for name, args in [*steps, ("format", "rgb24")]]
        nodes.append(graph.add("buffersink"))
        for a, b in itertools.pairwise(nodes):
            a.link_to(b)
        graph.configure()
        return graph

    def push(self, frame: av.VideoFrame | None) -> list[np.ndarray]:
        """Feed one picture (None flushes) and return the RGB frames that came out, (H, W, 3) each."""
        if self._graph is None:
            if frame is None:
                return []
            self._graph = self._build(frame)
        self._graph.push(frame)
        out: list[np.ndarray] = []
        while True:
            try:
                out.append(self._graph.pull().to_ndarray())
            except (av.BlockingIOError, av.EOFError):
                return out


def iter_frames(
    path: str | Path,
    frames: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
    deinterlace: bool = False,
    index: FrameIndex | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, RGB uint8 (H, W, 3)) for each of `frames` (ascending, unique; all when None), scaled
    to `size` = (W, H) when given; streamed, so a whole video never sits in memory."""
    p = check_file(path)
    index = frame_index(p) if index is None else index
    numbers = range(len(index)) if frames is None else frames
    converter = RgbConverter(size, deinterlace)
    pending: list[int] = []  # numbers of pictures pushed whose RGB has not come out yet (deinterlacing)
    for number, frame in iter_decoded(p, numbers, index):
        pending.append(number)
        for rgb in converter.push(frame):
            yield pending.pop(0), rgb
    for rgb in converter.push(None):
        yield pending.pop(0), rgb


def read_frame_sets(
    path: str | Path,
    sets: Mapping[K, tuple[Sequence[int], tuple[int, int] | None]],
    index: FrameIndex | None = None,
    deinterlace: bool = False,
) -> dict[K, np.ndarray]:
    """Several reads of one video in one decode: for each key, its frame numbers (any order, repeats
    allowed) as RGB uint8 (T, H, W, 3) at its size (W, H), or the stored size when None."""
    p = check_file(path)
    index = frame_index(p) if index is None else index
    wanted = sorted({int(i) for numbers, _ in sets.values() for i in numbers})
    if wanted and (wanted[0] < 0 or wanted[-1] >= len(index)):
        bad = wanted[0] if wanted[0] < 0 else wanted[-1]
        raise VideoError(f"{p}: frame {bad} is outside the video's {len(index)} frames")
    by_size = {size for _, size in sets.values()}
    converters = {size: RgbConverter(size, deinterlace) for size in by_size}
    needs = {size: {int(i) for numbers, s in sets.values() if s == size for i in numbers} for size in by_size}
    got: dict[tuple[int, int] | None, dict[int, np.ndarray]] = {size: {} for size in by_size}
    pending: dict[tuple[int, int] | None, list[int]] = {size: [] for size in by_size}  # pushed, not yet out

    def collect(size: tuple[int, int] | None, picture: av.VideoFrame | None) -> None:
        for rgb in converters[size].push(picture):
            got[size][pending[size].pop(0)] = rgb

    for number, picture in iter_decoded(p, wanted, index):
        for size in by_size:
            if number in needs[size]:
                pending[size].append(number)
                collect(size, picture)
    for size in by_size:
        collect(size, None)
    out: dict[K, np.ndarray] = {}
    for key, (numbers, size) in sets.items():
        missing = [int(i) for i in numbers if int(i) not in got[size]]
        if missing:
            raise VideoError(f"{p}: frame {missing[0]} could not be decoded")
        h, w = (size[1], size[0]) if size else (0, 0)
        out[key] = np.stack([got[size][int(i)] for i in numbers]) if len(numbers) else np.zeros((0, h, w, 3), np.uint8)
    return out


def read_frames(
    path: str | Path,
    indices: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> np.ndarray:
    """Decode the given frame indices (all when None; any order, repeats allowed) as RGB uint8, shape
    (T, H, W, 3), scaled when both `width` and `height` are given."""
    p = check_file(path)
    size = (int(width), int(height)) if width and height else None
    index = frame_index(p)
    numbers = range(len(index)) if indices is None else indices
    frames = read_frame_sets(p, {0: (numbers, size)}, index)[0]
    if not len(frames) and indices is None:
        raise VideoError(f"{p}: no decodable video frames")
    return frames


def read_preview_run(path: str | Path, start: int, count: int, size: tuple[int, int]) -> np.ndarray:
    """Frames start..start+count-1 (fewer where the video ends first) as (T, H, W, 3) RGB uint8 scaled to
    `size` = (W, H), as the sample sheets show them; a VideoError when none decodes."""
    p = check_file(path)
    index = frame_index(p)
    out = [rgb for _, rgb in iter_frames(p, range(start, min(start + count, len(index))), size, index=index)]
    if not out:
        raise VideoError(f"{p}: no decodable frames from frame {start}")
    return np.stack(out)


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
    p = check_file(path)
    index = frame_index(p)
    stop = len(index) if end is None else min(end, len(index))
    size = (int(width), int(height)) if width and height else None
    frames = iter_frames(p, range(start, stop, step), size, index=index)
    while batch := list(itertools.islice(frames, batch_size)):
        yield batch[0][0], np.stack([rgb for _, rgb in batch])
