"""Decoding frames as RGB uint8: by index (`read_frames`) or as batches over a range (`iter_frame_batches`).

decord first (random access, resize on decode), PyAV for what decord cannot open or decode. Both shapes
suit long inputs: a read by indices decodes only those frames, and batches open the file once and never
hold the whole video.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import av
import numpy as np

from manifests.media.probe import VideoError, check_file, open_decord


def read_frames(
    path: str | Path,
    indices: Sequence[int] | None = None,
    width: int | None = None,
    height: int | None = None,
) -> np.ndarray:
    """Decode the given frame indices (all when None) as RGB uint8, shape (T, H, W, 3)."""
    p = check_file(path)
    try:
        vr = open_decord(p, width, height)
        idx = list(range(len(vr))) if indices is None else [int(i) for i in indices]
        if not idx:
            return np.zeros((0, height or 0, width or 0, 3), np.uint8)
        return cast(np.ndarray, vr.get_batch(idx).asnumpy())  # (T, H, W, 3)
    except VideoError:
        raise
    except Exception:  # noqa: BLE001 - decord raises bare DECORDError/RuntimeError; PyAV reads what it cannot
        return _read_frames_pyav(p, indices, width, height)


def _read_frames_pyav(p: Path, indices: Sequence[int] | None, width: int | None, height: int | None) -> np.ndarray:
    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    frames: dict[int, np.ndarray] = {}
    for i, frame in enumerate(iter_pyav(p, width, height)):
        if wanted is None or i in wanted:
            frames[i] = frame
        if wanted is not None and i >= wanted[-1]:
            break
    order = list(frames) if indices is None else [int(i) for i in indices]
    missing = [i for i in order if i not in frames]
    if missing:
        raise VideoError(f"{p}: frame {missing[0]} is past the end of the video")
    return np.stack([frames[i] for i in order]) if order else np.zeros((0, height or 0, width or 0, 3), np.uint8)


def iter_pyav(p: Path, width: int | None = None, height: int | None = None, one_pass: bool = False
              ) -> Iterator[np.ndarray]:
    """Every frame in decode order as RGB uint8 (H, W, 3), scaled when both `width` and `height` are given.

    Curation scales the YUV picture and then converts it; `one_pass` scales while converting (one swscale
    call), as the sample sheets draw their previews. The two differ by a few levels, so each keeps its own.
    """
    try:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if width and height and one_pass:
                    yield frame.to_ndarray(width=int(width), height=int(height), format="rgb24")
                    continue
                if width and height:
                    frame = frame.reformat(width=int(width), height=int(height))
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise VideoError(f"{p}: decode failed ({type(exc).__name__}: {exc})") from None


def read_preview_run(path: str | Path, start: int, count: int, size: tuple[int, int]) -> np.ndarray:
    """Frames start..start+count-1 (fewer where the video ends first) as (T, H, W, 3) RGB uint8 scaled to
    `size` = (W, H) in one pass, as the sample sheets show them; a VideoError when none decodes."""
    p = check_file(path)
    out = list(itertools.islice(iter_pyav(p, *size, one_pass=True), start, start + count))
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
    try:
        vr = open_decord(p, width, height)
        n = len(vr)
    except Exception:  # noqa: BLE001 - decord raises bare DECORDError/RuntimeError; PyAV reads what it cannot
        vr = None
    if vr is not None:
        all_idx = list(range(start, n if end is None else min(end, n), step))
        for first in range(0, len(all_idx), batch_size):
            idx = all_idx[first : first + batch_size]
            try:
                frames = vr.get_batch(idx).asnumpy()
            except Exception:  # noqa: BLE001 - decord can open some inputs it cannot decode (e.g. a resize to width 48)
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
    for i, frame in enumerate(iter_pyav(p, width, height)):
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
