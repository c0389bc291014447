"""Value domains: what a row's values must satisfy beyond their types (ordered frame ranges, enums,
finite numbers, positive sizes, decodable RLE). Each rule is a pyarrow expression true on bad rows,
evaluated batch by batch during validate's one scan.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from manifests.errors import ManifestError
from manifests.rle import run_lengths
from manifests.schema import SCHEMAS

STATUS = ("ok", "rejected")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Domain:
    """Rows of `table` where `bad` holds break the rule `text` (nulls never count: required checks do that)."""

    table: str
    columns: tuple[str, ...]
    text: str
    bad: pc.Expression


def _f(name: str) -> pc.Expression:
    return pc.field(name)


def _not_in(name: str, values: tuple[str, ...]) -> pc.Expression:
    return ~_f(name).isin(list(values))


def _non_finite(table: str) -> list[Domain]:
    floats = [f.name for f in SCHEMAS[table] if pa.types.is_floating(f.type)]
    return [Domain(table, (c,), f"{c} is NaN or infinite", ~pc.is_finite(_f(c))) for c in floats]


@functools.cache
def all_domains() -> tuple[Domain, ...]:
    """Every rule; built on first use, because building expressions imports pyarrow.dataset (and pandas),
    which footer-only commands such as `summary` never need."""
    return (
        *[d for table in SCHEMAS for d in _non_finite(table)],
        Domain("videos", ("status",), f"status is not one of {', '.join(STATUS)}", _not_in("status", STATUS)),
        Domain("videos", ("size_bytes",), "size_bytes is negative", _f("size_bytes") < 0),
        Domain("videos", ("fps",), "fps is not positive", _f("fps") <= 0),
        Domain("videos", ("width", "height"), "width or height is not positive", (_f("width") <= 0) | (_f("height") <= 0)),
        Domain("videos", ("display_width", "display_height"), "display size is not positive",
               (_f("display_width") <= 0) | (_f("display_height") <= 0)),
        Domain("videos", ("bit_depth",), "bit_depth is not positive", _f("bit_depth") <= 0),
        Domain("clips", ("status",), f"status is not one of {', '.join(STATUS)}", _not_in("status", STATUS)),
        Domain("clips", ("start_frame", "end_frame"), "frame range is not 0 <= start_frame < end_frame",
               (_f("start_frame") < 0) | (_f("start_frame") >= _f("end_frame"))),
        Domain("clips", ("start_time_s", "end_time_s"), "time range is not 0 <= start_time_s < end_time_s",
               (_f("start_time_s") < 0) | (_f("start_time_s") >= _f("end_time_s"))),
        Domain("clips", ("fps",), "fps is not positive", _f("fps") <= 0),
        Domain("clips", ("width", "height"), "width or height is not positive", (_f("width") <= 0) | (_f("height") <= 0)),
        Domain("objects", ("confidence",), "confidence is outside [0, 1]", (_f("confidence") < 0) | (_f("confidence") > 1)),
        Domain("objects", ("mask_height", "mask_width"), "mask size is not positive",
               (_f("mask_height") <= 0) | (_f("mask_width") <= 0)),
        Domain("object_frames", ("frame_index",), "frame_index is negative", _f("frame_index") < 0),
        Domain("object_frames", ("mask_height", "mask_width"), "mask size is not positive",
               (_f("mask_height") <= 0) | (_f("mask_width") <= 0)),
        Domain("edit_pairs", ("split",), f"split is not one of {', '.join(SPLITS)}", _not_in("split", SPLITS)),
        Domain("edit_pairs", ("frames", "fps"), "frames or fps is not positive", (_f("frames") <= 0) | (_f("fps") <= 0)),
        Domain("edit_pairs", ("width", "height"), "width or height is not positive", (_f("width") <= 0) | (_f("height") <= 0)),
        Domain("edit_pairs", ("gate_mask_area",), "gate_mask_area is outside [0, 1]",
               (_f("gate_mask_area") < 0) | (_f("gate_mask_area") > 1)),
        Domain("objects", ("temporal_iou",), "temporal_iou is outside [0, 1]",
               (_f("temporal_iou") < 0) | (_f("temporal_iou") > 1)),
        Domain("clip_embeddings", ("dim",), "dim is not positive", _f("dim") <= 0),
        Domain("errors", ("attempt",), "attempt is below 1", _f("attempt") < 1),
    )


def domains_of(table: str) -> list[Domain]:
    return [d for d in all_domains() if d.table == table]


def count_bad(domain: Domain, batch: pa.RecordBatch, key: str) -> tuple[int, list[str]]:
    """Rows of `batch` breaking `domain`, and a few of their keys."""
    bad = pa.Table.from_batches([batch]).filter(domain.bad)
    return bad.num_rows, [str(v) for v in bad.column(key).slice(0, 3).to_pylist()]


def undecodable_masks(batch: pa.RecordBatch, key: str) -> tuple[int, list[str]]:
    """Rows whose RLE masks do not decode to mask_height x mask_width (bad counts string or wrong area)."""
    bad = 0
    examples: list[str] = []
    rows = zip(batch.column(key).to_pylist(), batch.column("mask_rle").to_pylist(),
               batch.column("mask_height").to_pylist(), batch.column("mask_width").to_pylist())
    for name, masks, height, width in rows:
        if not masks or height is None or width is None:
            continue
        try:
            for counts in [masks] if isinstance(masks, str) else masks:
                if counts is not None and sum(run_lengths(counts)) != height * width:
                    raise ManifestError("area")
        except ManifestError:
            bad += 1
            if len(examples) < 3:
                examples.append(str(name))
    return bad, examples
