"""A contact sheet of clips: one decoded frame per clip, with the object's mask and box drawn on it.

Frames come from the clip files the `clips.uri` column names (decoded by `manifests.media`); masks from the
`objects` table's COCO RLE for the same clip and frame, so a glance shows both data and labels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow.compute as pc
from matplotlib.figure import Figure  # the OO API: no pyplot state, no GUI backend
from matplotlib.patches import Rectangle

from manifests.errors import ManifestError
from manifests.media.atomic import atomic_output
from manifests.media.decode import frame_index, iter_frames
from manifests.media.probe import VideoError, check_file
from manifests.reader import open_table, read_object_masks, read_table, scan_batches
from manifests.rle import rle_decode
from manifests.storage import Location, Root, location
from manifests.uris import local_file

MASK_COLOUR = np.array([1.0, 0.2, 0.2])


@dataclass(frozen=True)
class Tile:
    clip_id: str
    frame: np.ndarray  # H x W x 3 uint8
    frame_index: int
    mask: np.ndarray | None  # H x W bool, already at frame size
    box: tuple[float, float, float, float] | None
    label: str | None


def find_clip_files(root: Location, n: int) -> list[tuple[str, Path]]:
    """The first `n` clips whose file exists, scanning only clip_id and uri."""
    found: list[tuple[str, Path]] = []
    checked = 0
    first_missing = None
    dataset = open_table(root, "clips")
    for batch in scan_batches(dataset, "clips", ["clip_id", "uri"], pc.field("uri").is_valid()):
        for clip_id, uri in zip(batch.column("clip_id").to_pylist(), batch.column("uri").to_pylist()):
            checked += 1
            try:
                path = local_file(root, uri)  # under an s3:// root, a local copy
            except (ManifestError, FileNotFoundError):
                path = None
            if path is not None and path.is_file():
                found.append((clip_id, path))
                if len(found) == n:
                    return found
            elif first_missing is None:
                first_missing = uri
    if not found:
        if checked == 0:
            raise ManifestError(f"sample: no clip in {root} has a uri (clips not extracted yet?)")
        raise ManifestError(f"sample: none of the {checked} clip files exist under {root} (e.g. {first_missing})")
    return found


def build_tiles(root: Location, clips: list[tuple[str, Path]]) -> list[Tile]:
    columns = ["object_id", "clip_id", "class_name", "frame_indices", "boxes", "mask_rle", "mask_height", "mask_width"]
    ids = [clip_id for clip_id, _ in clips]
    objects = read_table(root, "objects", columns=columns, filter=pc.field("clip_id").isin(ids)).to_pylist()
    first_object = {}
    for row in objects:
        if row["frame_indices"] and row["clip_id"] not in first_object:
            first_object[row["clip_id"]] = row
    tiles = []
    for clip_id, path in clips:
        obj = first_object.get(clip_id)
        want = obj["frame_indices"][0] if obj else 0
        frame, got = _frame_at(path, want)
        mask, box, label = None, None, None
        if obj and got == want:
            label = obj["class_name"]
            box = tuple(obj["boxes"][0]) if obj["boxes"] else None  # frame pixels, as the schema says
            small = _first_mask(root, obj, want)
            mask = None if small is None else _resize_nearest(small, frame.shape[:2])
        tiles.append(Tile(clip_id, frame, got, mask, box, label))
    return tiles


def _frame_at(path: Path, index: int) -> tuple[np.ndarray, int]:
    """Frame `index` of a clip (its last frame if shorter) as RGB uint8, and the index returned."""
    try:
        frames = frame_index(check_file(path))
        got = min(index, len(frames) - 1)
        found = list(iter_frames(path, [got], index=frames)) if got >= 0 else []
    except VideoError as exc:
        raise ManifestError(str(exc)) from None
    if not found:
        raise ManifestError(f"{path}: no decodable video frames")
    return found[0][1], got


def _first_mask(root: Location, obj: dict[str, Any], frame_index: int) -> np.ndarray | None:
    """The object's mask at `frame_index`: inline (schema 1.0 rows) or from object_frames (1.1)."""
    if obj["mask_rle"] and obj["mask_rle"][0] and obj["mask_height"] and obj["mask_width"]:
        return rle_decode(obj["mask_rle"][0], obj["mask_height"], obj["mask_width"])
    found = read_object_masks(root, obj["object_id"], frames=[frame_index]).to_pylist()
    if found and found[0]["mask_rle"] and found[0]["mask_height"] and found[0]["mask_width"]:
        return rle_decode(found[0]["mask_rle"], found[0]["mask_height"], found[0]["mask_width"])
    return None


def _resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * mask.shape[0] // shape[0]).clip(0, mask.shape[0] - 1)
    cols = (np.arange(shape[1]) * mask.shape[1] // shape[1]).clip(0, mask.shape[1] - 1)
    return cast(np.ndarray, mask[rows][:, cols])


def contact_sheet(root: Root, out: str | os.PathLike[str], n: int = 16) -> list[Tile]:
    """Write a grid PNG of up to `n` clips to `out`; returns the tiles drawn."""
    if n < 1:
        raise ManifestError("sample: -n must be at least 1")
    where = location(root)
    tiles = build_tiles(where, find_clip_files(where, n))
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile in zip(axes.flat, tiles):
        image = tile.frame.astype(np.float32) / 255.0
        if tile.mask is not None:
            image[tile.mask] = 0.5 * image[tile.mask] + 0.5 * MASK_COLOUR
        ax.imshow(image)
        if tile.box is not None:
            x0, y0, x1, y1 = tile.box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="yellow", linewidth=1))
        caption = f"{tile.clip_id[-24:]} f{tile.frame_index}" + (f" {tile.label}" if tile.label else "")
        ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    with atomic_output(Path(out)) as temp:
        fig.savefig(temp, dpi=100, format="png")
    return tiles
