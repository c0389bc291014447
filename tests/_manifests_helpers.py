"""Shared fixtures-as-functions for the manifests tests: small consistent datasets and raw writes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.layout import marker_path, table_dir
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, SCHEMA_VERSION, SCHEMAS
from manifests.synthetic import synthetic_tables, write_tables


def small_dataset(root: Path, n_clips: int = 60, n_objects: int = 6, unit_rows: int = 25) -> dict[str, pa.Table]:
    """A valid dataset of all six tables under `root`; returns what was written."""
    tables = synthetic_tables(n_clips, clips_per_video=6, n_objects=n_objects)
    write_tables(root, tables, unit_rows=unit_rows)
    return tables


def commit_raw(
    root: Path,
    table: str,
    unit: str,
    data: pa.Table,
    metadata: dict[bytes, bytes] | None = None,
) -> Path:
    """Write `data` as one part plus a commit marker, bypassing the writer's checks (to make bad files)."""
    if metadata is None:
        metadata = {META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: table.encode()}
    folder = table_dir(root, table)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{unit}-00000.parquet"
    pq.write_table(data.replace_schema_metadata(metadata), part)
    marker = marker_path(root, table, unit)
    marker.parent.mkdir(parents=True, exist_ok=True)
    info = {"files": [part.name], "rows": data.num_rows, "bytes": part.stat().st_size,
            "schema_version": SCHEMA_VERSION, "written_at": "2026-11-27T00:00:00+00:00"}
    marker.write_text(json.dumps(info))
    return part


def provenance(stage: str = "test") -> dict[str, str]:
    return {"stage": stage, "stage_version": "1", "model_name": "none", "weights_id": "none"}


def clip_row(i: int, video_id: str = "v0", **changes: object) -> dict:
    row = {
        "clip_id": f"{video_id}-{i:07d}-{i + 10:07d}",
        "video_id": video_id,
        "start_frame": i,
        "end_frame": i + 10,
        "start_time_s": i / 25,
        "end_time_s": (i + 10) / 25,
        "fps": 25.0,
        "uri": f"clips/{video_id}-{i}.mp4",
        "shot_method": "histogram",
        "status": "ok",
        **provenance("shots"),
    }
    row.update(changes)
    return row


def video_row(video_id: str = "v0", **changes: object) -> dict:
    row = {"video_id": video_id, "uri": f"/data/raw/{video_id}.mp4", "sha256": "ab" * 32, "size_bytes": 1000,
           "status": "ok", **provenance("ingest")}
    row.update(changes)
    return row


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def schema_of(table: str) -> pa.Schema:
    return SCHEMAS[table]
