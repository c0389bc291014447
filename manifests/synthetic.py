"""Realistic synthetic manifests (all six tables), built column-wise so millions of rows take seconds.

Used by the scale benchmark, by tests, and by anyone who needs a dataset to point the CLI at.
Values follow plausible distributions (frame rates, resolutions, Laplacian-variance blur, luminance,
motion); ids follow the schema's conventions; provenance is filled as the real stages would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict, Unpack, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.rle import rle_encode
from manifests.schema import NO_MODEL, PAIR_GATES, RANDOM_INIT, SCHEMAS
from manifests.writer import ManifestWriter, mark_unit_complete

SIGNALS = ("blur", "luminance", "motion")
_FPS = np.array([23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0])
_SIZES = np.array([(1920, 1080), (1280, 720), (3840, 2160), (854, 480), (1080, 1920)])
_EDIT_TYPES = ("removal", "addition", "recolour", "background", "style")
_CLASSES = ("person", "car", "dog", "cat", "bicycle", "boat", "bird", "horse")


def _provenance(n: int, stage: str, model: str = NO_MODEL, weights: str = NO_MODEL) -> dict[str, pa.Array]:
    return {
        "stage": pa.repeat(stage, n).cast(pa.string()),
        "stage_version": pa.repeat("1.0.0", n).cast(pa.string()),
        "model_name": pa.repeat(model, n).cast(pa.string()),
        "weights_id": pa.repeat(weights, n).cast(pa.string()),
    }


def _where_or_null(condition: np.ndarray, values: str | np.ndarray) -> np.ndarray:
    """`values` where `condition` holds, else None: an object array whose Nones pyarrow reads as nulls."""
    return np.where(condition, values, np.array(None))


def _hex_ids(rng: np.random.Generator, n: int, chars: int) -> pa.Array:
    words = rng.integers(0, 2**63, size=(n, (chars + 15) // 16), dtype=np.int64)
    text = np.char.mod("%016x", words).astype(object)
    return pa.array(["".join(row)[:chars] for row in text], pa.string())


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(values), pa.string()), width, "0")


def synthetic_videos(n_videos: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    video_id = _hex_ids(rng, n_videos, 16)
    fps = rng.choice(_FPS, n_videos)
    duration = np.round(rng.gamma(2.0, 60.0, n_videos) + 5.0, 3)
    size = _SIZES[rng.integers(0, len(_SIZES), n_videos)]
    rejected = rng.random(n_videos) < 0.03
    return pa.table(
        {
            "video_id": video_id,
            "uri": pc.binary_join_element_wise("raw/", video_id, ".mp4", ""),
            "sha256": pc.binary_join_element_wise(video_id, _hex_ids(rng, n_videos, 48), ""),
            "size_bytes": (duration * rng.uniform(2e5, 2e6, n_videos)).astype(np.int64),
            "duration_s": duration,
            "fps": fps,
            "frames": np.floor(duration * fps).astype(np.int64),
            "width": size[:, 0].astype(np.int32),
            "height": size[:, 1].astype(np.int32),
            "codec": pa.array(rng.choice(["h264", "hevc", "vp9", "av1"], n_videos, p=[0.7, 0.15, 0.1, 0.05])),
            "status": pa.array(np.where(rejected, "rejected", "ok")),
            "reject_reason": pa.array(_where_or_null(rejected, "unreadable")),
            # square-pixel progressive 8-bit SDR, as most sources are: nothing for extraction to convert
            "sar": pa.repeat("1:1", n_videos).cast(pa.string()),
            "display_width": size[:, 0].astype(np.int32),
            "display_height": size[:, 1].astype(np.int32),
            "pix_fmt": pa.repeat("yuv420p", n_videos).cast(pa.string()),
            "bit_depth": np.full(n_videos, 8, np.int32),
            "color_transfer": pa.repeat("bt709", n_videos).cast(pa.string()),
            "interlaced": np.zeros(n_videos, bool),
            "vfr": np.zeros(n_videos, bool),
            "conversion": pa.nulls(n_videos, pa.string()),
            **_provenance(n_videos, "ingest"),
        },
        schema=SCHEMAS["videos"],
    )


def synthetic_clips(videos: pa.Table, n_clips: int, seed: int = 0) -> pa.Table:
    """`n_clips` consecutive shots spread over `videos` (round-robin), ids as `{video}-{start}-{end}`."""
    rng = np.random.default_rng(seed + 1)
    owner = np.arange(n_clips) % videos.num_rows
    order = np.argsort(owner, kind="stable")
    owner = owner[order]
    lengths = rng.integers(24, 300, n_clips)
    ends = np.cumsum(lengths)
    first_of_video = np.r_[True, owner[1:] != owner[:-1]]
    base = np.maximum.accumulate(np.where(first_of_video, ends - lengths, 0))
    start = ends - lengths - base
    end = start + lengths
    fps = videos.column("fps").to_numpy()[owner]
    video_id = videos.column("video_id").take(owner)
    clip_id = pc.binary_join_element_wise(video_id, _padded(start, 7), _padded(end, 7), "-")
    rejected = rng.random(n_clips) < 0.12
    return pa.table(
        {
            "clip_id": clip_id,
            "video_id": video_id,
            "start_frame": start,
            "end_frame": end,
            "start_time_s": start / fps,
            "end_time_s": end / fps,
            "fps": fps,
            "width": videos.column("width").take(owner),
            "height": videos.column("height").take(owner),
            "uri": pc.binary_join_element_wise("clips/", clip_id, ".mp4", ""),
            "shot_method": pa.array(rng.choice(["histogram", "transnetv2"], n_clips, p=[0.3, 0.7])),
            "status": pa.array(np.where(rejected, "rejected", "ok")),
            "reject_reason": pa.array(_where_or_null(rejected, rng.choice(["too_short", "blurry", "static"], n_clips))),
            "conversion": pa.nulls(n_clips, pa.string()),
            **_provenance(n_clips, "shots"),
        },
        schema=SCHEMAS["clips"],
    )


def synthetic_scores(clips: pa.Table, signals: tuple[str, ...] = SIGNALS, seed: int = 0) -> pa.Table:
    """One row per (clip, signal), signal-major like a stage that computes one signal over a batch."""
    rng = np.random.default_rng(seed + 2)
    n = clips.num_rows
    generators = {
        "blur": lambda: rng.lognormal(5.0, 1.0, n),  # Laplacian variance
        "luminance": lambda: rng.normal(110.0, 35.0, n).clip(0, 255),
        "motion": lambda: rng.gamma(1.5, 2.0, n),
    }
    thresholds = {"blur": 100.0, "luminance": 20.0, "motion": 0.5}
    tables = []
    for signal in signals:
        value = generators.get(signal, lambda: rng.random(n))()
        threshold = thresholds.get(signal)
        passed = pa.array(value > threshold) if threshold is not None else pa.nulls(n, pa.bool_())
        tables.append(
            pa.table(
                {
                    "clip_id": clips.column("clip_id"),
                    "signal": pa.repeat(signal, n).cast(pa.string()),
                    "value": value,
                    "passed": passed,
                    **_provenance(n, "filters"),
                },
                schema=SCHEMAS["scores"],
            )
        )
    return pa.concat_tables(tables)


def synthetic_objects(clips: pa.Table, n_objects: int, mask_hw: tuple[int, int] = (36, 64), seed: int = 0) -> pa.Table:
    """Tracked objects on the first clips, a few frames each, with real COCO RLE masks."""
    rng = np.random.default_rng(seed + 3)
    h, w = mask_hw
    rows = []
    for i in range(n_objects):
        clip = clips.column("clip_id")[i % clips.num_rows].as_py()
        frames = list(range(0, 3 * (1 + i % 3), 3))
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        y1, x1 = y0 + h // 3, x0 + w // 3
        mask = np.zeros((h, w), dtype=bool)
        mask[y0:y1, x0:x1] = True
        rows.append(
            {
                "object_id": f"{clip}-{i:04d}",
                "clip_id": clip,
                "track_id": i,
                "class_name": _CLASSES[i % len(_CLASSES)],
                "confidence": float(rng.uniform(0.3, 0.99)),
                "frame_indices": frames,
                "boxes": [[x0, y0, x1, y1]] * len(frames),
                "mask_rle": None,  # schema 1.1: masks live in object_frames
                "mask_height": h,
                "mask_width": w,
                "stage": "objects",
                "stage_version": "1.0.0",
                "model_name": "yolo11n+mobile_sam",
                "weights_id": RANDOM_INIT,
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMAS["objects"])


def synthetic_object_frames(objects: pa.Table, frames: int | None = None, mask_hw: tuple[int, int] | None = None) -> pa.Table:
    """One row per object and frame (each object's `frame_indices`, or `frames` consecutive ones), the mask a
    filled box. With `mask_hw` the masks are that size (the benchmark makes large ones), else the object's."""
    rng = np.random.default_rng(5)
    columns: dict[str, list[object]] = {
        k: [] for k in ("object_id", "clip_id", "frame_index", "box", "mask_rle", "mask_height", "mask_width")
    }
    for obj in objects.to_pylist():
        h, w = mask_hw or (obj["mask_height"], obj["mask_width"])
        indices = obj["frame_indices"] if frames is None else list(range(frames))
        box = obj["boxes"][0]
        top, bottom = int(box[1]) * h // obj["mask_height"], int(box[3]) * h // obj["mask_height"]
        left, right = int(box[0]) * w // obj["mask_width"], int(box[2]) * w // obj["mask_width"]
        mask = np.zeros((h, w), dtype=bool)
        mask[top:bottom, left:right] = True
        counts = rle_encode(mask)
        for index in indices:
            if mask_hw is not None:  # large masks: a ragged outline per frame, like a real segmentation's
                counts = _ragged_rle(h, w, (top, bottom, left, right), rng)
            for key, value in (("object_id", obj["object_id"]), ("clip_id", obj["clip_id"]), ("frame_index", index),
                               ("box", box), ("mask_rle", counts), ("mask_height", h), ("mask_width", w)):
                columns[key].append(value)
    n = len(columns["object_id"])
    provenance = {k: v.to_pylist() for k, v in _provenance(n, "objects", "yolo11n+mobile_sam", RANDOM_INIT).items()}
    return pa.table({**columns, **provenance}, schema=SCHEMAS["object_frames"])


def _ragged_rle(h: int, w: int, box: tuple[int, int, int, int], rng: np.random.Generator) -> str:
    """COCO RLE of a box whose top and bottom edge move randomly per column, built from run lengths."""
    from pycocotools import mask as coco_mask

    top, bottom, left, right = box
    jitter = rng.integers(0, max(2, (bottom - top) // 4), size=(2, right - left))
    starts, ends = top + jitter[0], bottom - jitter[1]  # per column [start, end) is inside
    zeros = np.concatenate([[left * h + starts[0]], (h - ends[:-1]) + starts[1:], [(h - ends[-1]) + (w - right) * h]])
    runs = np.empty(2 * len(starts) + 1, dtype=np.int64)
    runs[0::2], runs[1::2] = zeros, ends - starts
    rle = coco_mask.frPyObjects({"counts": runs.tolist(), "size": [h, w]}, h, w)
    return cast(str, rle["counts"].decode("ascii"))


def synthetic_edit_pairs(objects: pa.Table, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed + 4)
    n = objects.num_rows
    edit_type = rng.choice(_EDIT_TYPES, n)
    clip_id = objects.column("clip_id").to_pylist()
    pair_id = [f"{o}-{t}" for o, t in zip(objects.column("object_id").to_pylist(), edit_type)]
    return pa.Table.from_pydict(
        {
            "pair_id": pair_id,
            "clip_id": clip_id,
            "edit_type": edit_type.tolist(),
            "instruction": [f"apply {t} to the {c}" for t, c in zip(edit_type, objects.column("class_name").to_pylist())],
            "source_uri": [f"clips/{c}.mp4" for c in clip_id],
            "target_uri": [f"edits/{p}.mp4" for p in pair_id],
            "mask_uri": [f"masks/{p}.npz" for p in pair_id],
            "gates_passed": [["mask_area", "mask_iou", "edit_strength"]] * n,
            "split": rng.choice(["train", "val", "test"], n, p=[0.9, 0.05, 0.05]).tolist(),
            "object_id": objects.column("object_id").to_pylist(),
            "edit_params": [f'{{"seed": {i}}}' for i in range(n)],
            "frames": [48] * n,
            "fps": [24.0] * n,
            "width": objects.column("mask_width").to_pylist(),
            "height": objects.column("mask_height").to_pylist(),
            **{f"gate_{g}": rng.uniform(0, 1, n).tolist() for g in PAIR_GATES},
            "gate_notes": ['{"clip_direction": "skipped: no CLIP model configured"}'] * n,
            **{k: v.to_pylist() for k, v in _provenance(n, "edits").items()},
        },
        schema=SCHEMAS["edit_pairs"],
    )


def synthetic_clip_embeddings(clips: pa.Table) -> pa.Table:
    ids = clips.column("clip_id").to_pylist()
    n = len(ids)
    return pa.table({"clip_id": ids, "uri": ["embeddings/clip/unit-000000.npz"] * n, "key": ids,
                     "frame_indices": [[0, 4, 8]] * n, "dim": [512] * n,
                     **{k: v.to_pylist() for k, v in _provenance(n, "clip_scores", "open_clip-ViT-B-32", RANDOM_INIT).items()}},
                    schema=SCHEMAS["clip_embeddings"])


def synthetic_captions(clips: pa.Table) -> pa.Table:
    ids = clips.column("clip_id").to_pylist()
    n = len(ids)
    return pa.table({"clip_id": ids, "caption": [f"a synthetic clip {c}" for c in ids],
                     **{k: v.to_pylist() for k, v in _provenance(n, "vlm_scores", "test-vlm", "served:test-vlm").items()}},
                    schema=SCHEMAS["captions"])


def synthetic_errors(n: int) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "error_id": [f"err-{i:06d}" for i in range(n)],
            "input": [f"raw/broken_{i}.mp4" for i in range(n)],
            "error_class": ["DecodeError"] * n,
            "message": ["moov atom not found"] * n,
            "attempt": [1] * n,
            **{k: v.to_pylist() for k, v in _provenance(n, "ingest").items()},
        },
        schema=SCHEMAS["errors"],
    )


def synthetic_tables(
    n_clips: int, clips_per_video: int = 17, signals: tuple[str, ...] = SIGNALS, n_objects: int = 0, seed: int = 0
) -> dict[str, pa.Table]:
    """Every table, consistent with each other (every reference resolves)."""
    videos = synthetic_videos(max(1, n_clips // clips_per_video), seed)
    clips = synthetic_clips(videos, n_clips, seed)
    objects = synthetic_objects(clips, n_objects, seed=seed)
    return {
        "videos": videos,
        "clips": clips,
        "objects": objects,
        "object_frames": synthetic_object_frames(objects),
        "scores": synthetic_scores(clips, signals, seed),
        "edit_pairs": synthetic_edit_pairs(objects, seed),
        "clip_embeddings": synthetic_clip_embeddings(clips),
        "captions": synthetic_captions(clips),
        "errors": synthetic_errors(min(3, n_clips)),
    }


class WriterLimits(TypedDict, total=False):
    """The ManifestWriter limits write_tables passes on."""

    max_rows_per_shard: int
    max_bytes_per_shard: int
    row_group_rows: int
    row_group_bytes: int


def write_tables(
    root: str | os.PathLike[str], tables: dict[str, pa.Table], unit_rows: int = 100_000, **writer_options: Unpack[WriterLimits]
) -> None:
    """Write each table through ManifestWriter in units of `unit_rows` (like a stage's input batches),
    then mark each unit complete in the tables it wrote."""
    written: dict[str, list[str]] = {}
    for table, data in tables.items():
        writer = ManifestWriter(root, table, **writer_options)
        for k, offset in enumerate(range(0, max(data.num_rows, 1), unit_rows)):
            writer.write(f"unit-{k:06d}", data.slice(offset, unit_rows), complete=False)
            written.setdefault(f"unit-{k:06d}", []).append(table)
    for unit_id, names in written.items():
        mark_unit_complete(root, unit_id, names)


def write_clip_files(
    root: str | os.PathLike[str], clips: pa.Table, n: int, size: tuple[int, int] = (64, 36), frames: int = 8
) -> list[Path]:
    """Write tiny H.264 files for the first `n` clips at their `uri` (relative to root), so frame readers work."""
    from manifests.media.encode import VideoWriter  # only callers that want real files pay for PyAV

    width, height = size
    written = []
    for i, uri in enumerate(clips.column("uri").to_pylist()[:n]):
        path = Path(root) / uri
        with VideoWriter(path, fps=24, crf=23, preset="medium") as writer:  # libx264's own defaults
            for t in range(frames):
                image = np.zeros((height, width, 3), dtype=np.uint8)
                image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
                image[..., 1] = (37 * i) % 256
                image[height // 4 : height // 2, (4 * t) % width : (4 * t) % width + 8, 2] = 255
                writer.write(image)
        written.append(path)
    return written
