"""Arrow schemas of the six manifest tables: the contract between every stage.

Each table is a folder of Parquet shards. Every row carries provenance (which stage, which
version of it, which model and which weights made it); `random-init` is a legal weights id and
stays visible as such. Rows hold URIs, never pixels.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.4"
"""Major.minor. Readers refuse files whose major differs from ours. A minor version only adds nullable
columns or new tables (tests/test_manifests_schema.py holds a frozen copy of 1.0 and checks that).

1.1: the `object_frames` table (one row per object and frame: box and RLE mask, 64-bit string offsets),
so one object's masks are read alone; `objects.mask_rle` stays readable but new writers leave it null.
1.2: `objects.temporal_iou`; the `clip_embeddings` and `captions` tables (model stages); `edit_pairs` gains
the object id, edit parameters (JSON), frames, fps, size and one column per quality gate value.
1.3: `videos` gains how the stored pixels are laid out (SAR, the square-pixel display size, pixel format, bit
depth, transfer, interlaced, VFR) and `conversion`, what extraction does to them; `clips.conversion`.
1.4: `edit_pairs` gains the object gates `gate_connected`, `gate_area_cv`, `gate_boundary_edge`."""

META_VERSION_KEY = b"liveditor.schema_version"
META_TABLE_KEY = b"liveditor.table"

NO_MODEL = "none"
"""`model_name` / `weights_id` of rows made by a stage that runs no model."""
RANDOM_INIT = "random-init"
"""`weights_id` of rows made by a model whose weights were not trained."""

PROVENANCE_FIELDS = [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("stage_version", pa.string(), nullable=False),
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("weights_id", pa.string(), nullable=False),
]

_VIDEOS = [
    pa.field("video_id", pa.string(), nullable=False),  # first 16 hex chars of sha256
    pa.field("uri", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("size_bytes", pa.int64(), nullable=False),
    pa.field("duration_s", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("frames", pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("codec", pa.string()),
    pa.field("status", pa.string(), nullable=False),  # ok | rejected
    pa.field("reject_reason", pa.string()),
    # 1.3: the stored pixels (manifests/media/probe.py; width/height above are the upright stored size)
    pa.field("sar", pa.string()),  # sample aspect ratio, "16:11"; "1:1" for square pixels
    pa.field("display_width", pa.int32()),  # square-pixel upright size at the display aspect: clips are cut at it
    pa.field("display_height", pa.int32()),
    pa.field("pix_fmt", pa.string()),  # FFmpeg's name, e.g. yuv420p10le
    pa.field("bit_depth", pa.int32()),
    pa.field("color_transfer", pa.string()),  # FFmpeg's name: bt709, smpte2084 (PQ), arib-std-b67 (HLG), unknown
    pa.field("interlaced", pa.bool_()),
    pa.field("vfr", pa.bool_()),  # frame gaps vary: frame index / fps is not the time
    pa.field("conversion", pa.string()),  # what extraction does beyond scaling (manifests.media.pixels); null: none
]

_CLIPS = [
    pa.field("clip_id", pa.string(), nullable=False),  # f"{video_id}-{start_frame:07d}-{end_frame:07d}"
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("start_frame", pa.int64(), nullable=False),
    pa.field("end_frame", pa.int64(), nullable=False),  # exclusive
    pa.field("start_time_s", pa.float64(), nullable=False),
    pa.field("end_time_s", pa.float64(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("uri", pa.string()),  # the extracted clip file; null until extraction
    pa.field("shot_method", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),  # ok | rejected
    pa.field("reject_reason", pa.string()),
    pa.field("conversion", pa.string()),  # 1.3: what extraction did beyond scaling, e.g. "10-bit to 8-bit"
]

_OBJECTS = [
    pa.field("object_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("track_id", pa.int32(), nullable=False),
    pa.field("class_name", pa.string(), nullable=False),
    pa.field("confidence", pa.float32(), nullable=False),
    pa.field("frame_indices", pa.list_(pa.int32()), nullable=False),  # clip-relative
    pa.field("boxes", pa.list_(pa.list_(pa.float32(), 4)), nullable=False),  # xyxy pixels per frame
    pa.field("mask_rle", pa.list_(pa.string())),  # COCO RLE counts per frame (compressed string)
    pa.field("mask_height", pa.int32()),
    pa.field("mask_width", pa.int32()),
    pa.field("mask_uri", pa.string()),  # alternative to inline RLE for long tracks
    pa.field("temporal_iou", pa.float32()),  # mean IoU of consecutive masks of the track (1.2)
]

_OBJECT_FRAMES = [
    pa.field("object_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("frame_index", pa.int32(), nullable=False),  # clip-relative
    pa.field("box", pa.list_(pa.float32(), 4), nullable=False),  # xyxy pixels
    pa.field("mask_rle", pa.large_string()),  # COCO RLE counts; large: a unit's masks may pass 2 GiB
    pa.field("mask_height", pa.int32()),
    pa.field("mask_width", pa.int32()),
]

_SCORES = [
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("signal", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("passed", pa.bool_()),  # null when no threshold applies to this signal
]

PAIR_GATES = ("mask_area", "mask_iou", "psnr_edited", "ssim_edited", "psnr_kept", "ssim_kept", "flicker",
              "clip_direction", "vlm", "connected", "area_cv", "boundary_edge")
"""The quality gates of an edit pair (filters/pair_gates.py), each stored as an `edit_pairs.gate_<name>` column."""

_EDIT_PAIRS = [
    pa.field("pair_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("edit_type", pa.string(), nullable=False),
    pa.field("instruction", pa.string(), nullable=False),
    pa.field("source_uri", pa.string(), nullable=False),
    pa.field("target_uri", pa.string(), nullable=False),
    pa.field("mask_uri", pa.string()),
    pa.field("gates_passed", pa.list_(pa.string()), nullable=False),
    pa.field("split", pa.string(), nullable=False),  # train | val | test
    # 1.2: what the pair is made of, and every gate value (null where a gate did not run; PSNR of identical
    # pixels is stored as PSNR_CAP); `gate_notes` is a JSON object {gate: why it did not run}
    pa.field("object_id", pa.string()),  # the object a local edit used
    pa.field("edit_params", pa.string()),  # JSON: everything needed to redo the edit
    pa.field("frames", pa.int32()),
    pa.field("fps", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    *[pa.field(f"gate_{name}", pa.float64()) for name in PAIR_GATES],
    pa.field("gate_notes", pa.string()),
]

_CLIP_EMBEDDINGS = [  # 1.2: per-frame image embeddings of a clip, stored in a shared npz file
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),  # the npz file (one per unit); `key` is the clip's array in it
    pa.field("key", pa.string(), nullable=False),
    pa.field("frame_indices", pa.list_(pa.int32()), nullable=False),  # clip-relative frames embedded
    pa.field("dim", pa.int32(), nullable=False),
]

_CAPTIONS = [  # 1.2: text a model wrote about a clip
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
]

_ERRORS = [
    pa.field("error_id", pa.string(), nullable=False),
    pa.field("input", pa.string(), nullable=False),
    pa.field("error_class", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("attempt", pa.int32(), nullable=False),
]

SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema(fields + PROVENANCE_FIELDS)
    for name, fields in {
        "videos": _VIDEOS,
        "clips": _CLIPS,
        "objects": _OBJECTS,
        "object_frames": _OBJECT_FRAMES,
        "scores": _SCORES,
        "edit_pairs": _EDIT_PAIRS,
        "clip_embeddings": _CLIP_EMBEDDINGS,
        "captions": _CAPTIONS,
        "errors": _ERRORS,
    }.items()
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("video_id",),
    "clips": ("clip_id",),
    "objects": ("object_id",),
    "object_frames": ("object_id", "frame_index"),
    "scores": ("clip_id", "signal", "stage"),
    "edit_pairs": ("pair_id",),
    "clip_embeddings": ("clip_id", "stage"),
    "captions": ("clip_id", "stage"),
    "errors": ("error_id",),
}

FOREIGN_KEYS: dict[str, list[tuple[str, str, str]]] = {
    # table: [(column, referenced table, referenced column)]
    "clips": [("video_id", "videos", "video_id")],
    "objects": [("clip_id", "clips", "clip_id")],
    "object_frames": [("object_id", "objects", "object_id")],
    "scores": [("clip_id", "clips", "clip_id")],
    "edit_pairs": [("clip_id", "clips", "clip_id"), ("object_id", "objects", "object_id")],
    "clip_embeddings": [("clip_id", "clips", "clip_id")],
    "captions": [("clip_id", "clips", "clip_id")],
}

URI_COLUMNS: dict[str, tuple[str, ...]] = {
    "videos": ("uri",),
    "clips": ("uri",),
    "objects": ("mask_uri",),
    "edit_pairs": ("source_uri", "target_uri", "mask_uri"),
    "clip_embeddings": ("uri",),
}

PSNR_CAP = 100.0
"""dB stored for the PSNR of identical pixels (infinite), so gate columns stay finite."""
