"""`manifests sample --pairs`: edit pairs as source | target | mask panels, in a PNG sheet and a short mp4.

The PNG has one row per pair at a middle frame (the middle of the frames where the mask is not empty, for
local edits), with a caption strip naming the edit type, pair and instruction; the mp4 plays the same
three panels over up to `seconds` of each pair, pairs one after another, at PREVIEW_FPS. Pairs are taken
round-robin over edit types (each type's pairs in pair_id order), so every edit type shows and the same
dataset always gives the same sheet. A pair whose files are missing or do not decode is skipped (reported
through `on_skip`) and the next candidate takes its place.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import pyarrow.compute as pc

from manifests.errors import ManifestError, first_line
from manifests.media.atomic import atomic_output
from manifests.media.decode import read_preview_run
from manifests.media.encode import VideoWriter
from manifests.media.masks import MaskFile, open_mask_file
from manifests.media.probe import VideoError, VideoInfo, probe_pyav
from manifests.reader import open_table, read_table, scan_batches
from manifests.storage import Location, Root, location
from manifests.uris import local_file

Loaded = TypeVar("Loaded")
PREVIEW_FPS = 24.0
PREVIEW_CRF = 23
PANEL_HEIGHT = 180
HEADER_HEIGHT = 24
CAPTION_HEIGHT = 44
CANDIDATES_PER_TYPE = 2
"""Each edit type offers up to CANDIDATES_PER_TYPE * n pairs, so skipped pairs can be replaced."""
PANEL_TITLES = ("source", "target", "mask on source")
MASK_RGB = np.array([255.0, 50.0, 50.0])
FONT = cv2.FONT_HERSHEY_SIMPLEX
PAIR_COLUMNS = ["pair_id", "edit_type", "instruction", "source_uri", "target_uri", "mask_uri"]
PAIR_ERRORS = (ManifestError, VideoError, OSError, ValueError)
"""What one bad pair can raise while its files are read; any of these skips the pair, nothing else does."""


@dataclass(frozen=True)
class PairClip:
    """One pair's frames at panel size, already resampled to PREVIEW_FPS."""

    row: dict[str, Any]  # the edit_pairs row (PAIR_COLUMNS)
    source: np.ndarray  # (T, h, w, 3) uint8
    target: np.ndarray  # (T, h, w, 3) uint8
    mask: np.ndarray | None  # (T, h, w) bool; None for a global edit
    middle: int  # index into T of the sheet's frame
    frame_indices: list[int]  # (T,) frame of the pair's videos each preview frame shows


@dataclass(frozen=True)
class PairSheet:
    png: Path
    mp4: Path
    pairs: list[dict[str, Any]]  # rows drawn, in sheet order
    skipped: list[tuple[str, str]]  # (pair_id, reason)
    video_frames: int


def choose_pairs(root: Location, n: int) -> list[dict[str, Any]]:
    """Candidate rows, round-robin over edit types, each type's pairs by pair_id (first `n` drawable are used)."""
    keep = CANDIDATES_PER_TYPE * n
    smallest: dict[str, list[str]] = {}
    for batch in scan_batches(open_table(root, "edit_pairs"), "edit_pairs", ["pair_id", "edit_type"]):
        for pair_id, edit_type in zip(batch.column("pair_id").to_pylist(), batch.column("edit_type").to_pylist()):
            smallest.setdefault(edit_type, []).append(pair_id)
        for edit_type, ids in smallest.items():
            if len(ids) > keep:
                smallest[edit_type] = sorted(ids)[:keep]
    if not smallest:
        raise ManifestError(f"sample --pairs: {root} has no edit_pairs rows (no edits made yet?)")
    order = [pid for group in itertools.zip_longest(*(sorted(smallest[t])[:keep] for t in sorted(smallest)))
             for pid in group if pid is not None]
    rows = read_table(root, "edit_pairs", PAIR_COLUMNS, pc.field("pair_id").isin(order)).to_pylist()
    by_id = {row["pair_id"]: row for row in rows}
    return [by_id[pid] for pid in order]


def panel_size(header: VideoInfo, height: int) -> tuple[int, int]:
    """(W, H) of a panel: `height` tall, the first pair's aspect, both even (H.264 yuv420p wants even sizes)."""
    height -= height % 2
    width = max(2, round(height * header.width / header.height / 2) * 2)
    return width, height


def fit_size(header: VideoInfo, panel: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of a video scaled to fit inside `panel` with its aspect kept (letterboxed later)."""
    scale = min(panel[0] / header.width, panel[1] / header.height)
    return max(1, round(header.width * scale)), max(1, round(header.height * scale))


def preview_indices(frames: int, fps: float, middle: int, seconds: float) -> list[int]:
    """Frames of a video to show over up to `seconds` around `middle`, one per PREVIEW_FPS tick."""
    span = min(frames, max(1, round(seconds * fps)))
    start = min(max(0, middle - span // 2), frames - span)
    ticks = max(1, round(span * PREVIEW_FPS / fps))
    return [start + min(span - 1, int(k * fps / PREVIEW_FPS)) for k in range(ticks)]


def load_pair(root: Location, row: dict[str, Any], panel_height: int, panel: tuple[int, int] | None, seconds: float
              ) -> tuple[PairClip, tuple[int, int]]:
    """Decode one pair's preview frames (raising one of PAIR_ERRORS if it cannot be drawn) and the panel size."""
    source_path, source = _read(root, row, "source_uri", probe_pyav)
    target_path, target = _read(root, row, "target_uri", probe_pyav)
    mask_file = _read(root, row, "mask_uri", open_mask_file)[1] if row["mask_uri"] else None
    if (source.width, source.height) != (target.width, target.height):
        raise ManifestError(f"source is {source.width}x{source.height}, target {target.width}x{target.height}")
    frames = min(source.frames, target.frames)
    shown = [t for t in mask_file.frames if t < frames] if mask_file else []
    middle = shown[len(shown) // 2] if shown else frames // 2
    indices = preview_indices(frames, source.fps, middle, seconds)
    panel = panel or panel_size(source, panel_height)
    size = fit_size(source, panel)
    start, count = indices[0], indices[-1] - indices[0] + 1
    clips = [read_preview_run(path, start, count, size) for path in (source_path, target_path)]  # (count, h, w, 3)
    decoded = min(len(c) for c in clips)
    indices = [t for t in indices if t - start < decoded]
    picks = [t - start for t in indices]
    mask = None if mask_file is None else np.stack([_mask_at(mask_file, t, size) for t in indices])
    return PairClip(row, clips[0][picks], clips[1][picks], mask, _nearest(indices, middle), indices), panel


def _read(root: Location, row: dict[str, Any], key: str, reader: Callable[[Path], Loaded]) -> tuple[Path, Loaded]:
    """The file a row's `key` names and what `reader` makes of it; errors name the uri, not the local path."""
    try:
        path = local_file(root, row[key])  # under an s3:// root, a local copy
    except FileNotFoundError:
        raise ManifestError(f"{key} {row[key]!r} does not exist") from None
    if not path.is_file():
        raise ManifestError(f"{key} {row[key]!r} does not exist")
    try:
        return path, reader(path)
    except PAIR_ERRORS as exc:  # PyAV adds an errno and the absolute path, our readers the path
        reason = (getattr(exc, "strerror", None) or first_line(exc)).removeprefix(f"{path}: ")
        raise ManifestError(f"{key} {row[key]!r}: {reason}") from None


def _mask_at(mask_file: MaskFile, index: int, size: tuple[int, int]) -> np.ndarray:
    mask = mask_file.frame(index).astype(np.uint8)
    return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0  # (h, w)


def _nearest(indices: list[int], target: int) -> int:
    return min(range(len(indices)), key=lambda k: abs(indices[k] - target))


def overlay(frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The source dimmed, with the mask tinted red on it; a global edit's source dimmed under a note."""
    out = frame.astype(np.float32) * 0.4
    if mask is not None:
        out[mask] = 0.5 * frame[mask] + 0.5 * MASK_RGB
    image = out.astype(np.uint8)
    if mask is None:
        _text(image, "no mask (global edit)", 6, image.shape[0] // 2, (220, 220, 220))
    return image


def letterbox(image: np.ndarray, panel: tuple[int, int]) -> np.ndarray:
    """`image` centred on a black (H, W, 3) panel."""
    width, height = panel
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - image.shape[0]) // 2, (width - image.shape[1]) // 2
    out[y:y + image.shape[0], x:x + image.shape[1]] = image
    return out


def header_strip(panel: tuple[int, int]) -> np.ndarray:
    strip = np.full((HEADER_HEIGHT, 3 * panel[0], 3), 16, np.uint8)
    for k, title in enumerate(PANEL_TITLES):
        _text(strip, title, k * panel[0] + 6, HEADER_HEIGHT - 8, (255, 255, 255))
    return strip


def pair_row(clip: PairClip, t: int, panel: tuple[int, int]) -> np.ndarray:
    """(panel H + CAPTION_HEIGHT, 3 * panel W, 3): the three panels at preview frame `t` over the caption."""
    mask = None if clip.mask is None else clip.mask[t]
    panels = [clip.source[t], clip.target[t], overlay(clip.source[t], mask)]
    caption = np.full((CAPTION_HEIGHT, 3 * panel[0], 3), 32, np.uint8)
    row = clip.row
    _text(caption, f"{row['edit_type']}   {row['pair_id']}   frame {clip.frame_indices[t]}", 6, 17, (255, 210, 90))
    _text(caption, row["instruction"], 6, 37, (255, 255, 255))
    strip = np.hstack([letterbox(p, panel) for p in panels])
    strip[:, panel[0] - 1: panel[0] + 1] = strip[:, 2 * panel[0] - 1: 2 * panel[0] + 1] = 0  # panel borders
    return np.vstack([strip, caption])


def _text(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float = 0.45) -> None:
    """Draw one line, cut with '...' to fit the image's width."""
    room = image.shape[1] - x - 4
    while text and cv2.getTextSize(text, FONT, scale, 1)[0][0] > room:
        text = text[: max(0, len(text) - 4)] + "..." if len(text) > 3 else ""
    cv2.putText(image, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def pair_sheet(
    root: Root,
    out: str | os.PathLike[str],
    n: int = 8,
    seconds: float = 2.0,
    panel_height: int = PANEL_HEIGHT,
    on_skip: Callable[[str, str], None] | None = None,
) -> PairSheet:
    """Write the PNG sheet to `out` (a .png) and the preview beside it (.mp4) for up to `n` pairs."""
    png = Path(out)
    if png.suffix.lower() != ".png":
        raise ManifestError(f"sample --pairs: --out {png} must name a .png file (the .mp4 is written beside it)")
    if n < 1 or seconds <= 0 or panel_height < 16:
        raise ManifestError("sample --pairs: need -n >= 1, --seconds > 0 and a panel height of at least 16")
    where = location(root)
    skipped: list[tuple[str, str]] = []
    panel: tuple[int, int] | None = None

    def drawable() -> Iterator[PairClip]:
        nonlocal panel
        drawn = 0
        for row in choose_pairs(where, n):
            if drawn == n:
                return
            try:
                clip, panel = load_pair(where, row, panel_height, panel, seconds)
            except PAIR_ERRORS as exc:
                skipped.append((row["pair_id"], first_line(exc)))
                if on_skip:
                    on_skip(*skipped[-1])
                continue
            drawn += 1
            yield clip

    clips = drawable()
    first = next(clips, None)
    if first is None:
        raise ManifestError(f"sample --pairs: none of the {len(skipped)} pairs tried could be drawn")
    assert panel is not None
    header = header_strip(panel)
    drawn: list[dict[str, Any]] = []
    sheet_rows: list[np.ndarray] = []

    def video() -> Iterator[np.ndarray]:
        for clip in itertools.chain([first], clips):
            drawn.append(clip.row)
            sheet_rows.append(pair_row(clip, clip.middle, panel))
            for t in range(len(clip.frame_indices)):
                yield np.vstack([header, pair_row(clip, t, panel)])

    mp4 = png.with_suffix(".mp4")
    with VideoWriter(mp4, PREVIEW_FPS, crf=PREVIEW_CRF) as writer:
        for frame in video():
            writer.write(frame)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.vstack([header, *sheet_rows]), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ManifestError(f"{png}: PNG encoding failed")
    with atomic_output(png) as temp:
        temp.write_bytes(encoded.tobytes())
    return PairSheet(png, mp4, drawn, skipped, writer.frames_written)
